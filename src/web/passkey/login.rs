//! "Sign in with a passkey" on the login page: discoverable credentials (no username
//! typed, `allowCredentials` empty), user verification required. `POST /login/passkey`
//! finds the user by the credential id, checks the user handle, verifies the assertion
//! (`protocol::webauthn`), uses the challenge once, and starts the session.
//!
//! A passkey login alone counts as two factors (RFC 8176 `amr` `["swk", "mfa"]`): the
//! key is possessed and the authenticator verified the user (UV). `swk`, not `hwk`:
//! without attestation, which gatehouse does not ask for, nothing proves the key is
//! held in hardware (a synced passkey is not), so the weaker claim is the true one.

use super::assertion::{self, field};
use super::challenge::{self, Purpose};
// The login page's offer (a challenge bound to the pending request) is made where
// the page is rendered, `web::interaction::pages` (`Step::login_page`).
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::protocol::acr::{AMR_MFA, AMR_SWK};
use crate::state::AppState;
use crate::throttle::{self, Policy};
use crate::web::interaction::Step;
use crate::web::{login, page};
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

/// The message for any failed passkey login: it never says whether the passkey is
/// known, or whose it is.
pub(crate) const REFUSED: &str = "That passkey could not be used to sign in here.";

/// The RFC 8176 methods a passkey login records.
pub(crate) const AMR: [&str; 2] = [AMR_SWK, AMR_MFA];

/// `POST /login/passkey`.
pub(crate) async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    crate::web::on_posted_form(&req, ip, &body, &state, attempt).await
}

async fn attempt(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Some(kept) = step.recall(form.get("request")).await? else {
        return Ok(page::expired_request(step.registry));
    };
    let request = kept.pending.request.clone();
    let policy = Policy::passkey(&step.registry.limits, step.ip.0);
    let store = step.state.store.as_ref();
    let verdict = throttle::attempt(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    if let Some(left) = throttle::abide(verdict).await {
        tracing::warn!(event = "login_refused", reason = "too_many_failures", method = "passkey", client_id = %request.client_id, remote = %step.ip);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "login").increment(1);
        return Err(page::too_many(
            step.registry,
            "Too many attempts",
            "Too many failed sign-in attempts. Wait a while, then try again.",
            left,
        ));
    }
    let pending_id = form.get("request").unwrap_or_default();
    let user = match verify(step, form, pending_id).await {
        Ok(user) => user,
        Err(reason) => {
            tracing::warn!(event = "login_failed", method = "passkey", reason, client_id = %request.client_id, remote = %step.ip);
            metrics::counter!("gatehouse_logins_total", "result" => "failure").increment(1);
            return step
                .login_page(&request, Some(kept), Some((REFUSED, "")))
                .await;
        }
    };
    throttle::succeeded(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    tracing::info!(event = "login_succeeded", method = "passkey", client_id = %request.client_id, user_id = %user.id, remote = %step.ip);
    metrics::counter!("gatehouse_logins_total", "result" => "success").increment(1);
    let amr = AMR.iter().map(|m| (*m).to_owned()).collect();
    let now = step.state.clock.now();
    let (fresh, cookie) = login::start_session_as(step, user.identity(), now, amr).await?;
    let mut response = step.proceed(request, Some(kept), Some(fresh)).await;
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

/// The user a posted assertion signs in, or the name of the check it failed.
async fn verify<'r>(
    step: &Step<'r>,
    form: &Form,
    pending_id: &str,
) -> Result<&'r crate::model::User, &'static str> {
    let (state, registry) = (step.state, step.registry);
    let now = state.clock.now();
    let purpose = Purpose::Login(pending_id);
    let given = form.get("challenge").unwrap_or_default();
    let checked = challenge::check(state, &purpose, given, now).map_err(|e| e.name())?;
    let credential_id = field(form, "credential_id")?;
    let Some((user, passkey)) = registry.passkey(&credential_id) else {
        return Err("unknown_credential");
    };
    // A discoverable credential returns the handle it was made with: it must be the
    // one listed with this credential.
    let handle = field(form, "user_handle")?;
    if !bool::from(handle.ct_eq(&passkey.user_handle)) {
        return Err("user_handle");
    }
    assertion::verify(state, registry, (user, passkey), &checked, form, true).await?;
    Ok(user)
}
