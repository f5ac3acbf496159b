//! Redirect URI rules: what may be registered, and whether a requested URI matches.
//!
//! Registration follows OAuth 2.1 and RFC 8252: absolute, no fragment, https except on
//! loopback hosts, and private-use schemes (`com.example.app:/cb`) for native apps.

use url::{Host, Url};

/// True for `localhost`, `127.0.0.0/8` and `[::1]`: hosts that never leave the machine.
pub(crate) fn is_loopback_host(url: &Url) -> bool {
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

/// True for the IP-literal loopback hosts (`127.0.0.0/8`, `[::1]`), whose port a native
/// app picks at run time (RFC 8252 7.3). `localhost` is not one: it is matched exactly.
fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// Finds the registered URI that `requested` matches: exactly, character for character,
/// or for an `http` loopback IP literal, everything equal but the port.
pub fn find_match<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| *r == requested) {
        return Some(exact);
    }
    let req = Url::parse(requested).ok()?;
    if req.scheme() != "http"
        || !is_loopback_ip(&req)
        || req.fragment().is_some()
        || !req.username().is_empty()
    {
        return None;
    }
    registered.iter().map(String::as_str).find(|r| {
        Url::parse(r).is_ok_and(|reg| {
            reg.scheme() == "http"
                && is_loopback_ip(&reg)
                && reg.host() == req.host()
                && reg.path() == req.path()
                && reg.query() == req.query()
                && reg.username().is_empty()
                && reg.password().is_none()
                && req.password().is_none()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn exact_matching_only() {
        let r = regs(&[
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
        ]);
        assert!(find_match(&r, "https://app.example.com/cb").is_some());
        assert!(find_match(&r, "https://app.example.com/cb?x=1").is_some());
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=2",
            "https://app.example.com/cbx",
            "https://app.example.com/c",
            "https://APP.example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/cb#x",
            "https://evil.com/cb",
            "https://app.example.com.evil.com/cb",
            "https://app.example.com/cb/../cb",
            "http://app.example.com/cb",
        ] {
            assert!(find_match(&r, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn loopback_ip_literals_ignore_the_port_only() {
        let r = regs(&[
            "http://127.0.0.1/callback",
            "http://[::1]/cb?a=b",
            "http://localhost:3000/cb",
        ]);
        assert!(find_match(&r, "http://127.0.0.1:51234/callback").is_some());
        assert!(find_match(&r, "http://127.0.0.1/callback").is_some());
        assert!(find_match(&r, "http://[::1]:8000/cb?a=b").is_some());
        assert!(
            find_match(&r, "http://127.0.0.1:51234/other").is_none(),
            "path must match"
        );
        assert!(
            find_match(&r, "http://[::1]:8000/cb?a=c").is_none(),
            "query must match"
        );
        assert!(
            find_match(&r, "http://127.0.0.2:5000/callback").is_none(),
            "host must match"
        );
        assert!(
            find_match(&r, "http://localhost:3001/cb").is_none(),
            "localhost is exact"
        );
        assert!(find_match(&r, "http://localhost:3000/cb").is_some());
        assert!(
            find_match(&r, "https://127.0.0.1:5000/callback").is_none(),
            "scheme must match"
        );
        assert!(find_match(&r, "http://user@127.0.0.1:5000/callback").is_none());
        assert!(find_match(&r, "http://127.0.0.1:5000/callback#f").is_none());
    }

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
