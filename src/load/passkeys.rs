//! Passkeys: a `[[users]]` entry's `passkeys` (base64url credential ids, COSE keys and
//! user handles; a credential id used once in the whole config) and `[login] rp_id`
//! (the issuer's host or a suffix of it).

use super::report::Report;
use crate::config::file::{ConfigFile, PasskeyEntry};
use crate::model::Passkey;
use crate::protocol::webauthn::{CoseKey, MAX_CREDENTIAL_ID};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::collections::HashMap;

/// The longest user handle WebAuthn allows (§5.4.3).
pub(crate) const MAX_USER_HANDLE: usize = 64;

/// The WebAuthn settings of one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySettings {
    /// The RP ID passkeys are created for and asserted to.
    pub rp_id: String,
    /// The issuer's web origin: what `clientDataJSON.origin` must be.
    pub origin: String,
}

/// `[login] rp_id`, or the issuer's host: `None` (and an issue) when it is neither the
/// host nor a dot-separated suffix of it with at least two labels.
pub(super) fn settings(file: &ConfigFile, r: &mut Report) -> Option<PasskeySettings> {
    let url = url::Url::parse(&file.issuer).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let origin = url.origin().ascii_serialization();
    let Some(rp_id) = &file.login.rp_id else {
        return Some(PasskeySettings {
            rp_id: host,
            origin,
        });
    };
    match rp_id_fits(rp_id, &host) {
        Ok(()) => Some(PasskeySettings {
            rp_id: rp_id.clone(),
            origin,
        }),
        Err(why) => {
            r.error("login.rp_id", why);
            None
        }
    }
}

/// The rule for `[login] rp_id` (WebAuthn §5.1.2: the origin's effective domain or a
/// registrable suffix of it). Browsers also refuse a public suffix (`co.uk`); here a
/// single label is refused.
fn rp_id_fits(rp_id: &str, host: &str) -> Result<(), String> {
    if rp_id != rp_id.to_ascii_lowercase() || rp_id.trim() != rp_id {
        return Err(format!("{rp_id:?} must be a lower-case host name"));
    }
    if rp_id == host {
        return Ok(());
    }
    let suffix = host.ends_with(&format!(".{rp_id}"));
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    if !suffix || is_ip {
        return Err(format!(
            "{rp_id:?} is not the issuer's host {host:?} nor a suffix of it"
        ));
    }
    if !rp_id.contains('.') || rp_id.starts_with('.') || rp_id.ends_with('.') {
        return Err(format!(
            "{rp_id:?} is a top-level domain; use a registrable domain"
        ));
    }
    Ok(())
}

fn decoded(value: &str, path: &str, max: usize, r: &mut Report) -> Option<Vec<u8>> {
    match B64.decode(value) {
        Ok(b) if !b.is_empty() && b.len() <= max => Some(b),
        Ok(b) => {
            let len = b.len();
            r.error(path, format!("must be 1 to {max} bytes, is {len}"));
            None
        }
        Err(_) => {
            r.error(path, "is not base64url without padding");
            None
        }
    }
}

/// Checks one user's `passkeys` (at `users[i]`), noting each credential id in `seen`
/// (raw id to the path it was first written at) so that a second use is refused.
pub(super) fn check(
    entries: &[PasskeyEntry],
    user_path: &str,
    seen: &mut HashMap<Vec<u8>, String>,
    r: &mut Report,
) -> Vec<Passkey> {
    let mut out = Vec::new();
    for (j, p) in entries.iter().enumerate() {
        let at = format!("{user_path}.passkeys[{j}]");
        if p.name.trim().is_empty() {
            r.error(format!("{at}.name"), "may not be empty");
        }
        let id_path = format!("{at}.credential_id");
        let id = decoded(&p.credential_id, &id_path, MAX_CREDENTIAL_ID, r);
        let handle_path = format!("{at}.user_handle");
        let handle = decoded(&p.user_handle, &handle_path, MAX_USER_HANDLE, r);
        let key_path = format!("{at}.public_key");
        let public_key = decoded(&p.public_key, &key_path, 16 * 1024, r);
        let key = public_key.as_deref().and_then(|b| {
            CoseKey::parse(b)
                .map_err(|e| r.error(key_path.clone(), e.to_string()))
                .ok()
        });
        if let Some(id) = &id {
            if let Some(first) = seen.get(id) {
                let message = "credential id used twice: a passkey belongs to one user once";
                r.duplicate(id_path.clone(), message.into(), first.clone());
            } else {
                seen.insert(id.clone(), id_path.clone());
            }
        }
        if let (Some(credential_id), Some(user_handle), Some(public_key), Some(key)) =
            (id, handle, public_key, key)
        {
            out.push(Passkey {
                name: p.name.clone(),
                credential_id,
                public_key,
                key,
                user_handle,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::load::passkeys::rp_id_fits;

    #[test]
    fn rp_id_rules() {
        let table = [
            ("login.example.com", "login.example.com", true),
            ("example.com", "login.example.com", true),
            ("localhost", "localhost", true),
            ("com", "login.example.com", false),
            ("other.com", "login.example.com", false),
            ("ample.com", "login.example.com", false),
            ("a.login.example.com", "login.example.com", false),
            ("Example.com", "login.example.com", false),
            ("0.1", "127.0.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
        ];
        for (rp_id, host, ok) in table {
            assert_eq!(rp_id_fits(rp_id, host).is_ok(), ok, "{rp_id} for {host}");
        }
    }
}
