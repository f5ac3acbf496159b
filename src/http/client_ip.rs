//! The address a request comes from: the peer, or, when the peer is one of the
//! `[server] trusted_proxies`, the nearest address in `X-Forwarded-For` that is not a
//! trusted proxy. Anything a client could write itself is never believed.
//!
//! The address is worked out once per request, by the middleware that wraps every
//! route (`ClientIp::middleware` in the server), and read by handlers as a [`ClientIp`].

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::str::FromStr;

/// The address a request comes from, as resolved for it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// Resolves the address of `req` and remembers it in the request.
    pub fn resolve_into(req: &HttpRequest, trusted: &[Cidr]) -> Self {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = Self(resolve(peer, forwarded, trusted));
        req.extensions_mut().insert(ip);
        ip
    }

    /// The address resolved for `req`, or its peer address when nothing resolved one
    /// (a route outside the middleware: the peer is the safe answer).
    pub fn of(req: &HttpRequest) -> Self {
        if let Some(ip) = req.extensions().get::<ClientIp>() {
            return *ip;
        }
        Self(
            req.peer_addr()
                .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
        )
    }
}

impl std::fmt::Display for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromRequest for ClientIp {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

/// A network in CIDR notation (`10.0.0.0/8`, `::1/128`), or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    /// True for `0.0.0.0/0` and `::/0`: every address of its family.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }

    /// True when `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => same_prefix(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => same_prefix(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (bytes, bits) = (usize::from(prefix / 8), prefix % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    bits == 0 || (a[bytes] ^ b[bytes]) >> (8 - bits) == 0
}

/// The client's address, given the peer and the `X-Forwarded-For` header.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut client = peer;
    if !is_trusted(client) {
        return client;
    }
    // Walk the chain from the nearest hop; stop at the first address we do not trust.
    for hop in forwarded_for.unwrap_or_default().rsplit(',').map(str::trim) {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn cidr_matching() {
        let net: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(net.contains(ip("10.200.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        let narrow: Cidr = "192.168.1.128/25".parse().expect("cidr");
        assert!(narrow.contains(ip("192.168.1.200")));
        assert!(!narrow.contains(ip("192.168.1.100")));
        let one: Cidr = "::1".parse().expect("cidr");
        assert!(
            one.contains(ip("::1")) && !one.contains(ip("::2")) && !one.contains(ip("127.0.0.1"))
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .expect("cidr")
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        // Direct client: the header is its own claim and ignored.
        assert_eq!(
            resolve(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Through our proxy: the address the proxy saw.
        assert_eq!(
            resolve(ip("10.0.0.5"), Some("1.2.3.4, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // Through two of our proxies.
        assert_eq!(
            resolve(ip("10.0.0.5"), Some("198.51.100.7, 10.0.0.6"), &trusted),
            ip("198.51.100.7")
        );
        // Garbage in the header stops the walk at the last good hop.
        assert_eq!(
            resolve(ip("10.0.0.5"), Some("1.2.3.4, junk"), &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(resolve(ip("10.0.0.5"), None, &trusted), ip("10.0.0.5"));
    }
}
