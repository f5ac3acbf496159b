//! Resource indicators (RFC 8707): which APIs a token is for. Pure rules from the
//! `resource` parameters, the client's allowed resources, what a grant authorized and
//! which resource each scope belongs to, to the token's `aud`, `scope` and lifetime.
//!
//! Resource ids are compared as exact strings: MCP clients send the protected resource
//! metadata's `resource` verbatim, so `https://x` and `https://x/` are two resources.

use std::time::Duration;
use url::Url;

/// Most `resource` parameters one request may carry.
pub(crate) const MAX_PER_REQUEST: usize = 16;

/// Longest resource indicator accepted, in bytes.
pub(crate) const MAX_LEN: usize = 2048;

/// Checks one resource indicator: an absolute URI (RFC 3986 4.3) without a fragment
/// (RFC 8707 2), bounded, with no whitespace or control characters. The error says why.
pub(crate) fn check_indicator(value: &str) -> Result<(), String> {
    if value.len() > MAX_LEN {
        return Err(format!("a resource is longer than {MAX_LEN} bytes"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("resource {value:?} contains whitespace"));
    }
    if value.contains('#') {
        return Err(format!("resource {value:?} has a fragment"));
    }
    // The url crate parses only absolute URIs without a base: a relative one fails.
    Url::parse(value)
        .map(|_| ())
        .map_err(|_| format!("resource {value:?} is not an absolute URI"))
}

/// The `resource` values of one request, checked and without repeats, in order.
pub(crate) fn requested<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        check_indicator(value)?;
        if !out.iter().any(|r| r == value) {
            if out.len() == MAX_PER_REQUEST {
                return Err(format!("at most {MAX_PER_REQUEST} resources per request"));
            }
            out.push(value.to_owned());
        }
    }
    Ok(out)
}

/// Refuses a requested resource the client may not ask for (`allowed`: its
/// `resources`, all of them declared). Unknown and not allowed read the same.
pub(crate) fn admit(requested: &[String], allowed: &[String]) -> Result<(), String> {
    match requested.iter().find(|r| !allowed.contains(r)) {
        Some(r) => Err(format!("resource {r:?} is not allowed for this client")),
        None => Ok(()),
    }
}

/// The resources a grant authorizes. `named`: those its request named (kept with the
/// code or refresh token), still allowed for the client; when it named none, each of
/// the client's resources one of whose scopes was granted. `owner` gives the resource
/// a scope belongs to.
pub(crate) fn authorized<'a>(
    named: &[String],
    client_resources: &[String],
    granted: &[String],
    owner: impl Fn(&str) -> Option<&'a str>,
) -> Vec<String> {
    if !named.is_empty() {
        return named
            .iter()
            .filter(|r| client_resources.contains(r))
            .cloned()
            .collect();
    }
    client_resources
        .iter()
        .filter(|r| granted.iter().any(|s| owner(s) == Some(r.as_str())))
        .cloned()
        .collect()
}

/// The resources one token is for: those `requested` at this token request, each of
/// which the grant must have authorized (RFC 8707 2.2: a subset, never more), else all
/// it authorized.
pub(crate) fn narrow(requested: &[String], authorized: &[String]) -> Result<Vec<String>, String> {
    if requested.is_empty() {
        return Ok(authorized.to_vec());
    }
    match requested.iter().find(|r| !authorized.contains(r)) {
        Some(r) => Err(format!("resource {r:?} was not authorized by this grant")),
        None => Ok(requested.to_vec()),
    }
}

/// The scopes of a token for `target`: the granted ones that belong to a resource in
/// it, and those that belong to no resource (`openid`, `profile`, ...). Another
/// resource's scopes are dropped.
pub(crate) fn scopes_for<'a>(
    target: &[String],
    granted: &[String],
    owner: impl Fn(&str) -> Option<&'a str>,
) -> Vec<String> {
    granted
        .iter()
        .filter(|s| owner(s).is_none_or(|r| target.iter().any(|t| t == r)))
        .cloned()
        .collect()
}

/// The `aud` of a token for `target`. When resources were named (at this request or
/// by the grant) it is exactly them; otherwise the client's configured `audience` plus
/// the target, or the client itself when both are empty (a client without resources
/// behaves as before resources existed).
pub(crate) fn audience(
    target: &[String],
    named: bool,
    configured: &[String],
    client_id: &str,
) -> Vec<String> {
    if named {
        return target.to_vec();
    }
    let mut aud = configured.to_vec();
    for r in target {
        if !aud.contains(r) {
            aud.push(r.clone());
        }
    }
    if aud.is_empty() {
        aud.push(client_id.to_owned());
    }
    aud
}

