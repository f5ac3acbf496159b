//! `[server] trusted_proxies`: parsed, and warned about where a deployment behind a
//! proxy would see every user at the proxy's address (an https issuer and no trusted
//! proxy: gatehouse serves plain HTTP, so TLS ends in front of it), or where anyone
//! could name their own address (a proxy of `0.0.0.0/0` or `::/0`).

use crate::config::file::ConfigFile;
use crate::config::report::Issue;
use crate::http::client_ip::Cidr;

/// The trusted proxies, each invalid entry an error at its index, and the warnings
/// above, pushed onto `issues`.
pub(super) fn trusted_proxies(file: &ConfigFile, issues: &mut Vec<Issue>) -> Vec<Cidr> {
    let mut proxies = Vec::new();
    for (i, proxy) in file.server.trusted_proxies.iter().enumerate() {
        let path = format!("server.trusted_proxies[{i}]");
        match proxy.parse::<Cidr>() {
            Ok(c) if c.is_everything() => {
                issues.push(Issue::warning(
                    path,
                    format!(
                        "{proxy:?} trusts every address: any client can write its own X-Forwarded-For and \
                         pose as anyone (dodging per-address login limits or locking others out); \
                         list only your proxies' addresses or network"
                    ),
                ));
                proxies.push(c);
            }
            Ok(c) => proxies.push(c),
            Err(e) => issues.push(Issue::error(path, e)),
        }
    }
    if file.server.trusted_proxies.is_empty() && file.issuer.starts_with("https://") {
        issues.push(Issue::warning(
            "server.trusted_proxies",
            "the issuer is https, so TLS ends at a proxy or load balancer in front of gatehouse, \
             but no proxy is trusted: every user appears at the proxy's address and shares its \
             failed-login limits (anyone can lock everyone out). List the proxy's address or \
             network in trusted_proxies",
        ));
    }
    proxies
}
