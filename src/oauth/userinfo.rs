//! The userinfo endpoint (OIDC Core 5.3), GET or POST with a Bearer access token, or a
//! DPoP-bound one with `Authorization: DPoP` and a proof (RFC 9449 7): the claims the
//! token's scopes allow, for a user's token that still stands (`standing`). Token
//! errors are RFC 6750 3.1 challenges, `WWW-Authenticate: DPoP` ones for DPoP.

use super::{cors, dpop};
use crate::error::{ErrorCode, OAuthError, bearer_required};
use crate::http::form::{Form, require_form_content_type};
use crate::jwt::claims;
use crate::jwt::verify::AccessClaims;
use crate::model::{Identity, IdentitySource};
use crate::oauth::standing::{self, Holder};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

/// The access token of a request and whether it came as `DPoP` (RFC 9449 7.1) rather
/// than `Bearer` (RFC 6750): the Authorization header, or for a POST without one, an
/// `access_token` form parameter (Bearer). `Ok(None)` when there is none.
fn presented_token(req: &HttpRequest, body: &[u8]) -> Result<Option<(String, bool)>, OAuthError> {
    let malformed =
        || OAuthError::invalid_request("use Authorization: Bearer <token> or DPoP <token>");
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        return match auth.to_str().ok().and_then(|v| v.split_once(' ')) {
            Some((scheme, token)) if !token.trim().is_empty() => {
                let token = token.trim().to_owned();
                if scheme.eq_ignore_ascii_case("bearer") {
                    Ok(Some((token, false)))
                } else if scheme.eq_ignore_ascii_case("dpop") {
                    Ok(Some((token, true)))
                } else {
                    Err(malformed())
                }
            }
            _ => Err(malformed()),
        };
    }
    if req.method() == actix_web::http::Method::POST && require_form_content_type(req).is_ok() {
        let form = Form::parse(body).map_err(|_| malformed())?;
        return Ok(form.get("access_token").map(|t| (t.to_owned(), false)));
    }
    Ok(None)
}

/// The claims released about the user of a user's access token that stands, as
/// `scopes` allow, without `sub`: from the config for a user it describes (a change
/// applies at once, as in the next ID token), else (a user a provider's rules let in)
/// those the token carries, which are its ID token's. `/userinfo` and introspection
/// both answer these.
pub(crate) fn user_claims(
    user: &Identity,
    token: &AccessClaims,
    scopes: &[String],
) -> Map<String, Value> {
    if user.source != IdentitySource::Upstream {
        return claims::for_scopes(user, scopes);
    }
    token
        .profile
        .iter()
        .filter(|(name, _)| claims::USER_CLAIMS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// A DPoP-bound token needs `Authorization: DPoP` and a proof by its key whose `ath`
/// is its hash; a token that is not bound is refused as DPoP (RFC 9449 7).
async fn check_binding(
    req: &HttpRequest,
    state: &AppState,
    registry: &crate::registry::Registry,
    token: &str,
    as_dpop: bool,
    jkt: Option<&str>,
) -> Result<(), OAuthError> {
    match (jkt, as_dpop) {
        (Some(_), false) => Err(OAuthError::invalid_token(
            "a DPoP-bound token is used with Authorization: DPoP and a proof",
        )),
        (None, true) => Err(OAuthError::invalid_token(
            "the access token is not DPoP-bound; use Authorization: Bearer",
        )),
        (None, false) => Ok(()),
        (Some(jkt), true) => {
            match dpop::at_resource(req, state, registry, "/userinfo", token).await? {
                Some(proof) if proof.jkt == jkt => Ok(()),
                Some(_) => Err(OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "the DPoP proof is not by the key the token is bound to",
                )),
                None => Err(OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "a DPoP proof is required",
                )),
            }
        }
    }
}

/// `GET` or `POST /userinfo`. The body is read (and bounded) even when unused, so the
/// connection stays usable for the client's next request.
pub(crate) async fn userinfo(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut dpop_challenge = false;
    match answer(&req, &body, &state, &mut dpop_challenge).await {
        Ok(Some(response)) => response,
        Ok(None) => bearer_required(),
        Err(e) if dpop_challenge => e.dpop(&dpop::ALGS.join(" ")),
        Err(e) => e.bearer(),
    }
}

async fn answer(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    dpop_challenge: &mut bool,
) -> Result<Option<HttpResponse>, OAuthError> {
    let registry = state.snapshot();
    let Some((token, as_dpop)) = presented_token(req, body)? else {
        return Ok(None);
    };
    *dpop_challenge = as_dpop;
    let claims = state
        .verified_tokens
        .access_token(&registry.jwt(), &token, state.clock.now())
        .map_err(|e| {
            tracing::debug!(error = %e, "userinfo token refused");
            OAuthError::invalid_token("the access token is invalid or expired")
        })?;
    cors::note_client(req, &registry, &claims.client_id);
    *dpop_challenge |= claims.jkt().is_some();
    check_binding(req, state, &registry, &token, as_dpop, claims.jkt()).await?;
    // Only a user's token (RFC 9068 2.2.1 `auth_time`) may read a user's claims: a
    // client's own token never does, whatever its `sub` happens to equal.
    if claims.auth_time.is_none() {
        return Err(OAuthError::invalid_token(
            "a client's own access token has no user",
        ));
    }
    let user = match standing::access(state, &registry, &claims).await? {
        Ok(Holder::User(user)) => user,
        Ok(Holder::Client) => {
            return Err(OAuthError::invalid_token(
                "a client's own access token has no user",
            ));
        }
        Err(fallen) => return Err(OAuthError::invalid_token(fallen.to_string())),
    };
    let scopes: Vec<String> = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the token was not granted openid",
        ));
    }
    let mut body = user_claims(&user, &claims, &scopes);
    body.insert("sub".into(), json!(user.subject));
    let mut answer = HttpResponse::Ok();
    dpop::fresh_nonce(crate::http::no_store(&mut answer), req, state, &registry);
    Ok(Some(answer.json(body)))
}
