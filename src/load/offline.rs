//! `gatehouse check --offline` and `gatehouse diff --offline`: what stands in for a
//! file or environment value the config references (a client or provider secret, a
//! signing key, a certificate) when it is not read, so that a pull request can be
//! checked where the production secrets are not. Every stand-in is derived from the
//! reference alone, so the same reference on both sides of a diff is no change and a
//! changed one is.

use super::report::Report;
use crate::config::file::KeyEntry;
use crate::config::report::Sources;
use crate::jwt::keys::{KeyError, SigningKey};
use aws_lc_rs::digest;
use base64::Engine;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// The stand-in for the value behind `reference` (a path, an environment variable's
/// name): 32 bytes derived from it, base64, so it also passes as a `token_key` and as
/// a secret of random length.
pub(super) fn value(reference: &str) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(b"gatehouse offline stand-in\0");
    context.update(reference.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(context.finish().as_ref())
}

/// The stand-in for `[store] url = "${env:NAME}"`: a Redis store (the URL is not
/// known, and a shared store is the one with the most rules: it needs `[[keys]]`), over
/// TLS when the section names TLS files, so that those are checked too.
pub(super) fn store_url(tls_files: bool) -> String {
    let scheme = if tls_files { "rediss" } else { "redis" };
    format!("{scheme}://offline.invalid:6379/0")
}

/// The stand-in for a `[[keys]]` entry whose file is not read: a new key of its
/// algorithm, with its `id`, or else `offline:FILE` (the thumbprint of the real key is
/// not known), so diffs compare keys by what the config says of them. One key per
/// file and algorithm for the life of the process, so the two sides of a `diff` naming
/// the same file have the same material, and a key moved to another file does not.
pub(super) fn key(entry: &KeyEntry) -> Result<SigningKey, KeyError> {
    static MADE: OnceLock<Mutex<HashMap<(String, &'static str), String>>> = OnceLock::new();
    let kid = match &entry.id {
        Some(id) => id.clone(),
        None => format!("offline:{}", entry.private_key_file),
    };
    let made = MADE.get_or_init(Mutex::default);
    let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
    let name = (entry.private_key_file.clone(), entry.algorithm.as_str());
    if let Some(pem) = made.get(&name) {
        return SigningKey::from_pem(pem, entry.algorithm, Some(&kid));
    }
    let (key, pem) = SigningKey::generate(entry.algorithm, Some(&kid))?;
    made.insert(name, pem);
    Ok(key)
}

/// A PEM file of CA certificates the config references (`ca_file` of a trusted issuer
/// or of Client ID Metadata Documents), read through `sources` so a reload watches it;
/// each problem reported at `field`. Offline, not read: the stand-in derived from its
/// name (so `diff` sees a file renamed, not one rewritten).
pub(super) fn ca_file(
    full: &Path,
    field: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Vec<u8>> {
    if sources.is_offline() {
        return Some(value(&full.to_string_lossy()).into_bytes());
    }
    match sources.read(full) {
        Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => Some(text.into_bytes()),
        Ok(_) => {
            let what = format!("{} holds no PEM certificate", full.display());
            r.error(field, what);
            None
        }
        Err(e) => {
            r.error(field, format!("cannot read {}: {e}", full.display()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::load::offline::value;

    #[test]
    fn stand_ins_are_stable_and_distinct() {
        assert_eq!(value("/a"), value("/a"));
        assert_ne!(value("/a"), value("/b"));
        assert_eq!(value("/a").len(), 44);
    }
}
