//! The refresh-token grant (OAuth 2.1 4.3): only the client the token was issued to may
//! use it, it may narrow the scope, and it is rotated on every use. Using a rotated
//! token again revokes its whole family.

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::form::Form;
use super::scope;
use super::user_tokens::{self, UserGrant};
use crate::config::model::GrantType;
use crate::registry::Registry;
use crate::secret::sha256;
use crate::state::AppState;
use crate::store::{Redeemed, RefreshGrant};
use crate::tokens::jwt::random_id;
use actix_web::{HttpRequest, HttpResponse};

/// Runs the grant for a parsed token request.
pub async fn grant(
    req: &HttpRequest,
    form: &Form,
    registry: &Registry,
    state: &AppState,
) -> Result<HttpResponse, OAuthError> {
    let client =
        client_auth::authenticate_for(req, form, state, registry, GrantType::RefreshToken).await?;
    let token = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let key = sha256(token.as_bytes());

    // Every check runs before the token is used, so a refused request (a wider scope,
    // say) leaves it valid for a corrected retry.
    let grant = match state
        .store
        .peek_refresh(key)
        .await
        .map_err(OAuthError::server)?
    {
        Redeemed::Fresh(grant) => grant,
        Redeemed::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the refresh token is invalid or has expired",
            ));
        }
        Redeemed::Replayed(grant) => {
            return Err(reuse_detected(state, registry, grant, registry.client_ip(req)).await);
        }
    };
    if grant.client_id != client.id {
        tracing::warn!(event = "refresh_wrong_client", remote = %registry.client_ip(req), client_id = %client.id, owner = %grant.client_id);
        revoke(state, registry, &grant.family).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if grant.credential != client.credential_id() {
        return Err(OAuthError::invalid_grant(
            "the client's secret has changed since the refresh token was issued",
        ));
    }
    if state
        .store
        .family_revoked(&grant.family)
        .await
        .map_err(OAuthError::server)?
    {
        return Err(OAuthError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    let user = registry
        .user_by_id(&grant.user_id)
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    // The client may have lost scopes in a reload since: never give more than it has now.
    let still_allowed: Vec<String> = grant
        .scopes
        .iter()
        .filter(|s| client.allowed_scopes.contains(s))
        .cloned()
        .collect();
    let scopes: Vec<String> = match form.get("scope") {
        Some(requested) => scope::narrow(requested, &still_allowed)
            .map_err(|bad| {
                OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {bad:?} was not granted"),
                )
            })?
            .into_iter()
            .map(str::to_owned)
            .collect(),
        None => still_allowed.clone(),
    };

    // Rotate: the atomic use decides between two racing requests with the same token.
    match state
        .store
        .use_refresh(key)
        .await
        .map_err(OAuthError::server)?
    {
        Redeemed::Fresh(_) => {}
        Redeemed::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the refresh token is invalid or has expired",
            ));
        }
        Redeemed::Replayed(grant) => {
            return Err(reuse_detected(state, registry, grant, registry.client_ip(req)).await);
        }
    }
    let response = user_tokens::issue(
        state,
        registry,
        UserGrant {
            client,
            user,
            scopes: &scopes,
            refresh_scopes: &still_allowed,
            auth_time: grant.auth_time,
            nonce: None,
            jti: random_id().map_err(OAuthError::server)?,
            family: Some(grant.family),
        },
    )
    .await?;
    tracing::info!(event = "refresh_rotated", remote = %registry.client_ip(req), client_id = %client.id, user_id = %user.id);
    metrics::counter!("gatehouse_tokens_issued_total", "grant" => "refresh_token", "client_id" => client.id.clone()).increment(1);
    Ok(response.into_response())
}

async fn revoke(state: &AppState, registry: &Registry, family: &str) -> Result<(), OAuthError> {
    state
        .store
        .revoke_family(family, registry.tokens.refresh_token_ttl)
        .await
        .map_err(OAuthError::server)
}

/// A rotated token came back: someone holds a copy. Revoke the family.
async fn reuse_detected(
    state: &AppState,
    registry: &Registry,
    grant: RefreshGrant,
    remote: std::net::IpAddr,
) -> OAuthError {
    tracing::warn!(event = "refresh_reuse_detected", remote = %remote, client_id = %grant.client_id, user_id = %grant.user_id);
    match revoke(state, registry, &grant.family).await {
        Ok(()) => {
            OAuthError::invalid_grant("the refresh token was already used; its family is revoked")
        }
        Err(e) => e,
    }
}
