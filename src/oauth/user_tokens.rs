//! Issuing a user's tokens, shared by the authorization-code and refresh-token grants:
//! an access token, an ID token when `openid` was granted, and a refresh token when the
//! client has the `refresh_token` grant (public clients too: OAuth 2.1 4.3.1 allows it
//! with rotation and reuse detection, which gatehouse always does).

use super::error::OAuthError;
use super::token::TokenResponse;
use crate::registry::{Client, Registry, User};
use crate::secret::sha256;
use crate::state::AppState;
use crate::store::RefreshGrant;
use crate::tokens::access::{self, now};
use crate::tokens::id_token::{self, IdTokenInput};
use crate::tokens::jwt::random_secret;

/// What the tokens are for.
pub struct UserGrant<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    /// Scopes of the access and ID token.
    pub scopes: &'a [String],
    /// Scopes the refresh token keeps (RFC 6749 6: the original grant's).
    pub refresh_scopes: &'a [String],
    pub auth_time: u64,
    pub nonce: Option<&'a str>,
    /// The access token's id (chosen before a code is redeemed, so a replay can deny it).
    pub jti: String,
    /// The refresh token family to issue into; `None` issues no refresh token.
    pub family: Option<String>,
}

/// The audience of a client's user tokens: its configured audience, or itself.
pub fn audience(client: &Client) -> &[String] {
    if client.audience.is_empty() {
        std::slice::from_ref(&client.id)
    } else {
        &client.audience
    }
}

/// Mints and stores the tokens of `grant`.
pub async fn issue(
    state: &AppState,
    registry: &Registry,
    grant: UserGrant<'_>,
) -> Result<TokenResponse, OAuthError> {
    let scope = grant.scopes.join(" ");
    let access = access::issue(
        registry,
        &grant.user.id,
        &grant.client.id,
        audience(grant.client),
        &scope,
        grant.jti,
    )
    .map_err(OAuthError::server)?;
    let id_token = if grant.scopes.iter().any(|s| s == "openid") {
        let input = IdTokenInput {
            client_id: &grant.client.id,
            user: grant.user,
            scopes: grant.scopes,
            nonce: grant.nonce,
            auth_time: grant.auth_time,
            access_token: &access.token,
        };
        Some(id_token::issue(registry, &input).map_err(OAuthError::server)?)
    } else {
        None
    };
    let refresh_token = match grant.family {
        Some(family) => {
            let token = random_secret().map_err(OAuthError::server)?;
            let stored = RefreshGrant {
                family,
                client_id: grant.client.id.clone(),
                user_id: grant.user.id.clone(),
                scopes: grant.refresh_scopes.to_vec(),
                auth_time: grant.auth_time,
                issued_at: now(),
                expires_at: now() + registry.tokens.refresh_token_ttl.as_secs(),
                credential: grant.client.credential_id(),
            };
            state
                .store
                .put_refresh(
                    sha256(token.as_bytes()),
                    stored,
                    registry.tokens.refresh_token_ttl,
                )
                .await
                .map_err(OAuthError::server)?;
            Some(token)
        }
        None => None,
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope,
        id_token,
        refresh_token,
    })
}
