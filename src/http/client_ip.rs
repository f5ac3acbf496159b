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
pub(crate) struct ClientIp(pub IpAddr);

impl ClientIp {
    /// Resolves the address of `req` and remembers it in the request.
    pub(crate) fn resolve_into(req: &HttpRequest, trusted: &[Cidr]) -> Self {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let resolved = resolve(peer, forwarded, trusted);
        if let Some(proxy) = resolved.opaque_from {
            warn_once(proxy, resolved.ip);
        }
        let ip = Self(resolved.ip);
        req.extensions_mut().insert(ip);
        ip
    }

    /// The address resolved for `req`, or its peer address when nothing resolved one
    /// (a route outside the middleware: the peer is the safe answer).
    pub(crate) fn of(req: &HttpRequest) -> Self {
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
    /// The same text as the address's own `Display`. Every audit line names the
    /// caller, so an IPv4 address's digits are put in place here in one piece rather
    /// than octet by octet through `core::fmt` (a tenth of the audit line's
    /// instructions, issue 28); an IPv6 address is written by `Ipv6Addr`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => {
                let mut text = [0u8; 15];
                let mut len = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text[len] = b'.';
                        len += 1;
                    }
                    if octet >= 100 {
                        text[len] = b'0' + octet / 100;
                        len += 1;
                    }
                    if octet >= 10 {
                        text[len] = b'0' + octet / 10 % 10;
                        len += 1;
                    }
                    text[len] = b'0' + octet % 10;
                    len += 1;
                }
                // Digits and dots: always UTF-8.
                f.pad(std::str::from_utf8(&text[..len]).map_err(|_| std::fmt::Error)?)
            }
            IpAddr::V6(_) => self.0.fmt(f),
        }
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

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// True when every address of `other` is inside this network.
    pub(crate) fn covers(&self, other: &Cidr) -> bool {
        self.prefix <= other.prefix && self.contains(other.network)
    }

    /// True for `0.0.0.0/0` and `::/0`: every address of its family.
    pub(crate) fn is_everything(&self) -> bool {
        self.prefix == 0
    }

    /// True when `ip` is inside this network.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
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

/// The client's address as the forwarded chain gives it, and, when a trusted proxy
/// wrote a hop that is no address, that proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The client's address, or the opaque address of an unparsable hop.
    pub(crate) ip: IpAddr,
    /// The trusted proxy that wrote an unparsable hop, if one did.
    pub(crate) opaque_from: Option<IpAddr>,
}

/// The client's address, given the peer and the `X-Forwarded-For` header (pure).
///
/// Walks the chain from the nearest hop while the hops are trusted proxies. A hop is an
/// address, or an address with a port (`198.51.100.7:4711`, `[2001:db8::7]:443`, as
/// some proxies write it). Any other hop written by a trusted proxy (`unknown`, an
/// obfuscated name) is the client, as an opaque address derived from its text
/// ([`opaque`]): never the proxy's own address, which would merge every client behind it.
pub(crate) fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> Resolved {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut client = peer;
    if !is_trusted(client) {
        return Resolved {
            ip: client,
            opaque_from: None,
        };
    }
    let Some(header) = forwarded_for else {
        return Resolved {
            ip: client,
            opaque_from: None,
        };
    };
    for hop in header.rsplit(',').map(str::trim) {
        match hop_address(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => {
                return Resolved {
                    ip: opaque(hop),
                    opaque_from: Some(client),
                };
            }
        }
    }
    Resolved {
        ip: client,
        opaque_from: None,
    }
}

