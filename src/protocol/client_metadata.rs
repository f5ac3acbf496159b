//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document), the pure
//! rules: which `client_id`s are documents (a configured prefix, then the draft's URL
//! rules), what a fetched document must say to become a client, how long it is kept
//! (`Cache-Control`), and which addresses it may be fetched from. No I/O here: the
//! fetcher is `upstream::document`, the client `model::Client::from_document`.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use url::Url;

/// The largest document read.
pub(crate) const MAX_DOCUMENT: usize = 5 * 1024;
/// How long a whole fetch may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest a document is kept (also for `no-store`, `no-cache` or no header).
pub(crate) const MIN_CACHE: Duration = Duration::from_secs(60);
/// The longest a document is kept, whatever its `max-age`.
pub(crate) const MAX_CACHE: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest `client_id` taken for a document URL.
pub(crate) const MAX_CLIENT_ID: usize = 2048;
/// The most redirect URIs a document may list.
pub(crate) const MAX_REDIRECT_URIS: usize = 20;
/// The longest `client_name` shown.
const MAX_NAME: usize = 100;

/// Why a `client_id` or a document is refused (shown to the user, never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(pub String);

fn refused(why: impl Into<String>) -> Refused {
    Refused(why.into())
}

/// Checks a configured `url_prefix`: an absolute https URL with a host, written as it
/// parses (no dot segments, default port left out), its path ending in `/`, without
/// userinfo, query or fragment; http only on a loopback host. `Ok(true)` for a loopback
/// prefix (its documents may come from loopback addresses).
pub(crate) fn check_prefix(prefix: &str) -> Result<bool, String> {
    let url = Url::parse(prefix).map_err(|e| format!("{prefix:?} is not an absolute URL ({e})"))?;
    if url.as_str() != prefix {
        return Err(format!(
            "{prefix:?} is not written as it parses: {:?}",
            url.as_str()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{prefix:?} may not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{prefix:?} may not have a query or a fragment"));
    }
    if !url.path().ends_with('/') {
        return Err(format!(
            "{prefix:?} must end with '/', so that it names a folder and not the start of a name"
        ));
    }
    let loopback = is_loopback_host(&url);
    match url.scheme() {
        "https" if url.host().is_some() => Ok(loopback),
        "http" if loopback => Ok(true),
        "http" => Err(format!(
            "{prefix:?} uses http; only loopback hosts (127.0.0.1, [::1], localhost) may"
        )),
        _ => Err(format!("{prefix:?} must be an https URL")),
    }
}

/// True when `url`'s host is a loopback IP literal or `localhost`.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The document URL a `client_id` under `prefix` names (the caller has matched the
/// prefix): an absolute URL written exactly as it parses (so no dot segments or
/// needless escapes), with a path below `/`, without fragment or userinfo; https, or
/// http for a loopback prefix (`loopback`).
pub(crate) fn document_url(client_id: &str, loopback: bool) -> Result<Url, Refused> {
    if client_id.len() > MAX_CLIENT_ID {
        return Err(refused("the client_id is too long for a document URL"));
    }
    let url = Url::parse(client_id).map_err(|_| refused("the client_id is not a URL"))?;
    if url.as_str() != client_id {
        return Err(refused(
            "the client_id is not a URL written as it parses (dot segments, escapes)",
        ));
    }
    let scheme_ok = url.scheme() == "https" || (loopback && url.scheme() == "http");
    if !scheme_ok || url.host().is_none() {
        return Err(refused("the client_id is not an https URL"));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(refused(
            "the client_id may not have a fragment, a user name or a password",
        ));
    }
    if url.path() == "/" {
        return Err(refused("the client_id URL has no path"));
    }
    Ok(url)
}

/// The fields of a document this server reads; others are ignored.
#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_secret: Option<serde::de::IgnoredAny>,
}

/// What a valid document registers (before it is cut to the configured entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registration {
    /// The document's URL, equal to its `client_id`.
    pub(crate) client_id: String,
    /// The host the document was published on: the consent page names it.
    pub(crate) host: String,
    /// `client_name`, trimmed and bounded; `None` when absent or empty.
    pub(crate) name: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    /// The scopes `scope` lists; `None` when it has no `scope`.
    pub(crate) scopes: Option<Vec<String>>,
}

