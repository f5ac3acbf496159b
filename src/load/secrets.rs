//! Client secrets and password hashes: `secret_hash` (argon2 PHC strings), `secret_file`,
//! `secret = "${env:NAME}"` (values noted in the config's fingerprint) and their lists
//! for rotation.

use super::report::Report;
use crate::config::report::Sources;
use crate::model::ClientSecret;
use std::path::Path;

/// More secrets than this in one client's list draws a warning: a rotation needs two.
const ROTATION_SECRETS: usize = 2;

/// Resolves the secret source of a confidential client (one field, which for
/// `secret_hash` and `secret_file` may list several secrets, newest first); public
/// clients have none.
pub(super) fn resolve_secret(
    c: &crate::config::file::ClientEntry,
    path: &str,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Vec<ClientSecret>> {
    let given: Vec<&str> = [
        c.secret_hash.as_ref().map(|_| "secret_hash"),
        c.secret.as_ref().map(|_| "secret"),
        c.secret_file.as_ref().map(|_| "secret_file"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if c.public {
        if let Some(field) = given.first() {
            r.error(
                format!("{path}.{field}"),
                "a public client has no secret; remove it or set public = false",
            );
        }
        return None;
    }
    match given.as_slice() {
        [] => {
            r.error(
                format!("{path}.secret_hash"),
                "a confidential client needs one of secret_hash, secret or secret_file (or set public = true)",
            );
            return None;
        }
        [_] => {}
        [_, second, ..] => {
            r.error(
                format!("{path}.{second}"),
                format!(
                    "give exactly one of secret_hash, secret, secret_file; found {}",
                    given.join(", ")
                ),
            );
            return None;
        }
    }
    let base_dir = c.base_dir.as_deref().unwrap_or(base_dir);
    let (field, secrets) = if let Some(hashes) = &c.secret_hash {
        let field = format!("{path}.secret_hash");
        let secrets = hashes.items.iter().enumerate().map(|(j, hash)| {
            check_phc(hash)
                .map(|()| ClientSecret::hash(hash.clone()))
                .map_err(|e| r.error(hashes.item_path(&field, j), e))
                .ok()
        });
        let secrets: Vec<Option<ClientSecret>> = secrets.collect();
        (field, (hashes, secrets))
    } else if let Some(files) = &c.secret_file {
        let field = format!("{path}.secret_file");
        let mut secrets = Vec::new();
        for (j, name) in files.items.iter().enumerate() {
            let item = files.item_path(&field, j);
            secrets.push(read_secret_file(&base_dir.join(name), &item, sources, r));
        }
        (field, (files, secrets))
    } else {
        return env_or_literal_secret(c, path, sources, r).map(|s| vec![s]);
    };
    let (listed, secrets) = secrets;
    if listed.items.is_empty() {
        r.error(field, "list at least one secret");
        return None;
    }
    if listed.items.len() > ROTATION_SECRETS {
        r.warn(
            field.clone(),
            format!(
                "lists {} secrets: a rotation needs two (the new one first, then the old one); remove those no service uses any more",
                listed.items.len()
            ),
        );
    }
    // Of the listed count: the registry keeps this vector, one per client (pushing
    // into an empty one reserves four).
    let mut resolved: Vec<ClientSecret> = Vec::with_capacity(secrets.len());
    let mut complete = true;
    for (j, secret) in secrets.into_iter().enumerate() {
        match secret {
            Some(s) if resolved.contains(&s) => {
                r.error(
                    listed.item_path(&field, j),
                    "the same secret is listed twice",
                );
                complete = false;
            }
            Some(s) => resolved.push(s),
            None => complete = false,
        }
    }
    complete.then_some(resolved)
}

/// The secret in the file at `full`, trailing newline trimmed; errors are reported at
/// `field`.
fn read_secret_file(
    full: &Path,
    field: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<ClientSecret> {
    if sources.is_offline() {
        return Some(ClientSecret::plain(&crate::load::offline::value(
            &full.to_string_lossy(),
        )));
    }
    match sources.read(full) {
        Ok(text) => {
            let plain = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            plain_secret(plain, field, r)
        }
        Err(e) => {
            r.error(field, format!("cannot read {}: {e}", full.display()));
            None
        }
    }
}

/// The secret of `secret = "${env:NAME}"` (or a literal, warned about).
fn env_or_literal_secret(
    c: &crate::config::file::ClientEntry,
    path: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<ClientSecret> {
    let value = c.secret.as_deref()?;
    let field = format!("{path}.secret");
    let plain = match parse_env_ref(value) {
        EnvRef::Name(name) => env_value(name, &field, sources, r)?,
        EnvRef::Malformed => {
            r.error(field, "malformed reference; write \"${env:NAME}\"");
            return None;
        }
        EnvRef::Literal => {
            r.warn(
                field.clone(),
                "a literal secret in the config file; store its hash (gatehouse hash-secret) or use \"${env:NAME}\"",
            );
            value.to_owned()
        }
    };
    plain_secret(&plain, &field, r)
}

/// Shortest secret kept as itself (`secret`, `secret_file`) that draws no warning. Such a
/// secret is stored as a fast SHA-256, and a fingerprint derived from it travels in the
/// client's access tokens (`cred`): only a random secret keeps it out of reach of
/// offline guessing. `gatehouse hash-secret --generate` makes 256-bit ones.
const MIN_PLAIN_SECRET_CHARS: usize = 32;

/// A secret kept as itself (from the environment or a file), or an error when empty and
/// a warning when too short to be a random one.
fn plain_secret(plain: &str, field: &str, r: &mut Report) -> Option<ClientSecret> {
    if plain.is_empty() {
        r.error(field, "the secret is empty");
        return None;
    }
    if plain.chars().count() < MIN_PLAIN_SECRET_CHARS {
        r.warn(
            field,
            format!(
                "a secret kept as itself should be random and at least {MIN_PLAIN_SECRET_CHARS} characters (`gatehouse hash-secret --generate` makes one), or use secret_hash"
            ),
        );
    }
    Some(ClientSecret::plain(plain))
}

/// The value of the environment variable `name` that `field` refers to (noted in the
/// config's fingerprint), or an error at `field` when it is not set.
pub(super) fn env_value(
    name: &str,
    field: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<String> {
    if sources.is_offline() {
        return Some(crate::load::offline::value(name));
    }
    match std::env::var(name) {
        Ok(v) => {
            sources.note(name.as_bytes(), v.as_bytes());
            Some(v)
        }
        Err(_) => {
            r.error(field, format!("environment variable {name} is not set"));
            None
        }
    }
}

pub(super) enum EnvRef<'a> {
    Name(&'a str),
    Malformed,
    Literal,
}

pub(super) fn parse_env_ref(value: &str) -> EnvRef<'_> {
    let Some(rest) = value.strip_prefix("${") else {
        return EnvRef::Literal;
    };
    match rest.strip_prefix("env:").and_then(|r| r.strip_suffix('}')) {
        Some(name)
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            EnvRef::Name(name)
        }
        _ => EnvRef::Malformed,
    }
}

/// Checks that `hash` is an argon2 PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
pub(crate) fn check_phc(hash: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(hash).map_err(|e| {
        format!("not a PHC hash string ({e}); make one with `gatehouse hash-secret`")
    })?;
    let alg = parsed.algorithm.as_str();
    if !matches!(alg, "argon2id" | "argon2i" | "argon2d") {
        return Err(format!(
            "hash algorithm {alg:?} is not argon2; make one with `gatehouse hash-secret`"
        ));
    }
    argon2::Params::try_from(&parsed)
        .map_err(|e| format!("argon2 parameters are invalid ({e})"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::load::secrets::*;

    #[test]
    fn env_references() {
        assert!(matches!(
            parse_env_ref("${env:BILLING_SECRET}"),
            EnvRef::Name("BILLING_SECRET")
        ));
        assert!(matches!(parse_env_ref("${env:}"), EnvRef::Malformed));
        assert!(matches!(parse_env_ref("${BILLING}"), EnvRef::Malformed));
        assert!(matches!(parse_env_ref("${env:A-B}"), EnvRef::Malformed));
        assert!(matches!(parse_env_ref("plain-secret"), EnvRef::Literal));
    }

    #[test]
    fn phc_strings() {
        assert!(check_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0hBjGbGFQ1ZnTgiTvtFVmAyG5mPMVYVC0QPcXkmOqQc").is_ok());
        assert!(check_phc("$2b$12$abcdefghijklmnopqrstuv").is_err());
        assert!(check_phc("not a hash").is_err());
    }
}
