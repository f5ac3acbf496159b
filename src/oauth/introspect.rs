//! Token introspection (RFC 7662). Callers are confidential clients. A client may
//! introspect the tokens issued to it and the access tokens whose `aud` names it; a
//! client with `introspect = true` (a resource server) may introspect any token.
//! Everything else, and every token that is expired, revoked, malformed, unknown, or
//! whose client is gone or has a rotated secret, is `{"active": false}`.

use super::client_auth;
use super::error::OAuthError;
use super::form::Form;
use super::inspect::{Identified, identify};
use crate::registry::{Client, Registry};
use crate::state::AppState;
use crate::tokens::access::now;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// `POST /introspect`.
pub async fn introspect(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let registry = state.snapshot();
    let caller = client_auth::authenticate_request(&req, &form, &state, &registry).await?;
    if caller.public {
        return Err(OAuthError::invalid_client(
            "public clients cannot introspect tokens",
            false,
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let body = answer(&state, &registry, caller, token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body))
}

async fn answer(
    state: &AppState,
    registry: &Registry,
    caller: &Client,
    token: &str,
) -> Result<Value, OAuthError> {
    let inactive = json!({"active": false});
    match identify(state, registry, token).await? {
        Identified::Access(claims) => {
            let allowed = caller.introspect
                || caller.id == claims.client_id
                || claims.has_audience(&caller.id);
            let denied = state
                .store
                .jti_denied(&claims.jti)
                .await
                .map_err(OAuthError::server)?;
            if !allowed || denied || !registry.client_tokens_stand(&claims.client_id, claims.iat) {
                return Ok(inactive);
            }
            Ok(json!({
                "active": true,
                "scope": claims.scope,
                "client_id": claims.client_id,
                "sub": claims.sub,
                "exp": claims.exp,
                "iat": claims.iat,
                "iss": claims.iss,
                "aud": claims.aud,
                "jti": claims.jti,
                "token_type": "Bearer",
            }))
        }
        Identified::Refresh { grant, used, .. } => {
            let allowed = caller.introspect || caller.id == grant.client_id;
            let live = !used
                && grant.expires_at > now()
                && registry
                    .client(&grant.client_id)
                    .is_some_and(|c| c.credential_id() == grant.credential)
                && !state
                    .store
                    .family_revoked(&grant.family)
                    .await
                    .map_err(OAuthError::server)?;
            if !allowed || !live {
                return Ok(inactive);
            }
            Ok(json!({
                "active": true,
                "scope": grant.scopes.join(" "),
                "client_id": grant.client_id,
                "sub": grant.user_id,
                "exp": grant.expires_at,
                "iat": grant.issued_at,
                "iss": registry.issuer,
                "token_type": "refresh_token",
            }))
        }
        Identified::Unknown => Ok(inactive),
    }
}
