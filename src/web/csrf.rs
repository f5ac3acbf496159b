//! CSRF protection for every form: a random token in a cookie that the form must echo
//! (double submit). Another site can make a browser post a form, but cannot read or set
//! the cookie, so it cannot put the matching token in the form.

use super::cookies::{self, Kind};
use crate::crypto::{RngError, random_id};
use crate::registry::Registry;
use actix_web::HttpRequest;
use actix_web::cookie::Cookie;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How long a CSRF token lasts: longer than anyone lingers on a form.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The token to put in a form, and the cookie to set when the browser has none yet.
pub fn token(
    req: &HttpRequest,
    registry: &Registry,
) -> Result<(String, Option<Cookie<'static>>), RngError> {
    match cookies::read(req, registry, Kind::Csrf).filter(|t| t.len() >= 22) {
        Some(existing) => Ok((existing, None)),
        None => {
            let fresh = random_id()?;
            let cookie = cookies::make(registry, Kind::Csrf, fresh.clone(), LIFETIME);
            Ok((fresh, Some(cookie)))
        }
    }
}

/// True when the form's token matches the browser's cookie.
pub fn check(req: &HttpRequest, registry: &Registry, form_token: Option<&str>) -> bool {
    match (cookies::read(req, registry, Kind::Csrf), form_token) {
        (Some(cookie), Some(form)) if !cookie.is_empty() => {
            bool::from(cookie.as_bytes().ct_eq(form.as_bytes()))
        }
        _ => false,
    }
}
