//! `POST /login/second-factor`: the second factor after a password (a TOTP code, or
//! an assertion by one of the user's passkeys, `web::passkey::second`), for a request
//! the policy sent to the second-factor page (`Next::SecondFactor`). Every attempt is
//! counted before it is checked, against the address's login budget and the user's
//! own count of failures (`throttle`); a code that matches is used once per user and
//! step in the store (so across replicas), a passkey's challenge once; then the
//! session records the factor (`amr` `otp` or `swk`, and `mfa`) and the request
//! proceeds. The device grant's `/device/second-factor` (`web::device`) checks its
//! factors here too.

use super::interaction::Step;
use super::login;
use super::page;
use super::passkey;
use crate::crypto::{hex, sha256};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::model::User;
use crate::oauth::interaction::facts;
use crate::oauth::interaction::pending::Awaiting;
use crate::protocol::acr::{AMR_OTP, AMR_SWK};
use crate::protocol::totp::{self, Secret};
use crate::state::AppState;
use crate::throttle::{self, Policy};
use actix_web::{HttpRequest, HttpResponse, web};

/// The message for a wrong, expired or reused code.
pub(crate) const BAD_CODE: &str =
    "That code is not valid. Enter the code your authenticator app shows now.";

/// The message for a passkey assertion that did not do (another key, a replay, a
/// challenge that expired).
pub(crate) const BAD_PASSKEY: &str =
    "That passkey could not be used here. Try again with your own passkey.";

/// What a failed attempt of `form`'s factor is told.
pub(crate) fn failure_message(form: &Form) -> &'static str {
    if form.get("factor") == Some("passkey") {
        BAD_PASSKEY
    } else {
        BAD_CODE
    }
}

/// `POST /login/second-factor`.
pub(crate) async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    super::on_posted_form(&req, ip, &body, &state, attempt).await
}

async fn attempt(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Some(kept) = step.recall(form.get("request")).await? else {
        return Ok(page::expired_request(step.registry));
    };
    let request = kept.pending.request.clone();
    // Only a request waiting for a second factor, with a session whose user has one,
    // takes a code; anything else goes where the policy says.
    let Some(current) = step.session().await? else {
        return Ok(step.proceed(request, Some(kept), None).await);
    };
    let user = facts::local_user(step.registry, &current.session.identity);
    let (Some(user), Awaiting::SecondFactor) = (user, kept.pending.awaiting) else {
        return Ok(step.proceed(request, Some(kept), Some(current)).await);
    };
    let bound = form.get("request").unwrap_or_default();
    let Some(method) = check(step, user, form, bound, &request.client_id).await? else {
        let session = &current.session;
        return step
            .second_factor_page(&request, session, Some(kept), Some(failure_message(form)))
            .await;
    };
    let (fresh, cookie) = login::add_factor(step, current, method).await?;
    let mut response = step.proceed(request, Some(kept), Some(fresh)).await;
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

/// Checks the second factor a form carries for `user` (its `factor`: `passkey`, else
/// a TOTP `code`), for a sign-in to `client_id` continuing what `bound` names (a
/// pending request, a device user code): counted and throttled, logged and measured.
/// The `amr` method proven when it holds, `None` when not, or the page refusing the
/// attempt (too many failures, the store down).
pub(super) async fn check(
    step: &Step<'_>,
    user: &User,
    form: &Form,
    bound: &str,
    client_id: &str,
) -> Result<Option<&'static str>, HttpResponse> {
    let Step {
        ip,
        state,
        registry,
        ..
    } = *step;
    let store = state.store.as_ref();
    let policy = Policy::second_factor(&registry.limits, &user.id, ip.0);
    let verdict = throttle::attempt(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    let passkey = form.get("factor") == Some("passkey");
    let factor = if passkey { "passkey" } else { "totp" };
    if let Some(left) = throttle::abide(verdict).await {
        tracing::warn!(event = "login_refused", reason = "too_many_failures", factor, client_id = %client_id, user_id = %user.id, remote = %ip);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "login").increment(1);
        return Err(page::too_many(
            registry,
            "Too many attempts",
            "Too many failed sign-in attempts. Wait a while, then try again.",
            left,
        ));
    }
    let outcome = if passkey {
        passkey::second::verify(state, registry, user, form, bound)
            .await
            .map(|()| AMR_SWK)
    } else {
        let code = form.get("code").unwrap_or_default();
        match &user.totp {
            Some(secret) => totp_code(step, user, secret, code).await?.map(|()| AMR_OTP),
            None => Err("no_totp"),
        }
    };
    let method = match outcome {
        Ok(method) => method,
        Err(reason) => {
            tracing::warn!(event = "second_factor_failed", reason, factor, client_id = %client_id, user_id = %user.id, remote = %ip);
            metrics::counter!("gatehouse_second_factors_total", "result" => "failure").increment(1);
            return Ok(None);
        }
    };
    throttle::succeeded(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    tracing::info!(event = "second_factor_succeeded", factor, client_id = %client_id, user_id = %user.id, remote = %ip);
    metrics::counter!("gatehouse_second_factors_total", "result" => "success").increment(1);
    Ok(Some(method))
}

/// A TOTP `code` of `user`: `Ok` when it is right for now (or a step either side) and
/// not used before, on any replica; else why not.
async fn totp_code(
    step: &Step<'_>,
    user: &User,
    secret: &Secret,
    code: &str,
) -> Result<Result<(), &'static str>, HttpResponse> {
    let Some(step_no) = secret.verify(code, step.state.clock.now()) else {
        return Ok(Err("wrong_code"));
    };
    let first = step
        .state
        .store
        .remember_once(&used_key(&user.id, step_no), totp::accepted_until(step_no))
        .await
        .map_err(|e| step.unavailable(e))?;
    Ok(if first { Ok(()) } else { Err("reused_code") })
}

/// The store name under which the code of `step` is used once for `user_id`: a
/// fixed-length hash of the id, and the step.
fn used_key(user_id: &str, step: u64) -> String {
    format!("totp:{}:{step}", hex(&sha256(user_id.as_bytes())))
}
