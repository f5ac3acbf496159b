//! The userinfo endpoint (OIDC Core 5.3), GET or POST with a Bearer access token:
//! the claims the token's scopes allow. Token errors follow RFC 6750 3.1.

use super::form::Form;
use crate::state::AppState;
use crate::tokens::{claims, verify};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// A 401/403 with the RFC 6750 challenge; `error` is `None` when no token was sent.
fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> HttpResponse {
    let value = match error {
        Some((code, description)) => {
            format!("Bearer error=\"{code}\", error_description=\"{description}\"")
        }
        None => "Bearer".to_owned(),
    };
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.insert_header((header::WWW_AUTHENTICATE, v));
    }
    match error {
        Some((code, description)) => {
            response.json(json!({"error": code, "error_description": description}))
        }
        None => response.finish(),
    }
}

fn invalid_token(description: &str) -> HttpResponse {
    challenge(
        StatusCode::UNAUTHORIZED,
        Some(("invalid_token", description)),
    )
}

/// The bearer token of a request (RFC 6750): the Authorization header, or for a POST
/// without one, an `access_token` form parameter. `Err` is the response to send.
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<String, HttpResponse> {
    let malformed = || {
        challenge(
            StatusCode::BAD_REQUEST,
            Some(("invalid_request", "use Authorization: Bearer <token>")),
        )
    };
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        return match auth.to_str().ok().and_then(|v| v.split_once(' ')) {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Ok(token.trim().to_owned())
            }
            _ => Err(malformed()),
        };
    }
    if req.method() == actix_web::http::Method::POST
        && super::form::require_form_content_type(req).is_ok()
    {
        let form = Form::parse(body).map_err(|_| malformed())?;
        if let Some(token) = form.get("access_token") {
            return Ok(token.to_owned());
        }
    }
    Err(challenge(StatusCode::UNAUTHORIZED, None))
}

/// `GET` or `POST /userinfo`. The body is read (and bounded) even when unused, so the
/// connection stays usable for the client's next request.
pub async fn userinfo(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let registry = state.snapshot();
    let token = match bearer_token(&req, &body) {
        Ok(t) => t,
        Err(response) => return response,
    };
    let token = token.as_str();
    let claims = match verify::access_token(&registry, token) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "userinfo token refused");
            return invalid_token("the access token is invalid or expired");
        }
    };
    match state.store.jti_denied(&claims.jti).await {
        Ok(false) => {}
        Ok(true) => return invalid_token("the access token has been revoked"),
        Err(e) => {
            tracing::error!(error = %e, "store failure at userinfo");
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    let scopes: Vec<String> = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", "the token was not granted openid")),
        );
    }
    let Some(user) = registry.user_by_id(&claims.sub) else {
        return invalid_token("the token's user no longer exists");
    };
    let mut body = claims::for_scopes(user, &scopes);
    body.insert("sub".into(), json!(user.id));
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body)
}
