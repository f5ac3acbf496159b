//! `[[keys]]`: the signing keys, parsed from their PEM files, the active one first.

use super::report::Report;
use crate::config::file::ConfigFile;
use crate::config::report::Sources;
use crate::jwt::keys::SigningKey;
use std::path::Path;

/// Parses every key; the signing key (the `active` one, else the first) comes first.
pub(super) fn load_keys(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Vec<SigningKey> {
    let mut keys: Vec<SigningKey> = Vec::new();
    let mut active: Option<String> = None;
    for (i, entry) in file.keys.iter().enumerate() {
        let path = format!("keys[{i}]");
        if entry.active && active.is_some() {
            r.error(
                format!("{path}.active"),
                "only one key may be active (the one that signs)",
            );
        }
        if entry.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            r.error(
                format!("{path}.id"),
                "may not be empty (leave it out to use the key's thumbprint)",
            );
            continue;
        }
        let key_path = base_dir.join(&entry.private_key_file);
        let parsed = if sources.is_offline() {
            crate::load::offline::key(entry)
        } else {
            let text = match sources.read(&key_path) {
                Ok(t) => t,
                Err(e) => {
                    r.error(
                        format!("{path}.private_key_file"),
                        format!("cannot read {}: {e}", key_path.display()),
                    );
                    continue;
                }
            };
            SigningKey::from_pem(&text, entry.algorithm, entry.id.as_deref())
        };
        match parsed {
            Ok(key) => {
                if keys.iter().any(|k| k.kid() == key.kid()) {
                    r.error(
                        format!("{path}.id"),
                        format!("duplicate key id {:?}", key.kid()),
                    );
                } else {
                    if entry.active && active.is_none() {
                        active = Some(key.kid().to_owned());
                    }
                    keys.push(key);
                }
            }
            Err(e) => r.error(
                format!("{path}.private_key_file"),
                format!("{}: {e}", key_path.display()),
            ),
        }
    }
    if let Some(kid) = active
        && let Some(at) = keys.iter().position(|k| k.kid() == kid)
    {
        keys[..=at].rotate_right(1);
    }
    keys
}
