//! The authorization-code grant (OAuth 2.1 4.1.3): a code is redeemed once, by the
//! client it was issued to, with the redirect URI of its request and the PKCE verifier
//! of its challenge. A replayed code revokes what its first redemption issued.

use super::client_auth;
use super::error::OAuthError;
use super::form::Form;
use super::pkce;
use super::user_tokens::{self, UserGrant};
use crate::config::model::GrantType;
use crate::registry::Registry;
use crate::secret::sha256;
use crate::state::AppState;
use crate::store::{CodeGrant, IssuedIds, Redeemed};
use crate::tokens::access::now;
use crate::tokens::jwt::random_id;
use actix_web::{HttpRequest, HttpResponse};
use std::time::Duration;

/// Runs the grant for a parsed token request.
pub async fn grant(
    req: &HttpRequest,
    form: &Form,
    registry: &Registry,
    state: &AppState,
) -> Result<HttpResponse, OAuthError> {
    let client =
        client_auth::authenticate_for(req, form, state, registry, GrantType::AuthorizationCode)
            .await?;
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("PKCE is required: code_verifier is missing"))?;

    let issued = IssuedIds {
        access_jti: random_id().map_err(OAuthError::server)?,
        access_exp: now() + registry.tokens.access_token_ttl.as_secs(),
        refresh_family: if client.allows_grant(GrantType::RefreshToken) {
            Some(random_id().map_err(OAuthError::server)?)
        } else {
            None
        },
    };
    let grant = match state
        .store
        .redeem_code(sha256(code.as_bytes()), issued.clone())
        .await
        .map_err(OAuthError::server)?
    {
        Redeemed::Fresh(grant) => grant,
        Redeemed::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the code is invalid or has expired",
            ));
        }
        Redeemed::Replayed(grant) => {
            revoke_first_use(state, registry, &grant).await?;
            tracing::warn!(event = "code_replayed", remote = %registry.client_ip(req), client_id = %client.id, user_id = %grant.user_id);
            return Err(OAuthError::invalid_grant(
                "the code was already used; the tokens it gave are revoked",
            ));
        }
    };
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    let redirect_ok = match (&grant.redirect_uri, form.get("redirect_uri")) {
        (Some(expected), Some(given)) => expected == given,
        (Some(_), None) => false,
        (None, Some(given)) => matches!(client.redirect_uris.as_slice(), [only] if only == given),
        (None, None) => true,
    };
    if !redirect_ok {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !pkce::verify(verifier, &grant.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let user = registry
        .user_by_id(&grant.user_id)
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let response = user_tokens::issue(
        state,
        registry,
        UserGrant {
            client,
            user,
            scopes: &grant.scopes,
            refresh_scopes: &grant.scopes,
            auth_time: grant.auth_time,
            nonce: grant.nonce.as_deref(),
            jti: issued.access_jti,
            family: issued.refresh_family,
        },
    )
    .await?;
    tracing::info!(event = "token_issued", remote = %registry.client_ip(req), grant = "authorization_code", client_id = %client.id, user_id = %user.id);
    metrics::counter!("gatehouse_tokens_issued_total", "grant" => "authorization_code", "client_id" => client.id.clone()).increment(1);
    Ok(response.into_response())
}

/// Revokes the access token and refresh family of a code's first redemption.
async fn revoke_first_use(
    state: &AppState,
    registry: &Registry,
    grant: &CodeGrant,
) -> Result<(), OAuthError> {
    let Some(issued) = &grant.issued else {
        return Ok(());
    };
    let left = Duration::from_secs(issued.access_exp.saturating_sub(now()).max(1));
    state
        .store
        .deny_jti(&issued.access_jti, left)
        .await
        .map_err(OAuthError::server)?;
    if let Some(family) = &issued.refresh_family {
        state
            .store
            .revoke_family(family, registry.tokens.refresh_token_ttl)
            .await
            .map_err(OAuthError::server)?;
    }
    Ok(())
}
