//! Token revocation (RFC 7009). A client, public ones included, revokes the tokens
//! issued to it: an access token's `jti` is denied until the token would expire, a
//! refresh token takes its whole family with it. Unknown, expired or already revoked
//! tokens answer 200 as if revoked; another client's token is refused.

use super::client_auth;
use super::error::OAuthError;
use super::form::Form;
use super::inspect::{Identified, identify};
use crate::state::AppState;
use crate::tokens::access::now;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Duration;

/// `POST /revoke`.
pub async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let registry = state.snapshot();
    let caller = client_auth::authenticate_request(&req, &form, &state, &registry).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let not_yours = || OAuthError::invalid_request("the token was not issued to this client");
    match identify(&state, &registry, token).await? {
        Identified::Access(claims) => {
            if claims.client_id != caller.id {
                return Err(not_yours());
            }
            let left = Duration::from_secs(claims.exp.saturating_sub(now()).max(1));
            state
                .store
                .deny_jti(&claims.jti, left)
                .await
                .map_err(OAuthError::server)?;
            tracing::info!(event = "token_revoked", kind = "access", client_id = %caller.id, user_id = %claims.sub);
        }
        Identified::Refresh { grant, .. } => {
            if grant.client_id != caller.id {
                return Err(not_yours());
            }
            state
                .store
                .revoke_family(&grant.family, registry.tokens.refresh_token_ttl)
                .await
                .map_err(OAuthError::server)?;
            tracing::info!(event = "token_revoked", kind = "refresh", client_id = %caller.id, user_id = %grant.user_id);
        }
        Identified::Unknown => {}
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .finish())
}
