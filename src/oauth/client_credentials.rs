//! The client-credentials grant (RFC 6749 4.4): a confidential client gets an access
//! token for itself.

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::form::Form;
use super::scope;
use super::token::TokenResponse;
use crate::config::model::GrantType;
use crate::registry::Registry;
use crate::state::AppState;
use crate::tokens::access;
use crate::tokens::jwt::random_id;
use actix_web::{HttpRequest, HttpResponse};

/// Runs the grant for an already-parsed token request.
pub async fn grant(
    req: &HttpRequest,
    form: &Form,
    registry: &Registry,
    state: &AppState,
) -> Result<HttpResponse, OAuthError> {
    let client =
        client_auth::authenticate_for(req, form, state, registry, GrantType::ClientCredentials)
            .await?;
    let scopes: Vec<&str> = match form.get("scope") {
        Some(requested) => scope::narrow(requested, &client.allowed_scopes).map_err(|bad| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope {bad:?} is not allowed for this client"),
            )
        })?,
        None => client.default_scopes.iter().map(String::as_str).collect(),
    };
    let scope = scopes.join(" ");
    let audience: &[String] = if client.audience.is_empty() {
        std::slice::from_ref(&client.id)
    } else {
        &client.audience
    };
    let jti = random_id().map_err(OAuthError::server)?;
    let issued = access::issue(registry, &client.id, &client.id, audience, &scope, jti)
        .map_err(OAuthError::server)?;
    tracing::info!(event = "token_issued", remote = %registry.client_ip(req), grant = "client_credentials", client_id = %client.id, scope = %scope);
    metrics::counter!("gatehouse_tokens_issued_total", "grant" => "client_credentials", "client_id" => client.id.clone()).increment(1);
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope,
        id_token: None,
        refresh_token: None,
    }
    .into_response())
}
