//! `POST /consent`: the user allows or denies a client the scopes it asked for. An
//! allowed consent is remembered in the session; a later request for more scopes asks
//! again.

use super::interaction::{self, login_page, unavailable};
use super::login::expired_request;
use super::{page, session};
use crate::oauth::authorize::ErrorRedirect;
use crate::oauth::form::Form;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::StoreError;
use crate::tokens::access::now;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Duration;

/// `POST /consent`.
pub async fn submit(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let registry = state.snapshot();
    let form = match super::posted_form(&req, &registry, &body) {
        Ok(f) => f,
        Err(page) => return page,
    };
    match decide(&req, &state, &registry, &form).await {
        Ok(response) => response,
        Err(e) => unavailable(&registry, &e),
    }
}

async fn decide(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    form: &Form,
) -> Result<HttpResponse, StoreError> {
    let Some((pending_id, request)) = interaction::recall(state, form.get("request")).await? else {
        return Ok(expired_request(registry));
    };
    let Some(mut current) = session::current(req, state, registry).await? else {
        return login_page(req, state, registry, &request, Some(pending_id), None).await;
    };
    match form.get("decision") {
        Some("allow") => {
            current
                .session
                .consents
                .entry(request.client_id.clone())
                .or_default()
                .extend(request.scopes.iter().cloned());
            let left =
                (current.session.auth_time + registry.session_ttl.as_secs()).saturating_sub(now());
            state
                .store
                .put_session(
                    current.key,
                    current.session.clone(),
                    Duration::from_secs(left),
                )
                .await?;
            tracing::info!(event = "consent_granted", remote = %registry.client_ip(req), client_id = %request.client_id, user_id = %current.session.user_id, scope = %request.scopes.join(" "));
            interaction::issue_code(
                state,
                registry,
                &request,
                &current.session,
                Some(&pending_id),
            )
            .await
        }
        Some("deny") => {
            state
                .store
                .delete_pending(crate::secret::sha256(pending_id.as_bytes()))
                .await?;
            tracing::info!(event = "consent_denied", remote = %registry.client_ip(req), client_id = %request.client_id, user_id = %current.session.user_id);
            Ok(ErrorRedirect {
                redirect_uri: request.redirect_uri.clone(),
                error: "access_denied",
                description: "the user denied the request".to_owned(),
                state: request.state.clone(),
            }
            .response(&registry.issuer))
        }
        _ => Ok(page::error(
            registry,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Choose Allow or Deny.",
        )),
    }
}
