//! Token revocation (RFC 7009). A client, public ones included, revokes the tokens
//! issued to it: an access token's `jti` is denied until the token would expire, a
//! refresh token takes its whole family with it. Unknown, expired or already revoked
//! tokens answer 200 as if revoked; another client's token is refused, and so is a
//! browser page on an origin the client does not allow, before anything is revoked.

use super::identify::{Identified, identify};
use super::standing;
use super::{client_auth, cors};
use crate::error::OAuthError;
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};

/// `POST /revoke`.
pub(crate) async fn revoke(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let registry = state.snapshot();
    let caller =
        client_auth::authenticate_request(req.headers(), &form, &state, &registry, ip.0).await?;
    cors::refuse_foreign_origin(&req, &registry, caller)?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let not_yours = || OAuthError::invalid_request("the token was not issued to this client");
    match identify(&state, &registry, token).await? {
        Identified::Access(claims) => {
            if claims.client_id != caller.id {
                return Err(not_yours());
            }
            standing::deny_access(&state, &claims.jti, claims.exp).await?;
            tracing::info!(event = "token_revoked", kind = "access", remote = %ip, client_id = %caller.id, user_id = %claims.sub);
        }
        Identified::Refresh { grant, .. } => {
            if grant.client_id != caller.id {
                return Err(not_yours());
            }
            standing::revoke_family(&state, &registry, &grant.family).await?;
            tracing::info!(event = "token_revoked", kind = "refresh", remote = %ip, client_id = %caller.id, user_id = %grant.subject);
        }
        Identified::Unknown => {}
    }
    Ok(crate::http::no_store(&mut HttpResponse::Ok()).finish())
}