/// Reads the document fetched from `url`: a JSON object whose `client_id` is `url`
/// exactly, listing valid `redirect_uris`, a public client (`token_endpoint_auth_method`
/// absent or `none`, no `client_secret`) of the authorization-code grant.
pub(crate) fn read_document(url: &Url, body: &[u8]) -> Result<Registration, Refused> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|_| refused("the client metadata document is not a JSON object of metadata"))?;
    if doc.client_id != url.as_str() {
        return Err(refused(
            "the client metadata document's client_id is not its URL",
        ));
    }
    if doc.client_secret.is_some() {
        return Err(refused(
            "the client metadata document carries a client_secret",
        ));
    }
    if doc
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return Err(refused(
            "the client metadata document asks for a token endpoint authentication method other than none",
        ));
    }
    let grants_ok = |g: &String| g == "authorization_code" || g == "refresh_token";
    if doc
        .grant_types
        .as_ref()
        .is_some_and(|gs| !gs.iter().all(grants_ok))
    {
        return Err(refused(
            "the client metadata document asks for a grant other than authorization_code and refresh_token",
        ));
    }
    if doc
        .response_types
        .as_ref()
        .is_some_and(|rs| rs.iter().any(|r| r != "code"))
    {
        return Err(refused(
            "the client metadata document asks for a response type other than code",
        ));
    }
    check_redirect_uris(&doc.redirect_uris)?;
    Ok(Registration {
        client_id: doc.client_id,
        host: url.host_str().unwrap_or_default().to_owned(),
        name: doc
            .client_name
            .map(|n| n.trim().chars().take(MAX_NAME).collect::<String>())
            .filter(|n| !n.is_empty()),
        redirect_uris: doc.redirect_uris,
        scopes: doc.scope.map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    })
}

fn check_redirect_uris(uris: &[String]) -> Result<(), Refused> {
    if uris.is_empty() {
        return Err(refused(
            "the client metadata document lists no redirect_uris",
        ));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(refused(
            "the client metadata document lists too many redirect_uris",
        ));
    }
    for uri in uris {
        super::redirect_uri::check_registered(uri).map_err(|e| {
            Refused(format!(
                "the client metadata document lists an invalid redirect URI: {e}"
            ))
        })?;
    }
    Ok(())
}

/// The scopes a document client may ask for: those its document's `scope` lists that
/// the entry allows (`allowed`), or all the entry's when the document lists none.
pub(crate) fn grantable_scopes(requested: Option<&[String]>, allowed: &[String]) -> Vec<String> {
    match requested {
        None => allowed.to_vec(),
        Some(requested) => allowed
            .iter()
            .filter(|s| requested.contains(s))
            .cloned()
            .collect(),
    }
}

/// How long a document is kept, from its answer's `Cache-Control`: `max-age` clamped to
/// [[`MIN_CACHE`], [`MAX_CACHE`]]; [`MIN_CACHE`] for `no-store`, `no-cache`, no header
/// or one not understood.
pub(crate) fn cache_lifetime(cache_control: Option<&str>) -> Duration {
    let Some(header) = cache_control else {
        return MIN_CACHE;
    };
    let mut max_age = None;
    for directive in header.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return MIN_CACHE,
            "max-age" => max_age = value.trim().trim_matches('"').parse::<u64>().ok(),
            _ => {}
        }
    }
    max_age.map_or(MIN_CACHE, |s| {
        Duration::from_secs(s).clamp(MIN_CACHE, MAX_CACHE)
    })
}

/// Whether a document may be fetched from `ip`: never an address of this host or a
/// private, shared, link-local, multicast, documentation or reserved network
/// (IPv4-mapped and NAT64 addresses judged by the IPv4 address inside), except a
/// loopback address for a loopback prefix (`loopback`).
pub(crate) fn address_allowed(ip: IpAddr, loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, loopback),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_allowed(v4, loopback),
            None => v6_allowed(v6, loopback),
        },
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::a.b.c.d).
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let compatible = s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1);
    (nat64 || compatible).then(|| Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])))
}

fn v4_allowed(ip: Ipv4Addr, loopback: bool) -> bool {
    if ip.is_loopback() {
        return loopback;
    }
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !special
}

