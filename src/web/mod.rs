//! The pages a person sees: login, consent, logout and errors, with their cookies,
//! CSRF protection and security headers.

pub mod consent;
pub mod cookies;
pub mod csrf;
pub mod flood;
pub mod interaction;
pub mod login;
pub mod logout;
pub mod page;
pub mod session;
pub mod templates;

use crate::oauth::form::Form;
use crate::registry::Registry;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

/// Reads a form posted from one of our pages and checks its CSRF token; the error is
/// the page to answer with.
pub fn posted_form(
    req: &HttpRequest,
    registry: &Registry,
    body: &[u8],
) -> Result<Form, HttpResponse> {
    let form = Form::parse(body).map_err(|e| {
        page::error(
            registry,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &e.description,
        )
    })?;
    if csrf::check(req, registry, form.get("csrf_token")) {
        Ok(form)
    } else {
        Err(page::error(
            registry,
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form has expired or was not sent from this site. Start again from the application.",
        ))
    }
}
