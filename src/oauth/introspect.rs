//! Token introspection (RFC 7662). Callers are confidential clients. A client may
//! introspect the tokens issued to it and the access tokens whose `aud` names it; a
//! client with `introspect = true` (a resource server) may introspect any token.
//! Everything else, and every token that is expired, revoked, malformed, unknown, or
//! that no longer stands (`standing`: its client removed or reset, its user removed,
//! its family revoked), is `{"active": false}`.

use super::client_auth;
use super::identify::{Identified, identify};
use super::standing::{self, Holder};
use super::userinfo;
use crate::error::OAuthError;
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::model::Client;
use crate::registry::Registry;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// `POST /introspect`.
pub(crate) async fn introspect(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let registry = state.snapshot();
    let caller =
        client_auth::authenticate_request(req.headers(), &form, &state, &registry, ip.0).await?;
    if caller.is_public() {
        return Err(OAuthError::invalid_client(
            "public clients cannot introspect tokens",
            false,
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let body = answer(&state, &registry, caller, token).await?;
    Ok(crate::http::no_store(&mut HttpResponse::Ok()).json(body))
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
            let holder = match standing::access(state, registry, &claims).await? {
                Ok(holder) if allowed => holder,
                _ => return Ok(inactive),
            };
            let mut body = json!({
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
            });
            // A user's token: the same claims about the user as `/userinfo` gives.
            if let (Holder::User(user), Value::Object(fields)) = (&holder, &mut body) {
                let scopes: Vec<String> = claims.scope.split(' ').map(str::to_owned).collect();
                fields.insert("username".into(), json!(user.username));
                fields.extend(userinfo::user_claims(user, &claims, &scopes));
            }
            // A DPoP-bound token (RFC 9449 6.2): its key, for the resource to check.
            if let Some(cnf) = &claims.cnf {
                body["token_type"] = json!("DPoP");
                body["cnf"] = json!(cnf);
            }
            Ok(body)
        }
        Identified::Refresh { grant, used } => {
            let allowed = caller.introspect || caller.id == grant.client_id;
            if !allowed || used || standing::refresh(state, registry, &grant).await?.is_err() {
                return Ok(inactive);
            }
            Ok(json!({
                "active": true,
                "scope": grant.scopes.join(" "),
                "client_id": grant.client_id,
                "sub": grant.subject,
                "exp": grant.expires_at,
                "iat": grant.issued_at,
                "iss": registry.issuer,
                "token_type": "refresh_token",
            }))
        }
        Identified::Unknown => Ok(inactive),
    }
}
