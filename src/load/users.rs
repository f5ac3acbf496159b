//! `[[users]]`: usernames and ids once each, password hashes as PHC strings, links to
//! upstream identities, TOTP secrets (`${env:NAME}`, `${file:PATH}` or literal) as
//! base32 of at least 128 bits, passkeys (`load::passkeys`).

use super::limits::check_not_before;
use super::report::Report;
use super::secrets::{EnvRef, check_phc, env_value, parse_env_ref};
use crate::config::file::{ConfigFile, UserEntry};
use crate::config::report::Sources;
use crate::model::User;
use crate::protocol::totp::Secret;
use std::collections::HashMap;
use std::path::Path;

pub(super) fn check_users(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Vec<User> {
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut users = Vec::new();
    let mut credentials = HashMap::new();
    for (i, u) in file.users.iter().enumerate() {
        let path = format!("users[{i}]");
        let username_ok = if u.username.trim().is_empty() {
            r.error(format!("{path}.username"), "may not be empty");
            false
        } else if let Some(at) = names.get(u.username.as_str()) {
            r.duplicate(
                format!("{path}.username"),
                format!("duplicate username {:?}", u.username),
                at.clone(),
            );
            false
        } else {
            names.insert(&u.username, format!("{path}.username"));
            true
        };
        let id = u.id.clone().unwrap_or_else(|| u.username.clone());
        // An id defaulted from a bad username repeats that problem: report it once.
        if u.id.is_some() || username_ok {
            if id.trim().is_empty() {
                r.error(format!("{path}.id"), "may not be empty");
            } else if let Some(at) = ids.get(&id) {
                r.duplicate(
                    format!("{path}.id"),
                    format!("duplicate user id {id:?}"),
                    at.clone(),
                );
            } else {
                ids.insert(id.clone(), format!("{path}.id"));
            }
        }
        if let Some(Err(e)) = u.password_hash.as_deref().map(check_phc) {
            r.error(format!("{path}.password_hash"), e);
        }
        let passkeys = super::passkeys::check(&u.passkeys, &path, &mut credentials, r);
        users.push(User {
            id,
            username: u.username.clone(),
            password_hash: u.password_hash.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            groups: u.groups.clone(),
            links: u
                .links
                .iter()
                .map(|l| (l.provider.clone(), l.subject.clone()))
                .collect(),
            tokens_not_before: check_not_before(
                u.tokens_not_before.as_deref(),
                &format!("{path}.tokens_not_before"),
                r,
            ),
            totp: totp_secret(u, &format!("{path}.totp_secret"), base_dir, sources, r),
            passkeys,
        });
    }
    users
}

/// Where a `totp_secret` is.
#[derive(Debug, PartialEq, Eq)]
enum TotpRef<'a> {
    Env(&'a str),
    File(&'a str),
    Literal,
    Malformed,
}

fn totp_ref(value: &str) -> TotpRef<'_> {
    if let Some(path) = value.strip_prefix("${file:") {
        return match path.strip_suffix('}') {
            Some(p) if !p.trim().is_empty() => TotpRef::File(p),
            _ => TotpRef::Malformed,
        };
    }
    match parse_env_ref(value) {
        EnvRef::Name(name) => TotpRef::Env(name),
        EnvRef::Literal => TotpRef::Literal,
        EnvRef::Malformed => TotpRef::Malformed,
    }
}

/// The user's `totp_secret`, resolved (read from the environment or a file, noted in
/// the config's fingerprint) and decoded; each problem reported at `field`. Offline
/// (`--offline`), a referenced secret is not read: a stand-in derived from the
/// reference takes its place.
fn totp_secret(
    u: &UserEntry,
    field: &str,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Secret> {
    let value = u.totp_secret.as_deref()?;
    let reference = totp_ref(value);
    if sources.is_offline() && matches!(reference, TotpRef::Env(_) | TotpRef::File(_)) {
        let stand_in = crate::crypto::sha256(format!("offline totp {value}").as_bytes());
        return Some(Secret::from_bytes(&stand_in));
    }
    let text = match reference {
        TotpRef::Env(name) => env_value(name, field, sources, r)?,
        TotpRef::File(path) => {
            let full = base_dir.join(path);
            match sources.read(&full) {
                Ok(text) => text,
                Err(e) => {
                    r.error(field, format!("cannot read {}: {e}", full.display()));
                    return None;
                }
            }
        }
        TotpRef::Malformed => {
            r.error(
                field,
                "malformed reference; write \"${env:NAME}\" or \"${file:PATH}\"",
            );
            return None;
        }
        TotpRef::Literal => {
            r.warn(
                field,
                "a literal TOTP secret in the config file: anyone who reads the file can make this user's codes; use \"${env:NAME}\" or \"${file:PATH}\"",
            );
            value.to_owned()
        }
    };
    Secret::from_base32(text.trim())
        .map_err(|e| r.error(field, e.to_string()))
        .ok()
}

#[cfg(test)]
mod tests {
    use crate::load::users::{TotpRef, totp_ref};

    #[test]
    fn totp_references() {
        assert_eq!(totp_ref("${env:ALICE_TOTP}"), TotpRef::Env("ALICE_TOTP"));
        assert_eq!(
            totp_ref("${file:/run/a.totp}"),
            TotpRef::File("/run/a.totp")
        );
        assert_eq!(totp_ref("${file:}"), TotpRef::Malformed);
        assert_eq!(totp_ref("${file:/a"), TotpRef::Malformed);
        assert_eq!(totp_ref("${vault:x}"), TotpRef::Malformed);
        assert_eq!(totp_ref("JBSWY3DPEHPK3PXP"), TotpRef::Literal);
    }
}
