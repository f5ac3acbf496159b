//! The network an address is counted in: every per-address limit (failed logins,
//! client authentications, user codes, the page rate, pending logins, device codes)
//! counts the `[limits] ipv4_prefix` (default /24) or `ipv6_prefix` (default /64)
//! network of the caller together, so rotating through the addresses of one network
//! (trivial with IPv6: one subscriber is routed a /64) buys no new budget.
//!
//! Also the fixed-length counter key for a name an attacker chooses (a client id, a
//! username): the store keeps a short hash of it, never the name itself.

use crate::config::file::LimitsSection;
use crate::crypto::{hex, sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address with its host bits cleared, and the prefix length that did it: the key
/// of every per-address counter. Shown as `198.51.100.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The network `ip` is counted in under `limits` (pure). An IPv4 address written as
/// IPv6 (`::ffff:a.b.c.d`) is counted as the IPv4 address it is.
pub(crate) fn network(limits: &LimitsSection, ip: IpAddr) -> Network {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let prefix = limits.ipv4_prefix.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Network {
                base: IpAddr::V4(Ipv4Addr::from(v4.to_bits() & mask)),
                prefix,
            }
        }
        IpAddr::V6(v6) => {
            let prefix = limits.ipv6_prefix.min(128);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Network {
                base: IpAddr::V6(Ipv6Addr::from(v6.to_bits() & mask)),
                prefix,
            }
        }
    }
}

/// A fixed-length key for `name` (128 bits of its SHA-256, in hex): what a counter
/// of an attacker-chosen name is stored under, so that a long name costs no more
/// storage than a short one.
pub(crate) fn name_key(name: &str) -> String {
    hex(&sha256(name.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use crate::throttle::network::*;

    fn of(limits: &LimitsSection, ip: &str) -> String {
        network(limits, ip.parse().expect("ip")).to_string()
    }

    #[test]
    fn addresses_are_grouped_by_their_network() {
        let limits = LimitsSection::default();
        assert_eq!(of(&limits, "198.51.100.7"), "198.51.100.0/24");
        assert_eq!(of(&limits, "198.51.100.200"), "198.51.100.0/24");
        assert_ne!(of(&limits, "198.51.101.7"), of(&limits, "198.51.100.7"));
        assert_eq!(of(&limits, "2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(of(&limits, "2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
        assert_eq!(
            of(&limits, "::ffff:198.51.100.9"),
            "198.51.100.0/24",
            "an IPv4-mapped address is its IPv4 address"
        );
    }

    #[test]
    fn the_prefixes_are_configurable_to_the_single_address() {
        let limits = LimitsSection {
            ipv4_prefix: 32,
            ipv6_prefix: 128,
            ..LimitsSection::default()
        };
        assert_eq!(of(&limits, "198.51.100.7"), "198.51.100.7/32");
        assert_eq!(of(&limits, "2001:db8::5"), "2001:db8::5/128");
        let wide = LimitsSection {
            ipv4_prefix: 8,
            ipv6_prefix: 16,
            ..LimitsSection::default()
        };
        assert_eq!(of(&wide, "10.2.3.4"), "10.0.0.0/8");
        assert_eq!(of(&wide, "2001:db8::5"), "2001::/16");
    }

    #[test]
    fn name_keys_have_one_length() {
        let long = "x".repeat(8192);
        assert_eq!(name_key(&long).len(), 32);
        assert_eq!(name_key("alice").len(), 32);
        assert_ne!(name_key("alice"), name_key("alice "));
    }

    #[test]
    fn opaque_forwarded_hops_are_networks_apart() {
        use crate::http::client_ip::opaque;
        let limits = LimitsSection::default();
        assert_ne!(network(&limits, opaque("a")), network(&limits, opaque("b")));
        assert_eq!(network(&limits, opaque("a")), network(&limits, opaque("a")));
    }
}
