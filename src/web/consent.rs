//! `POST /consent`: the user allows or denies a client the scopes it asked for. Only a
//! request waiting for consent is answered, with a session that satisfies it (a login
//! fresh enough for its `prompt=login` or `max_age`, past any second factor the policy
//! asks). An allowed consent is remembered
//! in the session; a later request for more scopes asks again.

use super::interaction::Step;
use super::page;
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::oauth::interaction::pending::Awaiting;
use crate::oauth::interaction::policy::fresh_enough;
use crate::oauth::target;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Duration;

/// `POST /consent`.
pub(crate) async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    super::on_posted_form(&req, ip, &body, &state, decide).await
}

async fn decide(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Step {
        ip,
        state,
        registry,
        ..
    } = *step;
    let Some(kept) = step.recall(form.get("request")).await? else {
        return Ok(page::expired_request(registry));
    };
    let request = kept.pending.request.clone();
    // Consent answers only a request that is waiting for it: one still waiting for a
    // login (prompt=login, max_age, no session yet) goes back to the login page.
    if kept.pending.awaiting != Awaiting::Consent {
        return step.login_page(&request, Some(kept), None).await;
    }
    let current = step.session().await?;
    let (made_at, now) = (Some(kept.pending.created_at), state.clock.now());
    let mut current = match current {
        Some(c) if fresh_enough(&request, made_at, c.session.auth_time, now) => c,
        _ => return step.login_page(&request, Some(kept), None).await,
    };
    // A session the policy does not let as far as consent (one that still needs a
    // second factor: another login in this browser since the page) goes where the
    // policy says instead.
    if !step.reaches_consent(&request, &kept, &current).await {
        return Ok(step.proceed(request, Some(kept), Some(current)).await);
    }
    match form.get("decision") {
        Some("allow") => {
            current
                .session
                .consents
                .entry(request.client_id.clone())
                .or_default()
                .extend(request.scopes.iter().cloned());
            if !request.resources.is_empty() {
                current
                    .session
                    .consents
                    .entry(target::consent_key(&request.client_id))
                    .or_default()
                    .extend(request.resources.iter().cloned());
            }
            let left = (current.session.auth_time + registry.session.ttl.as_secs())
                .saturating_sub(state.clock.now());
            state
                .store
                .put_session(
                    current.key,
                    current.session.clone(),
                    Duration::from_secs(left),
                )
                .await
                .map_err(|e| step.unavailable(e))?;
            tracing::info!(event = "consent_granted", remote = %ip, client_id = %request.client_id, user_id = %current.session.identity.subject, scope = %request.scopes.join(" "));
            step.issue_code(&request, &current, Some(&kept)).await
        }
        Some("deny") => {
            step.forget(&kept).await?;
            tracing::info!(event = "consent_denied", remote = %ip, client_id = %request.client_id, user_id = %current.session.identity.subject);
            Ok(
                OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")
                    .redirect(&request.return_to(), &registry.issuer),
            )
        }
        _ => Ok(page::invalid_request(registry, "Choose Allow or Deny.")),
    }
}
