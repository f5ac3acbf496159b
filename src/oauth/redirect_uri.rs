//! Redirect URI rules: what may be registered, and whether a requested URI matches.
//!
//! Registration follows OAuth 2.1 and RFC 8252: absolute, no fragment, https except on
//! loopback hosts, and private-use schemes (`com.example.app:/cb`) for native apps.

use url::{Host, Url};

/// True for `localhost`, `127.0.0.0/8` and `[::1]`: hosts that never leave the machine.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a redirect URI a client registers; the error says which rule it breaks.
pub fn check_registered(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "{uri:?} has a fragment, which redirect URIs may not have"
        ));
    }
    match url.scheme() {
        "https" => {
            if url.host().is_none() {
                return Err(format!("{uri:?} has no host"));
            }
            Ok(())
        }
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(format!(
            "{uri:?} uses http; only loopback hosts (127.0.0.1, [::1], localhost) may, others need https"
        )),
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "{uri:?} uses scheme {scheme:?}; use https, http on loopback, or a private-use \
             scheme in reverse-domain form such as com.example.app:/callback"
        )),
    }
}

/// Checks the issuer identifier: absolute https (http only on loopback), no query or fragment.
pub fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = Url::parse(issuer).map_err(|e| format!("{issuer:?} is not an absolute URL ({e})"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?} may not have a query or a fragment"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(format!(
            "{issuer:?} uses http; only loopback hosts may, anything else needs https"
        )),
        _ => Err(format!("{issuer:?} must be an https URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(check_registered("https://app.example.com/cb").is_ok());
        assert!(check_registered("http://127.0.0.1/callback").is_ok());
        assert!(check_registered("http://127.8.0.1:9000/callback").is_ok());
        assert!(check_registered("http://[::1]/cb").is_ok());
        assert!(check_registered("http://localhost:3000/cb").is_ok());
        assert!(check_registered("com.example.app:/oauth2redirect").is_ok());
        assert!(check_registered("http://app.example.com/cb").is_err());
        assert!(check_registered("https://app.example.com/cb#frag").is_err());
        assert!(check_registered("/relative/cb").is_err());
        assert!(check_registered("javascript:alert(1)").is_err());
        assert!(check_registered("data:text/html,hi").is_err());
        assert!(check_registered("http://localhost.evil.com/cb").is_err());
    }

    #[test]
    fn issuer_rules() {
        assert!(check_issuer("https://id.example.com").is_ok());
        assert!(check_issuer("https://id.example.com/tenant").is_ok());
        assert!(check_issuer("http://127.0.0.1:8080").is_ok());
        assert!(check_issuer("http://localhost:8080").is_ok());
        assert!(check_issuer("http://id.example.com").is_err());
        assert!(check_issuer("https://id.example.com?x=1").is_err());
        assert!(check_issuer("https://id.example.com#x").is_err());
        assert!(check_issuer("id.example.com").is_err());
        assert!(check_issuer("ftp://id.example.com").is_err());
    }
}
