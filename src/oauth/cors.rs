//! CORS for browser apps: which web pages may call the token, userinfo and revocation
//! endpoints, decided per client from the registry snapshot of the request.
//!
//! - Discovery and JWKS are public metadata: `Access-Control-Allow-Origin: *`
//!   ([`any_origin`]), never credentials.
//! - `/token`, `/par`, `/userinfo`, `/revoke` are wrapped in a middleware ([`for_token`], [`for_par`],
//!   [`for_userinfo`], [`for_revoke`]). A preflight names no client, so it is answered
//!   (204) for an origin allowed for at least one client. The actual response carries
//!   `Access-Control-Allow-Origin: <origin>` when the handler found the origin allowed
//!   for the client the request is about ([`refuse_foreign_origin`], [`note_client`]);
//!   never when it found it not allowed; and, for an answer given before any client is
//!   known (a malformed form, a failed authentication, an unreadable token), when the
//!   origin is allowed for at least one client, so the app can read the error. Never
//!   `Access-Control-Allow-Credentials`: these endpoints read no cookies.
//! - `/introspect` is server-to-server and has no CORS.
//!
//! Why not actix-cors: it takes its allowed origins when the app is built, or a
//! predicate that sees only the request head. The origins here are per client, change
//! at every reload, and the client of a token request is only known once its body is
//! read and authenticated, so the handler decides and this middleware writes the headers.

use crate::error::OAuthError;
use crate::http::client_ip::ClientIp;
use crate::model::Client;
use crate::registry::Registry;
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web};

/// The request headers a browser app may send: credentials, the form's type, and
/// `DPoP` for proof-of-possession tokens.
const ALLOW_HEADERS: &str = "Authorization, Content-Type, DPoP";

/// The response headers, beyond the safelisted ones, the app may read: the Bearer
/// challenge of userinfo, the wait of a 429, and the nonce a DPoP server may ask for.
const EXPOSE_HEADERS: &str = "WWW-Authenticate, Retry-After, DPoP-Nonce";

/// How long a browser may cache a preflight answer, in seconds. The answer is only a
/// hint (every actual response is checked against the client), so a reload that
/// removes an origin takes effect at once all the same.
pub(crate) const MAX_AGE: u32 = 600;

/// The description of the refusal of a request from a foreign origin.
pub(crate) const NOT_ALLOWED: &str = "origin not allowed for this client";

/// What the handler found about the request's `Origin`, for the middleware to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Allowed for the client the request is about (or the issuer's own origin).
    Allowed,
    /// Not allowed for that client: no CORS header, the page may not read the answer.
    NotAllowed,
}

/// The request's `Origin` header, when it has a readable one.
fn origin_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// Records whether the request's origin (when it has one) is allowed for `client`, and
/// returns it; `true` without an `Origin` (a server-to-server call).
fn note(req: &HttpRequest, registry: &Registry, client: Option<&Client>) -> bool {
    let Some(origin) = origin_of(req.headers()) else {
        return true;
    };
    let allowed = registry.is_own_origin(origin) || client.is_some_and(|c| c.allows_origin(origin));
    let verdict = if allowed {
        Verdict::Allowed
    } else {
        Verdict::NotAllowed
    };
    req.extensions_mut().insert(verdict);
    allowed
}

/// Refuse before acting: a token or revocation request whose `Origin` is neither the
/// issuer's own nor allowed for the authenticated `client` is `invalid_request`. Called
/// after client authentication and before anything is redeemed, issued or revoked, so
/// a page on a foreign origin cannot burn a code or mint tokens it could never read.
pub(crate) fn refuse_foreign_origin(
    req: &HttpRequest,
    registry: &Registry,
    client: &Client,
) -> Result<(), OAuthError> {
    if note(req, registry, Some(client)) {
        return Ok(());
    }
    tracing::warn!(
        event = "origin_refused",
        remote = %ClientIp::of(req),
        client_id = %client.id,
        origin = origin_of(req.headers()).unwrap_or_default(),
    );
    Err(OAuthError::invalid_request(NOT_ALLOWED))
}

/// Records whether the request's origin may read an answer about the client
/// `client_id` (userinfo: the access token's client), which changes nothing.
pub(crate) fn note_client(req: &HttpRequest, registry: &Registry, client_id: &str) {
    note(req, registry, registry.client(client_id));
}

/// Adds `Access-Control-Allow-Origin: *` to a public document (discovery, JWKS).
pub(crate) fn any_origin(builder: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    builder.insert_header((
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    ))
}

/// Middleware on `POST /token`.
pub(crate) async fn for_token<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    per_client(req, next, "POST").await
}

/// Middleware on `POST /device_authorization`: as on `/token`.
pub(crate) async fn for_device_authorization<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    per_client(req, next, "POST").await
}

/// Middleware on `POST /par` (pushed authorization requests): as on `/token`.
pub(crate) async fn for_par<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    per_client(req, next, "POST").await
}

/// Middleware on `POST /revoke`.
pub(crate) async fn for_revoke<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    per_client(req, next, "POST").await
}

/// Middleware on `GET` and `POST /userinfo`.
pub(crate) async fn for_userinfo<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    per_client(req, next, "GET, POST").await
}

/// Answers `OPTIONS` (a preflight, or a plain one), and writes the CORS headers of
/// every other response from the handler's verdict.
async fn per_client<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
    methods: &'static str,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let origin = origin_of(req.headers()).map(str::to_owned);
    if req.method() == Method::OPTIONS {
        let is_preflight = req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let response = match origin.as_deref() {
            Some(o) if is_preflight && allowed_for_any(req.request(), o) => preflight(o, methods),
            Some(_) if is_preflight => refused_preflight(),
            _ => plain_options(methods),
        };
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin else {
        return Ok(response.map_into_left_body());
    };
    let readable = match response.request().extensions().get::<Verdict>() {
        Some(verdict) => *verdict == Verdict::Allowed,
        // Answered before any client was known (a bad form, a failed authentication).
        None => allowed_for_any(response.request(), &origin),
    };
    if readable && let Ok(value) = HeaderValue::from_str(&origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    Ok(response.map_into_left_body())
}

/// True when `origin` is the issuer's own or allowed for at least one client, in the
/// registry snapshot serving now.
fn allowed_for_any(req: &HttpRequest, origin: &str) -> bool {
    req.app_data::<web::Data<AppState>>().is_some_and(|state| {
        let registry = state.snapshot();
        registry.is_own_origin(origin) || registry.origin_allowed_for_any(origin)
    })
}

/// The answer to a preflight from an origin no client allows: no CORS header, so the
/// browser stops there.
fn refused_preflight() -> HttpResponse {
    let mut refused =
        OAuthError::invalid_request("origin not allowed for any client of this server")
            .error_response();
    refused
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    refused
}

/// The 204 answer to a preflight from an allowed `origin`.
fn preflight(origin: &str, methods: &'static str) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    if let Ok(value) = HeaderValue::from_str(origin) {
        response.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, value));
    }
    response
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        ))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
        .insert_header((header::VARY, HeaderValue::from_static("Origin")))
        .finish()
}

/// The answer to an `OPTIONS` that is no preflight: the methods the endpoint takes.
fn plain_options(methods: &'static str) -> HttpResponse {
    HttpResponse::build(StatusCode::NO_CONTENT)
        .insert_header((header::ALLOW, format!("{methods}, OPTIONS")))
        .finish()
}
