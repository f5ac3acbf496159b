//! Rendering pages with the headers every page carries: a strict Content-Security-Policy
//! (no script at all, styles only from this server), no framing, no referrer, no caching.

use crate::registry::Registry;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::{Value, json};
use url::Url;

/// Renders `template` with `context` (plus `product_name`). `form_target` is where a form
/// on the page ends up after the server's redirect, which CSP `form-action` must allow.
pub fn render(
    registry: &Registry,
    status: StatusCode,
    template: &str,
    mut context: Value,
    form_target: Option<&str>,
) -> HttpResponse {
    context["product_name"] = json!(registry.product_name);
    match registry.templates.render(template, &context) {
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

/// Renders a page that holds a form: puts the CSRF token in the context and sets the
/// CSRF cookie when the browser has none yet.
pub fn render_form(
    req: &HttpRequest,
    registry: &Registry,
    template: &str,
    mut context: Value,
    form_target: Option<&str>,
) -> HttpResponse {
    let (token, cookie) = match super::csrf::token(req, registry) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot make a CSRF token");
            return error(
                registry,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "Try again in a moment.",
            );
        }
    };
    context["csrf_token"] = json!(token);
    let mut response = render(registry, StatusCode::OK, template, context, form_target);
    if let Some(cookie) = cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

/// An error page: never a redirect, for requests that cannot be sent back to a client.
pub fn error(registry: &Registry, status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(
        registry,
        status,
        "error.html",
        json!({"title": title, "message": message}),
        None,
    )
}

/// Adds the page security headers to `builder`.
pub fn secured(mut builder: HttpResponseBuilder, form_target: Option<&str>) -> HttpResponseBuilder {
    let form_action = match form_target.and_then(csp_source) {
        Some(extra) => format!("'self' {extra}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        builder.insert_header((header::CONTENT_SECURITY_POLICY, value));
    }
    builder
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    builder
}

/// The CSP source expression for a redirect target: its origin, or its scheme for
/// private-use schemes of native apps.
fn csp_source(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_sources() {
        assert_eq!(
            csp_source("https://app.example.com/cb?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            csp_source("http://127.0.0.1:5123/cb").as_deref(),
            Some("http://127.0.0.1:5123")
        );
        assert_eq!(
            csp_source("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("not a url"), None);
    }
}
