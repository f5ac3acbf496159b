//! Web origin rules (RFC 6454): which origins a client may register in
//! `allowed_origins`, the origin a redirect URI or the issuer implies, and whether the
//! `Origin` header of a request is one of them.
//!
//! An origin is `scheme://host[:port]`, compared as the exact string a browser sends:
//! lower-case scheme and host, no default port, no path. Registering follows the
//! redirect-URI rules: `https`, or `http` on loopback hosts only; no wildcard.

use super::redirect_uri::is_loopback_host;
use url::{Origin, Url};

/// The ASCII serialization of the origin of an `http` or `https` URL (what a browser
/// puts in `Origin`), or `None` for any other scheme or an unparsable URL.
pub(crate) fn of_url(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.origin() {
        origin @ Origin::Tuple(..) => Some(origin.ascii_serialization()),
        Origin::Opaque(_) => None,
    }
}

/// The origins of the `http(s)` URIs among `uris`, each once, in order: a public
/// client's default `allowed_origins`, from its redirect URIs. Private-use schemes of
/// native apps have no origin and give none.
pub(crate) fn of_redirect_uris(uris: &[String]) -> Vec<String> {
    let mut origins: Vec<String> = Vec::new();
    for origin in uris.iter().filter_map(|uri| of_url(uri)) {
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    origins
}

/// Checks an origin a client registers in `allowed_origins`; the error says which rule
/// it breaks, and for a near miss, how to write it.
pub(crate) fn check_allowed(origin: &str) -> Result<(), String> {
    if origin.contains('*') {
        return Err(format!(
            "{origin:?} has a wildcard; list each origin (scheme://host[:port]) in full"
        ));
    }
    let url = Url::parse(origin)
        .map_err(|e| format!("{origin:?} is not an origin like https://app.example.com ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{origin:?} uses scheme {:?}; an origin is https (or http on loopback hosts)",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{origin:?} has user information; an origin has none"
        ));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || origin.ends_with('/')
    {
        return Err(format!(
            "{origin:?} has a path, query or fragment; an origin is scheme://host[:port] alone"
        ));
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(format!(
            "{origin:?} uses http; only loopback hosts (127.0.0.1, [::1], localhost) may, others need https"
        ));
    }
    let canonical = url.origin().ascii_serialization();
    if canonical != origin {
        return Err(format!(
            "{origin:?} is not written as browsers send it; write {canonical:?}"
        ));
    }
    Ok(())
}

/// True when the `Origin` a request carries is one of `allowed`. Browsers send `null`
/// for opaque origins (sandboxed frames, `file:` pages), and `null` is never allowed.
pub(crate) fn is_allowed(request_origin: &str, allowed: &[String]) -> bool {
    request_origin != "null" && allowed.iter().any(|a| a == request_origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            of_url("https://app.example.com/cb?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            of_url("https://app.example.com:443/cb").as_deref(),
            Some("https://app.example.com"),
            "the default port is left out, as browsers do"
        );
        assert_eq!(
            of_url("http://localhost:5173/callback.html").as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(
            of_url("HTTP://LocalHost:5173/").as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(
            of_url("http://[::1]:8000/cb").as_deref(),
            Some("http://[::1]:8000")
        );
        assert_eq!(of_url("com.example.app:/cb"), None);
        assert_eq!(of_url("not a url"), None);
    }

    #[test]
    fn default_origins_come_from_http_redirect_uris_once_each() {
        let uris: Vec<String> = [
            "http://localhost:5173/callback.html",
            "http://localhost:5173/silent.html",
            "https://app.example.com/cb",
            "com.example.app:/cb",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(
            of_redirect_uris(&uris),
            ["http://localhost:5173", "https://app.example.com"]
        );
        assert!(of_redirect_uris(&[]).is_empty());
    }

    #[test]
    fn registration_rules() {
        for good in [
            "https://app.example.com",
            "https://app.example.com:8443",
            "http://localhost:5173",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
            "http://localhost",
        ] {
            assert!(check_allowed(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("https://*.example.com", "wildcard"),
            ("*", "wildcard"),
            ("https://app.example.com/", "path"),
            ("https://app.example.com/spa", "path"),
            ("https://app.example.com?x=1", "path"),
            ("https://app.example.com#x", "path"),
            ("http://app.example.com", "http"),
            ("http://localhost.evil.com", "http"),
            ("ftp://app.example.com", "scheme"),
            ("com.example.app:", "scheme"),
            ("null", "not an origin"),
            ("app.example.com", "not an origin"),
            ("", "not an origin"),
            ("https://user@app.example.com", "user information"),
            (
                "https://App.Example.com",
                "write \"https://app.example.com\"",
            ),
            (
                "https://app.example.com:443",
                "write \"https://app.example.com\"",
            ),
        ] {
            let e = check_allowed(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn request_origins_match_exactly() {
        let allowed = vec!["http://localhost:5173".to_owned()];
        assert!(is_allowed("http://localhost:5173", &allowed));
        assert!(!is_allowed("http://localhost:5174", &allowed));
        assert!(!is_allowed("http://127.0.0.1:5173", &allowed));
        assert!(!is_allowed("http://localhost:5173/", &allowed));
        assert!(!is_allowed("https://localhost:5173", &allowed));
        assert!(!is_allowed("null", &["null".to_owned()]));
        assert!(!is_allowed("", &allowed));
    }
}
