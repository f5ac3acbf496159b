//! Rendering pages from the registry's templates, with the security headers every page
//! carries (`http::secured`), and the error pages of the login flow.

use super::csrf::Binding;
use crate::http::secured;
use crate::registry::Registry;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

/// Renders `template` with `context` (plus `product_name`). `form_target` is where a form
/// on the page ends up after the server's redirect, which CSP `form-action` must allow.
pub(crate) fn render(
    registry: &Registry,
    status: StatusCode,
    template: &str,
    mut context: Value,
    form_target: Option<&str>,
) -> HttpResponse {
    context["product_name"] = json!(registry.ui.product_name);
    match registry.ui.templates.render(template, &context) {
        Ok(html) => secured(HttpResponse::build(status), form_target)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(template, error = %e, "a page template failed to render");
            secured(HttpResponse::InternalServerError(), None)
                .content_type("text/plain; charset=utf-8")
                .body("This page could not be rendered; the server log says why.\n")
        }
    }
}

/// Renders a page that holds a form acting on `binding`: puts the CSRF token bound to
/// it in the context and sets the CSRF cookie when the browser has none yet.
pub(crate) fn render_form(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    template: &str,
    binding: &Binding,
    mut context: Value,
    form_target: Option<&str>,
) -> HttpResponse {
    let (token, cookie) = match super::csrf::token(req, state, registry, binding) {
        Ok(t) => t,
        Err(e) => return unavailable(registry, e),
    };
    context["csrf_token"] = json!(token);
    let mut response = render(registry, StatusCode::OK, template, context, form_target);
    if let Some(cookie) = cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

/// Lets `response`'s page run this server's own script files (the passkey pages),
/// its forms still posting only to this server and `form_targets`.
pub(crate) fn allow_own_scripts(response: &mut HttpResponse, form_targets: &[&str]) {
    if let Some(csp) = crate::http::content_security_policy_with_scripts(form_targets) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
}

/// An error page: never a redirect, for requests that cannot be sent back to a client.
pub(crate) fn error(
    registry: &Registry,
    status: StatusCode,
    title: &str,
    message: &str,
) -> HttpResponse {
    render(
        registry,
        status,
        "error.html",
        json!({"title": title, "message": message}),
        None,
    )
}

/// A 429 page saying `message`, with `Retry-After: retry_after` (at least a second).
pub(crate) fn too_many(
    registry: &Registry,
    title: &str,
    message: &str,
    retry_after: std::time::Duration,
) -> HttpResponse {
    let mut response = error(registry, StatusCode::TOO_MANY_REQUESTS, title, message);
    if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The 400 page for a request that cannot go on, saying why.
pub(crate) fn invalid_request(registry: &Registry, message: &str) -> HttpResponse {
    error(
        registry,
        StatusCode::BAD_REQUEST,
        "Invalid request",
        message,
    )
}

/// The 400 page for a client that cannot be trusted (`invalid_client`): its metadata
/// document could not be fetched or breaks a rule. Never a redirect: its redirect URIs
/// are unverified.
pub(crate) fn invalid_client(registry: &Registry, message: &str) -> HttpResponse {
    error(
        registry,
        StatusCode::BAD_REQUEST,
        "Unknown application (invalid_client)",
        message,
    )
}

/// The 503 page for a failure on our side (the store, the random number generator):
/// the request cannot go on, nothing was half done, and a retry may work.
pub(crate) fn unavailable(registry: &Registry, e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "a page request failed on the server's side");
    error(
        registry,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The sign-in service cannot complete this right now. Try again in a moment.",
    )
}

/// The 503 page for a provider that cannot be reached (its login only: every other
/// way in still works).
pub(crate) fn provider_unavailable(registry: &Registry, provider_name: &str) -> HttpResponse {
    error(
        registry,
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        &format!("{provider_name} cannot be reached right now. Try again in a moment."),
    )
}

/// The 403 page for a login that needs a second factor the user does not have
/// (`[login] second_factor = "required"`, a client's `require_second_factor`, or
/// `acr_values` asking for two factors).
pub(crate) fn no_second_factor(registry: &Registry) -> HttpResponse {
    error(
        registry,
        StatusCode::FORBIDDEN,
        "Second factor needed",
        "This sign-in needs a second factor, and your account has none yet. Ask an administrator to enrol one for you (an authenticator app), then sign in again.",
    )
}

/// The page for a form whose pending request has expired.
pub(crate) fn expired_request(registry: &Registry) -> HttpResponse {
    error(
        registry,
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in request has expired. Return to the application and start again.",
    )
}
