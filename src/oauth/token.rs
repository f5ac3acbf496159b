//! The token endpoint (RFC 6749 section 3.2): form POST only, dispatched by grant type.

use super::error::{ErrorCode, OAuthError};
use super::form::Form;
use super::{authorization_code, client_credentials, refresh_token};
use crate::state::AppState;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// Largest request body the token endpoint reads.
pub const MAX_BODY: usize = 64 * 1024;

/// A successful token response (RFC 6749 5.1).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// The response, never cached.
    pub fn into_response(self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
            .json(self)
    }
}

/// `POST /token`.
pub async fn token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let registry = state.snapshot();
    match form.get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is missing")),
        Some("client_credentials") => {
            client_credentials::grant(&req, &form, &registry, &state).await
        }
        Some("authorization_code") => {
            authorization_code::grant(&req, &form, &registry, &state).await
        }
        Some("refresh_token") => refresh_token::grant(&req, &form, &registry, &state).await,
        Some(other) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant type {other:?} is not supported"),
        )),
    }
}
