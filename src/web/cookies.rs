//! The browser cookies: a login session and a CSRF token. HttpOnly, SameSite=Lax,
//! Secure with the `__Host-` prefix when the issuer is https (the prefix needs Secure).

use crate::registry::Registry;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use std::time::Duration;

/// Which cookie.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Session,
    Csrf,
}

fn secure(registry: &Registry) -> bool {
    registry.issuer.starts_with("https:")
}

/// The cookie's name under this issuer.
pub(crate) fn name(registry: &Registry, kind: Kind) -> &'static str {
    match (kind, secure(registry)) {
        (Kind::Session, true) => "__Host-gatehouse_session",
        (Kind::Session, false) => "gatehouse_session",
        (Kind::Csrf, true) => "__Host-gatehouse_csrf",
        (Kind::Csrf, false) => "gatehouse_csrf",
    }
}

/// The cookie's value in `req`, if sent.
pub(crate) fn read(req: &HttpRequest, registry: &Registry, kind: Kind) -> Option<String> {
    req.cookie(name(registry, kind))
        .map(|c| c.value().to_owned())
}

/// A cookie of `kind` holding `value` for `max_age`.
pub(crate) fn make(
    registry: &Registry,
    kind: Kind,
    value: String,
    max_age: Duration,
) -> Cookie<'static> {
    let max_age = CookieDuration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
    Cookie::build(name(registry, kind), value)
        .path("/")
        .http_only(true)
        .secure(secure(registry))
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

/// A cookie of `kind` that makes the browser forget it.
pub(crate) fn removal(registry: &Registry, kind: Kind) -> Cookie<'static> {
    let mut cookie = make(registry, kind, String::new(), Duration::ZERO);
    cookie.make_removal();
    cookie
}
