//! CSRF protection for every form, two layers deep.
//!
//! The token: an HMAC-SHA256, under a key only the server holds, of the browser's
//! CSRF cookie (a random id) and of what the form acts on (the pending request, or the
//! session for logout). A token is good for one browser and one request: it cannot be
//! carried to another pending request, made up, or planted with a cookie, and it is
//! compared in constant time. The key is the store's shared secret (`AppState::form_key`),
//! so a form one replica rendered is accepted by another, with no sticky sessions.
//!
//! The origin: a form post the browser marks as cross-site (`Sec-Fetch-Site`), or
//! whose `Origin` names another origin than the issuer's, is refused before the token
//! is looked at.

use super::cookies::{self, Kind};
use crate::crypto::{RngError, random_id};
use crate::registry::Registry;
use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::cookie::Cookie;
use std::time::Duration;

/// How long a CSRF cookie lasts: longer than anyone lingers on a form.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The shortest CSRF cookie accepted (a `random_id` is 22 characters).
const MIN_COOKIE_LEN: usize = 22;

/// What a form acts on, and so what its token is bound to.
pub(crate) enum Binding {
    /// A pending authorization request (login, consent), by its id.
    Pending(String),
    /// The browser's session (logout), by its cookie value.
    Session(String),
    /// A device user code (the `/device` forms), canonical; empty for the form the
    /// code is typed into.
    Device(String),
    /// A login sent to an upstream provider, by its `state`: the callback must come
    /// back to the browser that started it (its tag is kept in the pending request).
    Upstream(String),
}

impl Binding {
    fn parts(&self) -> [&[u8]; 2] {
        match self {
            Self::Pending(id) => [b"pending", id.as_bytes()],
            Self::Session(id) => [b"session", id.as_bytes()],
            Self::Device(code) => [b"device", code.as_bytes()],
            Self::Upstream(state) => [b"upstream", state.as_bytes()],
        }
    }
}

/// The browser's CSRF cookie value, if it has a usable one.
fn cookie_value(req: &HttpRequest, registry: &Registry) -> Option<String> {
    cookies::read(req, registry, Kind::Csrf).filter(|t| t.len() >= MIN_COOKIE_LEN)
}

fn tag_parts<'a>(cookie: &'a str, binding: &'a Binding) -> [&'a [u8]; 4] {
    let [kind, value] = binding.parts();
    [b"gatehouse csrf v1", cookie.as_bytes(), kind, value]
}

/// The token to put in a form acting on `binding`, and the cookie to set when the
/// browser has none yet.
pub(crate) fn token(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    binding: &Binding,
) -> Result<(String, Option<Cookie<'static>>), RngError> {
    let (cookie, new) = match cookie_value(req, registry) {
        Some(existing) => (existing, None),
        None => {
            let fresh = random_id()?;
            let cookie = cookies::make(registry, Kind::Csrf, fresh.clone(), LIFETIME);
            (fresh, Some(cookie))
        }
    };
    Ok((state.form_key().1.token(&tag_parts(&cookie, binding)), new))
}

/// True when the form's token was made for this browser's cookie and `binding`.
pub(crate) fn check(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    binding: &Binding,
    form_token: Option<&str>,
) -> bool {
    match (cookie_value(req, registry), form_token) {
        (Some(cookie), Some(token)) => state
            .form_key()
            .1
            .verify_token(&tag_parts(&cookie, binding), token),
        _ => false,
    }
}

/// False when the browser says the post comes from another site: `Sec-Fetch-Site`
/// other than `same-origin` (or `none`, a user's own navigation), or, from browsers
/// that do not send it, an `Origin` other than the issuer's (`null`, which
/// `Referrer-Policy: no-referrer` pages make browsers send, is left to the token).
pub(crate) fn same_origin(req: &HttpRequest, registry: &Registry) -> bool {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("invalid"))
    };
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match header("origin") {
        None | Some("null") => true,
        Some(origin) => url::Url::parse(&registry.issuer)
            .is_ok_and(|issuer| issuer.origin().ascii_serialization() == origin),
    }
}
