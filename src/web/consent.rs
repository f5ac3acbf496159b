//! `POST /consent`: the user allows or denies a client the scopes it asked for. An
//! allowed consent is remembered in the session; a later request for more scopes asks
//! again.

use super::interaction::Step;
use super::{page, session};
use crate::crypto::sha256;
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Duration;

/// `POST /consent`.
pub async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    super::on_posted_form(&req, ip, &body, &state, decide).await
}

async fn decide(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Step {
        req,
        ip,
        state,
        registry,
    } = *step;
    let Some((pending_id, request)) = step.recall(form.get("request")).await? else {
        return Ok(page::expired_request(registry));
    };
    let current = session::current(req, state, registry)
        .await
        .map_err(|e| step.unavailable(e))?;
    let Some(mut current) = current else {
        return step.login_page(&request, Some(pending_id), None).await;
    };
    match form.get("decision") {
        Some("allow") => {
            current
                .session
                .consents
                .entry(request.client_id.clone())
                .or_default()
                .extend(request.scopes.iter().cloned());
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
            step.issue_code(&request, &current.session, Some(&pending_id))
                .await
        }
        Some("deny") => {
            state
                .store
                .delete_pending(sha256(pending_id.as_bytes()))
                .await
                .map_err(|e| step.unavailable(e))?;
            tracing::info!(event = "consent_denied", remote = %ip, client_id = %request.client_id, user_id = %current.session.identity.subject);
            Ok(
                OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")
                    .redirect(&request.return_to(), &registry.issuer),
            )
        }
        _ => Ok(page::invalid_request(registry, "Choose Allow or Deny.")),
    }
}
