//! `[store] sentinels`, `master_name`, `sentinel_password` (or `sentinel_password_file`)
//! and `wait_for_replica`: a Redis master found through Redis Sentinel and followed
//! across a failover, and how long a security-relevant write waits for a replica.

use super::report::Report;
use super::validate::{StoreBackend, StoreSentinel, StoreSettings};
use crate::config::file::StoreSection;
use crate::config::report::Sources;
use std::path::Path;
use std::time::Duration;

/// The longest `wait_for_replica`: a request waits this long when no replica answers.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// `host:port` (`[v6]:port` for an IPv6 address): a Sentinel's address.
pub(super) fn parse_address(text: &str) -> Result<(String, u16), String> {
    let shape = || format!("{text:?} is not host:port, like \"10.0.0.5:26379\"");
    let (host, port) = text.rsplit_once(':').ok_or_else(shape)?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').ok_or_else(shape)?,
        None if host.contains(':') => return Err(shape()),
        None => host,
    };
    let port: u16 = port.parse().map_err(|_| shape())?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if !host_ok || port == 0 {
        return Err(shape());
    }
    Ok((host.to_owned(), port))
}

/// `master_name`: what a Sentinel names a master (`sentinel monitor <name> ...`).
fn check_master_name(name: &str) -> Result<(), &'static str> {
    let fits = !name.is_empty() && name.len() <= 128;
    if fits && name.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(
            "must be the name the Sentinels monitor the master under (1 to 128 printable characters, no spaces)",
        )
    }
}

/// `[store] sentinels` and the fields that go with it: `None` without Sentinels (and
/// then none of the others may be set); `Err` when something is wrong (reported).
fn check(
    section: &StoreSection,
    backend: &StoreBackend,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Result<Option<StoreSentinel>, ()> {
    if section.sentinels.is_empty() {
        let orphan = [
            ("store.master_name", section.master_name.is_some()),
            (
                "store.sentinel_password",
                section.sentinel_password.is_some(),
            ),
            (
                "store.sentinel_password_file",
                section.sentinel_password_file.is_some(),
            ),
        ];
        if let Some((field, _)) = orphan.iter().find(|(_, set)| *set) {
            r.error(*field, "only with sentinels = [\"host:26379\", ...]");
            return Err(());
        }
        return Ok(None);
    }
    let StoreBackend::Redis(url) = backend else {
        r.error(
            "store.sentinels",
            "needs a Redis url (redis://mymaster/0, rediss:// for TLS): it gives the master's scheme, password and database",
        );
        return Err(());
    };
    let mut sentinels = Vec::new();
    for (i, text) in section.sentinels.iter().enumerate() {
        match parse_address(text) {
            Ok(address) => sentinels.push(address),
            Err(e) => r.error(format!("store.sentinels[{i}]"), e),
        }
    }
    let Some(master_name) = &section.master_name else {
        r.error(
            "store.master_name",
            "sentinels need the name they monitor the master under",
        );
        return Err(());
    };
    if let Err(e) = check_master_name(master_name) {
        r.error("store.master_name", e);
        return Err(());
    }
    if sentinels.len() < section.sentinels.len() {
        return Err(());
    }
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if host.as_deref() != Some(master_name.as_str()) {
        r.warn(
            "store.url",
            format!(
                "with sentinels the URL's host is not used (the Sentinels name the master); write the master's name there: redis://{master_name}/0"
            ),
        );
    }
    let password = match (&section.sentinel_password, &section.sentinel_password_file) {
        (None, None) => None,
        (value, file) => Some(
            super::providers::read_secret(
                value.as_deref(),
                file.as_deref(),
                "store.sentinel_password",
                "store.sentinel_password_file",
                base_dir,
                sources,
                r,
            )
            .ok_or(())?,
        ),
    };
    Ok(Some(StoreSentinel {
        sentinels,
        master_name: master_name.clone(),
        password,
    }))
}

/// `[store] sentinels` and the fields that go with it, and `wait_for_replica`, into
/// `store` (the rest of `[store]`, validated): after `validate`, as the providers are,
/// since reading the Sentinels' password is theirs.
pub(super) fn apply(
    section: &StoreSection,
    store: &mut StoreSettings,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) {
    if let Ok(sentinel) = check(section, &store.backend, base_dir, sources, r) {
        store.sentinel = sentinel;
    }
    store.wait_for_replica = check_wait(section, r);
}

/// `[store] wait_for_replica`: at most [`MAX_WAIT`].
fn check_wait(section: &StoreSection, r: &mut Report) -> Duration {
    if section.wait_for_replica > MAX_WAIT {
        r.error(
            "store.wait_for_replica",
            "at most 5s: a request waits this long whenever no replica answers",
        );
    }
    section.wait_for_replica.min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use crate::load::sentinel::{check_master_name, parse_address};

    #[test]
    fn a_sentinel_is_a_host_and_a_port() {
        assert_eq!(
            parse_address("10.0.0.5:26379"),
            Ok(("10.0.0.5".into(), 26379))
        );
        assert_eq!(
            parse_address("sentinel-0.redis.svc:26379"),
            Ok(("sentinel-0.redis.svc".into(), 26379))
        );
        assert_eq!(parse_address("[::1]:26379"), Ok(("::1".into(), 26379)));
        for bad in [
            "",
            "host",
            "host:",
            ":26379",
            "host:0",
            "host:65536",
            "::1:26379",
            "[::1:26379",
            "redis://host:26379",
            "a b:26379",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn a_master_name_is_printable_without_spaces() {
        assert!(check_master_name("mymaster").is_ok());
        assert!(check_master_name("").is_err());
        assert!(check_master_name("my master").is_err());
        assert!(check_master_name(&"m".repeat(129)).is_err());
    }
}