fn v6_allowed(ip: Ipv6Addr, loopback: bool) -> bool {
    if ip.is_loopback() {
        return loopback;
    }
    let first = ip.segments()[0];
    let special = ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]); // discard-only
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(check_prefix("https://clients.example.com/"), Ok(false));
        assert_eq!(check_prefix("https://example.com/mcp/"), Ok(false));
        assert_eq!(check_prefix("http://127.0.0.1:8080/docs/"), Ok(true));
        assert_eq!(check_prefix("https://localhost:8443/"), Ok(true));
        for bad in [
            "http://clients.example.com/",
            "https://clients.example.com",
            "https://clients.example.com/x",
            "https://u:p@clients.example.com/",
            "https://clients.example.com/?q=1",
            "https://clients.example.com/#f",
            "https://clients.example.com/a/../",
            "https://CLIENTS.example.com/",
            "ftp://clients.example.com/",
            "clients.example.com/",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids() {
        assert!(document_url("https://c.example.com/app.json", false).is_ok());
        assert!(document_url("https://c.example.com:8443/a/b?x=1", false).is_ok());
        assert!(document_url("http://127.0.0.1:4000/app", true).is_ok());
        for bad in [
            "http://c.example.com/app",
            "https://c.example.com/",
            "https://c.example.com/a/../b",
            "https://c.example.com/a/./b",
            "https://c.example.com/%2e%2e/b",
            "https://c.example.com/app#x",
            "https://u@c.example.com/app",
            "https://u:p@c.example.com/app",
            "https://c.example.com:443/app",
            "https://C.example.com/app",
            "not a url",
        ] {
            assert!(document_url(bad, false).is_err(), "{bad}");
        }
        let long = format!("https://c.example.com/{}", "a".repeat(MAX_CLIENT_ID));
        assert!(document_url(&long, false).is_err());
    }

    fn read(url: &str, body: serde_json::Value) -> Result<Registration, Refused> {
        read_document(&Url::parse(url).expect("url"), body.to_string().as_bytes())
    }

    #[test]
    fn documents() {
        let url = "https://c.example.com/app.json";
        let ok = read(
            url,
            serde_json::json!({"client_id": url, "client_name": "  Tool  ",
                "redirect_uris": ["http://127.0.0.1/cb"], "scope": "openid mcp:tools",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"], "token_endpoint_auth_method": "none",
                "logo_uri": "https://c.example.com/logo.png"}),
        )
        .expect("valid");
        assert_eq!(ok.host, "c.example.com");
        assert_eq!(ok.name.as_deref(), Some("Tool"));
        assert_eq!(ok.scopes, Some(vec!["openid".into(), "mcp:tools".into()]));
        let cb = serde_json::json!(["https://app.example.com/cb"]);
        for bad in [
            serde_json::json!({"client_id": "https://c.example.com/other", "redirect_uris": cb}),
            serde_json::json!({"client_id": url}),
            serde_json::json!({"client_id": url, "redirect_uris": []}),
            serde_json::json!({"client_id": url, "redirect_uris": ["http://app.example.com/cb"]}),
            serde_json::json!({"client_id": url, "redirect_uris": cb, "token_endpoint_auth_method": "client_secret_basic"}),
            serde_json::json!({"client_id": url, "redirect_uris": cb, "client_secret": "s"}),
            serde_json::json!({"client_id": url, "redirect_uris": cb, "grant_types": ["client_credentials"]}),
            serde_json::json!({"client_id": url, "redirect_uris": cb, "response_types": ["token"]}),
            serde_json::json!(["not", "an", "object"]),
        ] {
            assert!(read(url, bad.clone()).is_err(), "{bad}");
        }
        assert!(read_document(&Url::parse(url).expect("url"), b"\xff").is_err());
    }

    #[test]
    fn scopes_are_the_intersection() {
        let allowed = vec!["openid".to_owned(), "mcp:tools".to_owned()];
        assert_eq!(grantable_scopes(None, &allowed), allowed);
        let asked = vec!["mcp:tools".to_owned(), "admin".to_owned()];
        assert_eq!(grantable_scopes(Some(&asked), &allowed), ["mcp:tools"]);
    }

    #[test]
    fn cache_lifetimes() {
        let secs = |h: Option<&str>| cache_lifetime(h).as_secs();
        assert_eq!(secs(None), 60);
        assert_eq!(secs(Some("max-age=3600")), 3600);
        assert_eq!(secs(Some("public, max-age=10")), 60);
        assert_eq!(secs(Some("max-age=999999")), 86400);
        assert_eq!(secs(Some("max-age=3600, no-store")), 60);
        assert_eq!(secs(Some("no-cache")), 60);
        assert_eq!(secs(Some("max-age=abc")), 60);
        assert_eq!(secs(Some("Max-Age=\"120\"")), 120);
    }

    #[test]
    fn addresses() {
        let allowed = |s: &str, lo| address_allowed(s.parse().expect("ip"), lo);
        assert!(allowed("93.184.216.34", false));
        assert!(allowed("2606:2800:220:1::1", false));
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(!allowed(private, false), "{private}");
        }
        assert!(allowed("127.0.0.1", true) && allowed("::1", true));
        assert!(!allowed("10.0.0.1", true));
    }
}
