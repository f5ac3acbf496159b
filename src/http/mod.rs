//! HTTP helpers every endpoint shares and that know nothing of OAuth: redirects, query
//! building, the security headers of pages and JSON answers, the caller's address, and
//! strict form parsing.

pub mod client_ip;
pub mod form;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use url::Url;

/// `uri` with `params` added to its query (keeping any query it has).
pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.into()
        }
        Err(_) => uri.to_owned(),
    }
}

/// A 303 to `location`, with the page security headers.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    secured(HttpResponse::SeeOther(), None)
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Marks a JSON answer as never cacheable (RFC 6749 5.1).
pub(crate) fn no_store(builder: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
}

/// Adds the page security headers to `builder`: a Content-Security-Policy that allows
/// no script and styles only from this server, no framing, no referrer, no caching.
/// `form_target` is where a form on the page ends up after the server's redirect,
/// which CSP `form-action` must allow.
pub(crate) fn secured(
    mut builder: HttpResponseBuilder,
    form_target: Option<&str>,
) -> HttpResponseBuilder {
    if let Some(value) = content_security_policy(form_target.as_slice()) {
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

/// The page Content-Security-Policy whose `form-action` allows this server and the
/// origins of `form_targets` (where a form ends up after the server's redirects: the
/// client's redirect URI, an upstream provider's authorization endpoint).
pub(crate) fn content_security_policy(form_targets: &[&str]) -> Option<HeaderValue> {
    page_policy(form_targets, false)
}

/// The page Content-Security-Policy, also allowing this server's own script files
/// (`script-src 'self'`, never inline): for the pages that use passkeys.
pub(crate) fn content_security_policy_with_scripts(form_targets: &[&str]) -> Option<HeaderValue> {
    page_policy(form_targets, true)
}

fn page_policy(form_targets: &[&str], scripts: bool) -> Option<HeaderValue> {
    let mut form_action = "'self'".to_owned();
    for source in form_targets.iter().filter_map(|t| csp_source(t)) {
        if !form_action.split(' ').any(|s| s == source) {
            form_action.push(' ');
            form_action.push_str(&source);
        }
    }
    let script = if scripts { " script-src 'self';" } else { "" };
    let csp = format!(
        "default-src 'none';{script} style-src 'self'; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&csp).ok()
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

    #[test]
    fn params_are_added_to_an_existing_query() {
        assert_eq!(
            with_params(
                "https://a.example/cb?x=1",
                &[("code", "a b"), ("state", "s")]
            ),
            "https://a.example/cb?x=1&code=a+b&state=s"
        );
    }
}
