//! `POST /login/second-factor`: the second factor after a password (a TOTP code; a
//! passkey later), for a request the policy sent to the second-factor page
//! (`Next::SecondFactor`). Every code is counted before it is checked, against the
//! address's login budget and the user's own count of wrong codes (`throttle`); a
//! code that matches is used once per user and step in the store (so across
//! replicas), then the session records the factor (`amr` `otp`, `mfa`) and the
//! request proceeds. The device grant's `/device/second-factor` (`web::device`) checks
//! its codes here too.

use super::interaction::Step;
use super::login;
use super::page;
use crate::crypto::{hex, sha256};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::model::User;
use crate::oauth::interaction::facts;
use crate::oauth::interaction::pending::Awaiting;
use crate::protocol::acr::AMR_OTP;
use crate::protocol::totp::{self, Secret};
use crate::state::AppState;
use crate::throttle::{self, Policy};
use actix_web::{HttpRequest, HttpResponse, web};

/// The message for a wrong, expired or reused code.
pub const BAD_CODE: &str =
    "That code is not valid. Enter the code your authenticator app shows now.";

/// `POST /login/second-factor`.
pub async fn submit(
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
    let (Some(user), Some(secret), Awaiting::SecondFactor) = (
        user,
        user.and_then(|u| u.totp.as_ref()),
        kept.pending.awaiting,
    ) else {
        return Ok(step.proceed(request, Some(kept), Some(current)).await);
    };
    let code = form.get("code").unwrap_or_default();
    if !check_code(step, user, secret, code, &request.client_id).await? {
        let session = &current.session;
        return step
            .second_factor_page(&request, session, Some(kept), Some(BAD_CODE))
            .await;
    }
    let (fresh, cookie) = login::add_factor(step, current, AMR_OTP).await?;
    let mut response = step.proceed(request, Some(kept), Some(fresh)).await;
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

/// Checks a TOTP `code` of `user` for a sign-in to `client_id`, counted and
/// throttled, logged and measured: true when it is right and not used before, false
/// when not, or the page refusing the attempt (too many failures, the store down).
pub(super) async fn check_code(
    step: &Step<'_>,
    user: &User,
    secret: &Secret,
    code: &str,
    client_id: &str,
) -> Result<bool, HttpResponse> {
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
    if let Some(left) = throttle::abide(verdict).await {
        tracing::warn!(event = "login_refused", reason = "too_many_failures", factor = "totp", client_id = %client_id, user_id = %user.id, remote = %ip);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "login").increment(1);
        return Err(page::too_many(
            registry,
            "Too many attempts",
            "Too many failed sign-in attempts. Wait a while, then try again.",
            left,
        ));
    }
    let used = match secret.verify(code, state.clock.now()) {
        Some(step_no) => {
            let first = store
                .remember_once(&used_key(&user.id, step_no), totp::accepted_until(step_no))
                .await
                .map_err(|e| step.unavailable(e))?;
            if first { None } else { Some("reused_code") }
        }
        None => Some("wrong_code"),
    };
    if let Some(reason) = used {
        tracing::warn!(event = "second_factor_failed", reason, factor = "totp", client_id = %client_id, user_id = %user.id, remote = %ip);
        metrics::counter!("gatehouse_second_factors_total", "result" => "failure").increment(1);
        return Ok(false);
    }
    throttle::succeeded(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    tracing::info!(event = "second_factor_succeeded", factor = "totp", client_id = %client_id, user_id = %user.id, remote = %ip);
    metrics::counter!("gatehouse_second_factors_total", "result" => "success").increment(1);
    Ok(true)
}

/// The store name under which the code of `step` is used once for `user_id`: a
/// fixed-length hash of the id, and the step.
fn used_key(user_id: &str, step: u64) -> String {
    format!("totp:{}:{step}", hex(&sha256(user_id.as_bytes())))
}