/// The address of one `X-Forwarded-For` hop: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The stand-in address of a hop that is no address: in `100::/16` (inside the
/// discard-only `100::/8` space, RFC 6666, which no client has), the rest the first
/// 112 bits of the SHA-256 of the hop's text, so that two different hops are two
/// different clients (and two networks for every `[limits] ipv6_prefix`).
pub(crate) fn opaque(hop: &str) -> IpAddr {
    let digest = crate::crypto::sha256(hop.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[0] = 0x01;
    bytes[2..].copy_from_slice(&digest[..14]);
    IpAddr::from(bytes)
}

/// Proxies already warned about, so each is named in the log once (bounded: past the
/// bound, no more warnings rather than more memory).
static WARNED: std::sync::Mutex<Vec<IpAddr>> = std::sync::Mutex::new(Vec::new());

/// The most proxies remembered in [`WARNED`].
const MAX_WARNED: usize = 256;

fn warn_once(proxy: IpAddr, client: IpAddr) {
    let Ok(mut warned) = WARNED.lock() else {
        return;
    };
    if warned.contains(&proxy) || warned.len() >= MAX_WARNED {
        return;
    }
    warned.push(proxy);
    tracing::warn!(event = "forwarded_for_unparsable", proxy = %proxy, client = %client, "a trusted proxy wrote an X-Forwarded-For hop that is no address: its clients are told apart by an opaque address derived from the hop");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    proptest::proptest! {
        #[test]
        fn an_address_is_written_as_its_own_display_writes_it(v4: u32, v6: u128) {
            for addr in [IpAddr::from(std::net::Ipv4Addr::from(v4)), IpAddr::from(std::net::Ipv6Addr::from(v6))] {
                proptest::prop_assert_eq!(ClientIp(addr).to_string(), addr.to_string());
                proptest::prop_assert_eq!(format!("{:>40}|{:<20.5}", ClientIp(addr), ClientIp(addr)), format!("{addr:>40}|{addr:<20.5}"));
            }
        }
    }

    #[test]
    fn an_ipv4_address_is_written_digit_for_digit() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "127.0.0.1",
            "1.20.199.200",
        ] {
            assert_eq!(ClientIp(ip(text)).to_string(), text);
        }
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
            resolve_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Through our proxy: the address the proxy saw.
        assert_eq!(
            resolve_ip(ip("10.0.0.5"), Some("1.2.3.4, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // Through two of our proxies.
        assert_eq!(
            resolve_ip(ip("10.0.0.5"), Some("198.51.100.7, 10.0.0.6"), &trusted),
            ip("198.51.100.7")
        );
        // A hop that is no address is the client, opaque: never the proxy.
        let junk = resolve(ip("10.0.0.5"), Some("1.2.3.4, junk"), &trusted);
        assert_eq!(junk.ip, opaque("junk"));
        assert_eq!(junk.opaque_from, Some(ip("10.0.0.5")));
        assert_eq!(resolve_ip(ip("10.0.0.5"), None, &trusted), ip("10.0.0.5"));
    }

    fn resolve_ip(peer: IpAddr, forwarded: Option<&str>, trusted: &[Cidr]) -> IpAddr {
        resolve(peer, forwarded, trusted).ip
    }

    #[test]
    fn hops_with_ports_are_their_addresses() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let proxy = ip("10.0.0.5");
        for (hop, client) in [
            ("198.51.100.7:4711", "198.51.100.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
        ] {
            let seen = resolve(proxy, Some(hop), &trusted);
            assert_eq!((seen.ip, seen.opaque_from), (ip(client), None), "{hop}");
        }
        // A trusted proxy with a port is walked past.
        assert_eq!(
            resolve_ip(proxy, Some("198.51.100.7:1, 10.0.0.6:2"), &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn unparsable_hops_are_opaque_clients_apart_from_each_other() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let proxy = ip("10.0.0.5");
        let unknown = resolve(proxy, Some("unknown"), &trusted);
        let other = resolve(proxy, Some("_hidden"), &trusted);
        assert_ne!(unknown.ip, proxy);
        assert_ne!(unknown.ip, other.ip);
        assert_eq!(unknown.opaque_from, Some(proxy));
        // Written by the second of two proxies: that one is named.
        let deeper = resolve(proxy, Some("unknown, 10.0.0.9"), &trusted);
        assert_eq!(
            (deeper.ip, deeper.opaque_from),
            (unknown.ip, Some(ip("10.0.0.9")))
        );
        // From an untrusted peer the header is not read at all.
        assert_eq!(
            resolve_ip(ip("203.0.113.1"), Some("unknown"), &trusted),
            ip("203.0.113.1")
        );
    }
}
