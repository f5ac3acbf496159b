//! `[tokens]`, `[session]` and `[limits]`: lifetimes and counts in their ranges; and the
//! `tokens_not_before` times of clients and users.

use super::report::Report;
use crate::config::file::ConfigFile;
use std::time::Duration;

pub(super) fn check_ttls(file: &ConfigFile, r: &mut Report) {
    let t = &file.tokens;
    for (name, ttl) in [
        ("access_token_ttl", t.access_token_ttl),
        ("id_token_ttl", t.id_token_ttl),
        ("refresh_token_ttl", t.refresh_token_ttl),
        ("authorization_code_ttl", t.authorization_code_ttl),
        ("device_code_ttl", t.device_code_ttl),
    ] {
        if ttl.as_secs() == 0 {
            r.error(format!("tokens.{name}"), "must be at least one second");
        }
    }
    if t.authorization_code_ttl.as_secs() > 600 {
        r.warn(
            "tokens.authorization_code_ttl",
            "longer than 10 minutes; authorization codes should be short-lived (RFC 6749 4.1.2)",
        );
    }
}

pub(super) fn check_session_and_limits(file: &ConfigFile, r: &mut Report) {
    if file.session.ttl.as_secs() == 0 {
        r.error("session.ttl", "must be at least one second");
    }
    let pending = file.session.pending_ttl;
    if !(Duration::from_secs(10)..=Duration::from_secs(3600)).contains(&pending) {
        r.error(
            "session.pending_ttl",
            "must be between 10 seconds and 1 hour: it bounds how long unfinished logins are kept",
        );
    }
    let limits = &file.limits;
    for (name, value) in [
        ("login_max_failures", limits.login_max_failures),
        ("token_max_failures", limits.token_max_failures),
        ("pages_per_second", limits.pages_per_second),
        ("pages_burst", limits.pages_burst),
        ("pending_per_address", limits.pending_per_address),
        ("pending_total", limits.pending_total),
        (
            "user_code_max_failures_total",
            limits.user_code_max_failures_total,
        ),
    ] {
        if value == 0 {
            r.error(format!("limits.{name}"), "must be at least 1");
        }
    }
    for (name, value, range) in [
        ("ipv4_prefix", limits.ipv4_prefix, 8..=32),
        ("ipv6_prefix", limits.ipv6_prefix, 16..=128),
    ] {
        if !range.contains(&value) {
            r.error(
                format!("limits.{name}"),
                format!(
                    "must be between {} and {}: the network every per-address limit counts together",
                    range.start(),
                    range.end()
                ),
            );
        }
    }
    for (name, window) in [
        ("login_failure_window", limits.login_failure_window),
        ("token_failure_window", limits.token_failure_window),
    ] {
        if window.as_secs() == 0 {
            r.error(format!("limits.{name}"), "must be at least one second");
        }
    }
    if file.ui.product_name.trim().is_empty() {
        r.error("ui.product_name", "may not be empty");
    }
}

/// A `tokens_not_before` as Unix seconds; an issue at `path` when it is not an RFC 3339
/// time in UTC.
pub(super) fn check_not_before(value: Option<&str>, path: &str, r: &mut Report) -> Option<u64> {
    match parse_not_before(value?) {
        Ok(at) => Some(at),
        Err(e) => {
            r.error(path.to_owned(), e);
            None
        }
    }
}

/// Reads an RFC 3339 time in UTC (`2026-12-04T10:00:00Z`, fractions allowed) as
/// whole Unix seconds.
pub(crate) fn parse_not_before(value: &str) -> Result<u64, String> {
    let bad = || format!("{value:?} is not an RFC 3339 time in UTC, like \"2026-12-04T10:00:00Z\"");
    let at = humantime::parse_rfc3339(value).map_err(|_| bad())?;
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use crate::load::limits::*;

    #[test]
    fn tokens_not_before_is_an_rfc3339_utc_time() {
        assert_eq!(parse_not_before("2026-12-04T10:00:00Z"), Ok(1_796_378_400));
        assert_eq!(
            parse_not_before("2026-12-04T10:00:00.9Z"),
            Ok(1_796_378_400)
        );
        for bad in ["2026-12-04", "2026-12-04T10:00:00+01:00", "yesterday", ""] {
            assert!(parse_not_before(bad).is_err(), "{bad}");
        }
    }
}
