//! The one error vocabulary of the server: every RFC error code gatehouse answers with,
//! and one [`OAuthError`] rendered three ways, as the protocol in use wants it:
//!
//! - JSON with the right status (RFC 6749 5.2; token, introspection, revocation), via
//!   actix's `ResponseError`;
//! - a redirect to the client with `error`, `error_description`, `state` and `iss`
//!   (RFC 6749 4.1.2.1, RFC 9207), via [`OAuthError::redirect`];
//! - a `WWW-Authenticate: Bearer` challenge (RFC 6750 3.1), via [`OAuthError::bearer`].
//!
//! Modelled on node-oidc-provider's `lib/helpers/errors.js`: handlers build errors,
//! never responses.

use crate::http::form::FormError;
use crate::http::{no_store, see_other, with_params};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

/// Every error code the server uses, with its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // RFC 6749 4.1.2.1 and 5.2.
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    // RFC 6750 3.1.
    InvalidToken,
    InsufficientScope,
    // RFC 8628 3.5.
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    // OpenID Connect Core 3.1.2.6.
    InteractionRequired,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    // RFC 8707 2.
    InvalidTarget,
    // RFC 9126 4 (OIDC Core 3.1.2.6).
    InvalidRequestUri,
    // RFC 9449 5, 7.1, 8.
    InvalidDpopProof,
    UseDpopNonce,
}

impl ErrorCode {
    /// The wire name (`invalid_grant`, ...).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InteractionRequired => "interaction_required",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The status of a JSON or Bearer answer carrying this code.
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error for the client: its code, a description for the client's developer, and
/// how the HTTP answer must look.
#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// Set when the client tried HTTP Basic: a 401 then carries `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
    /// Refused for too many failures: a 429 with `Retry-After` of this many seconds.
    pub retry_after: Option<u64>,
    /// A DPoP nonce to send in a `DPoP-Nonce` header (RFC 9449 8): the one the client
    /// must use next.
    pub dpop_nonce: Option<String>,
}

/// Where an authorization error goes back to: the request's checked redirect URI and
/// its `state`.
#[derive(Debug, Clone)]
pub(crate) struct ReturnTo<'a> {
    pub(crate) redirect_uri: &'a str,
    pub(crate) state: Option<&'a str>,
}

impl OAuthError {
    /// An error with `code` and a description for the client developer.
    pub(crate) fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
            dpop_nonce: None,
        }
    }

    /// `invalid_request`.
    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope`.
    pub(crate) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `invalid_target` (RFC 8707 2): a resource that is unknown, not allowed or not
    /// authorized, or not an absolute URI without a fragment.
    pub(crate) fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }

    /// `invalid_token` (RFC 6750).
    pub(crate) fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, description)
    }

    /// `invalid_client`, challenging for Basic when the client used it.
    pub(crate) fn invalid_client(description: impl Into<String>, used_basic: bool) -> Self {
        Self {
            basic_challenge: used_basic,
            ..Self::new(ErrorCode::InvalidClient, description)
        }
    }

    /// A 429 `temporarily_unavailable`: too many failures; try again after
    /// `retry_after` seconds.
    pub(crate) fn too_many(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                ErrorCode::TemporarilyUnavailable,
                "too many failed attempts; try again later",
            )
        }
    }

    /// `server_error` for a fault on our side; the detail goes to the log, never to
    /// the client.
    pub(crate) fn server(e: impl fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed on the server's side");
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// A 503 `temporarily_unavailable`: something the request needs (the store) cannot
    /// be reached; nothing was changed, and a retry may succeed.
    pub(crate) fn unavailable(e: impl fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed: a dependency is unavailable");
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the server cannot complete the request right now; try again",
        )
    }

    /// The HTTP status of the JSON or Bearer rendering.
    pub(crate) fn status(&self) -> StatusCode {
        if self.retry_after.is_some() {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            self.code.status()
        }
    }

    /// Rendered as a redirect to the client (RFC 6749 4.1.2.1), with `iss` (RFC 9207).
    pub(crate) fn redirect(&self, to: &ReturnTo<'_>, issuer: &str) -> HttpResponse {
        let mut params = vec![
            ("error", self.code.as_str()),
            ("error_description", self.description.as_str()),
        ];
        if let Some(state) = to.state {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        see_other(&with_params(to.redirect_uri, &params))
    }

    /// Rendered as an RFC 6750 3.1 challenge, `WWW-Authenticate: Bearer error=...`
    /// (for a server-side failure, a plain JSON error: there is nothing to challenge).
    pub(crate) fn bearer(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        no_store(&mut response);
        if self.status().is_client_error() {
            let value = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.code.as_str(),
                self.description.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.insert_header((header::WWW_AUTHENTICATE, v));
            }
        }
        response.json(Body {
            error: self.code,
            error_description: &self.description,
        })
    }
}

impl OAuthError {
    /// Rendered as an RFC 9449 7.1 challenge from a resource:
    /// `WWW-Authenticate: DPoP error=..., algs="..."` (a proof or nonce error is a 401
    /// there), with the `DPoP-Nonce` header when one is to be used.
    pub(crate) fn dpop(&self, algs: &str) -> HttpResponse {
        let status = match self.code {
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => StatusCode::UNAUTHORIZED,
            _ => self.status(),
        };
        let mut response = HttpResponse::build(status);
        no_store(&mut response);
        if status.is_client_error() {
            let value = format!(
                "DPoP error=\"{}\", error_description=\"{}\", algs=\"{algs}\"",
                self.code.as_str(),
                self.description.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.insert_header((header::WWW_AUTHENTICATE, v));
            }
        }
        self.nonce_header(&mut response);
        response.json(Body {
            error: self.code,
            error_description: &self.description,
        })
    }

    fn nonce_header(&self, response: &mut actix_web::HttpResponseBuilder) {
        if let Some(nonce) = &self.dpop_nonce
            && let Ok(v) = HeaderValue::from_str(nonce)
        {
            response.insert_header(("DPoP-Nonce", v));
        }
    }
}

/// The RFC 6750 3.1 answer to a request that carried no token at all: a bare
/// `WWW-Authenticate: Bearer` challenge, with no error code.
pub(crate) fn bearer_required() -> HttpResponse {
    let mut response = HttpResponse::Unauthorized();
    no_store(&mut response);
    response
        .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")))
        .finish()
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorCode,
    error_description: &'a str,
}

impl From<FormError> for OAuthError {
    fn from(e: FormError) -> Self {
        Self::invalid_request(e.description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        no_store(&mut response);
        if self.code == ErrorCode::InvalidClient && self.basic_challenge {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            ));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        self.nonce_header(&mut response);
        response.json(Body {
            error: self.code,
            error_description: &self.description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::UnsupportedResponseType,
            ErrorCode::AuthorizationPending,
            ErrorCode::RequestUriNotSupported,
            ErrorCode::TemporarilyUnavailable,
            ErrorCode::InvalidRequestUri,
            ErrorCode::InvalidDpopProof,
            ErrorCode::UseDpopNonce,
        ] {
            assert_eq!(
                serde_json::to_value(code).expect("serializes"),
                serde_json::json!(code.as_str())
            );
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            OAuthError::too_many(3).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            OAuthError::invalid_client("x", false).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            OAuthError::new(ErrorCode::InsufficientScope, "x").status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            OAuthError::invalid_grant("x").status(),
            StatusCode::BAD_REQUEST
        );
    }
}