/// An access token's lifetime: `base` (the client's, else `[tokens]`), shortened by
/// any resource of the target that wants shorter ones.
pub(crate) fn lifetime(
    base: Duration,
    target_ttls: impl IntoIterator<Item = Option<Duration>>,
) -> Duration {
    target_ttls.into_iter().flatten().fold(base, Duration::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn owner(scope: &str) -> Option<&'static str> {
        match scope {
            "tools" => Some("https://mcp.example.com/mcp"),
            "invoices" => Some("https://billing.example.com"),
            _ => None,
        }
    }

    const MCP: &str = "https://mcp.example.com/mcp";
    const BILLING: &str = "https://billing.example.com";

    #[test]
    fn indicators() {
        assert!(check_indicator(MCP).is_ok());
        assert!(check_indicator("urn:example:api").is_ok());
        assert!(check_indicator("https://x/?q=1").is_ok());
        for bad in [
            "/relative",
            "mcp",
            "https://x/#frag",
            "https://x/#",
            "https://x y",
            "",
        ] {
            assert!(check_indicator(bad).is_err(), "{bad:?}");
        }
        assert!(check_indicator(&format!("https://x/{}", "a".repeat(MAX_LEN))).is_err());
    }

    #[test]
    fn requests_are_deduplicated_and_bounded() {
        assert_eq!(requested([MCP, BILLING, MCP]), Ok(v(&[MCP, BILLING])));
        assert_eq!(requested([]), Ok(vec![]));
        let many: Vec<String> = (0..=MAX_PER_REQUEST)
            .map(|i| format!("https://r/{i}"))
            .collect();
        assert!(requested(many.iter().map(String::as_str)).is_err());
        assert!(requested([MCP, "https://x/#f"]).is_err());
    }

    #[test]
    fn admission_is_exact() {
        let allowed = v(&[MCP]);
        assert!(admit(&v(&[MCP]), &allowed).is_ok());
        assert!(admit(&v(&[BILLING]), &allowed).is_err());
        assert!(admit(&v(&["https://mcp.example.com/mcp/"]), &allowed).is_err());
    }

    #[test]
    fn what_a_grant_authorizes() {
        let client = v(&[MCP, BILLING]);
        assert_eq!(
            authorized(&v(&[MCP]), &client, &v(&["openid"]), owner),
            v(&[MCP])
        );
        // A resource the client lost since is dropped.
        assert_eq!(
            authorized(&v(&[MCP]), &v(&[BILLING]), &[], owner),
            v(&[] as &[&str])
        );
        // Nothing named: the client's resources whose scopes were granted.
        assert_eq!(
            authorized(&[], &client, &v(&["openid", "invoices"]), owner),
            v(&[BILLING])
        );
        assert!(authorized(&[], &client, &v(&["openid"]), owner).is_empty());
    }

    #[test]
    fn downscoping_and_scopes() {
        let both = v(&[MCP, BILLING]);
        assert_eq!(narrow(&v(&[MCP]), &both), Ok(v(&[MCP])));
        assert_eq!(narrow(&[], &both), Ok(both.clone()));
        assert!(narrow(&v(&["https://other"]), &v(&[MCP])).is_err());
        let granted = v(&["openid", "tools", "invoices", "profile"]);
        assert_eq!(
            scopes_for(&v(&[MCP]), &granted, owner),
            v(&["openid", "tools", "profile"])
        );
        assert_eq!(scopes_for(&both, &granted, owner), granted);
        assert_eq!(scopes_for(&[], &granted, owner), v(&["openid", "profile"]));
    }

    #[test]
    fn audiences_and_lifetimes() {
        assert_eq!(audience(&v(&[MCP]), true, &v(&["api"]), "c"), v(&[MCP]));
        assert_eq!(
            audience(&v(&[MCP]), false, &v(&["api"]), "c"),
            v(&["api", MCP])
        );
        assert_eq!(audience(&[], false, &[], "c"), v(&["c"]));
        assert_eq!(audience(&v(&[MCP]), false, &[], "c"), v(&[MCP]));
        let m = Duration::from_secs(60);
        assert_eq!(lifetime(Duration::from_secs(600), [None, Some(m)]), m);
        assert_eq!(lifetime(m, [Some(Duration::from_secs(600))]), m);
        assert_eq!(lifetime(m, []), m);
    }
}
