//! OAuth error responses (RFC 6749 section 5.2): a JSON body with `error` and
//! `error_description`, the status the RFC gives, and never a cacheable response.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

/// The RFC 6749 error codes the token endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    ServerError,
    /// Too many failures: answered with 429 and `Retry-After`.
    #[serde(rename = "temporarily_unavailable")]
    TooManyRequests,
}

/// An OAuth error: its code, a human description, and whether to ask for Basic auth.
#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// Set when the client tried HTTP Basic: a 401 then carries `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
    /// Seconds until a refused client may try again (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    /// An error with `code` and a description for the client developer.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// A 429: too many failures; try again after `retry_after` seconds.
    pub fn too_many(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                ErrorCode::TooManyRequests,
                "too many failed attempts; try again later",
            )
        }
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `server_error` for a fault on our side; the detail goes to the log, not the client.
    pub fn server(e: impl fmt::Display) -> Self {
        tracing::error!(error = %e, "token endpoint failure");
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// `invalid_client`, challenging for Basic when the client used it.
    pub fn invalid_client(description: impl Into<String>, used_basic: bool) -> Self {
        Self {
            basic_challenge: used_basic,
            ..Self::new(ErrorCode::InvalidClient, description)
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.description)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorCode,
    error_description: &'a str,
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        if self.code == ErrorCode::InvalidClient && self.basic_challenge {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            ));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response.json(Body {
            error: self.code,
            error_description: &self.description,
        })
    }
}
