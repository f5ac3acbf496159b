//! A client's keys (`jwks`, `jwks_file`, `jwks_uri`) and `token_endpoint_auth_method`,
//! checked: exactly one source of keys, never with a secret; public keys only (a
//! private member is an error at its place, in the config or in the key file);
//! supported key types and algorithms; a `jwks_uri` on https (http only to a loopback
//! host).

use super::report::Report;
use crate::config::Sources;
use crate::config::file::{ClientEntry, FederatedCredentialEntry, TokenEndpointAuthMethod};
use crate::config::locate::{Locations, position_of};
use crate::model::{ClientKeys, FederatedCredential};
use crate::protocol::jwk::{self, JwkError, check_fetch_url};
use serde_json::Value;
use std::path::Path;

/// Largest key file read.
const MAX_JWKS_FILE: usize = 64 * 1024;

/// The key fields a client names, by field name.
fn key_fields(c: &ClientEntry) -> Vec<&'static str> {
    [
        c.jwks.as_ref().map(|_| "jwks"),
        c.jwks_file.as_ref().map(|_| "jwks_file"),
        c.jwks_uri.as_ref().map(|_| "jwks_uri"),
        (!c.federated_credentials.is_empty()).then_some("federated_credentials"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The secret fields a client names.
fn secret_fields(c: &ClientEntry) -> Vec<&'static str> {
    [
        c.secret_hash.as_ref().map(|_| "secret_hash"),
        c.secret.as_ref().map(|_| "secret"),
        c.secret_file.as_ref().map(|_| "secret_file"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// True when the client authenticates with keys (or platform tokens) rather than a
/// secret: it names `jwks*`, `federated_credentials` or `token_endpoint_auth_method =
/// "private_key_jwt"`.
pub(super) fn declared(c: &ClientEntry) -> bool {
    !key_fields(c).is_empty()
        || c.token_endpoint_auth_method == Some(TokenEndpointAuthMethod::PrivateKeyJwt)
}

/// Checks that a written `token_endpoint_auth_method` agrees with the client's other
/// fields.
pub(super) fn check_method(c: &ClientEntry, path: &str, r: &mut Report) {
    let Some(method) = c.token_endpoint_auth_method else {
        return;
    };
    let keys = declared(c);
    let fits = match method {
        TokenEndpointAuthMethod::None => c.public,
        TokenEndpointAuthMethod::PrivateKeyJwt => !c.public,
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost => {
            !c.public && !keys
        }
    };
    if !fits {
        r.error(
            format!("{path}.token_endpoint_auth_method"),
            "disagrees with the client's other fields: none is for public clients, private_key_jwt for jwks, jwks_file, jwks_uri or federated_credentials, client_secret_* for a secret",
        );
    }
}

/// The keys of a client that [`declared`] them, checked (errors reported; `None`
/// then); `federated_credentials` must name one of `issuers` (trusted issuer ids).
pub(super) fn resolve(
    c: &ClientEntry,
    path: &str,
    issuers: &[String],
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<ClientKeys> {
    let fields = key_fields(c);
    if c.public {
        r.error(
            format!("{path}.{}", fields.first().copied().unwrap_or("public")),
            "a public client has no keys; remove them or set public = false",
        );
        return None;
    }
    if let Some(secret) = secret_fields(c).first() {
        r.error(
            format!("{path}.{secret}"),
            "give either a secret (secret_hash, secret, secret_file) or keys (jwks, jwks_file, jwks_uri, federated_credentials), not both",
        );
        return None;
    }
    match fields.as_slice() {
        [] => {
            r.error(
                format!("{path}.token_endpoint_auth_method"),
                "private_key_jwt needs the client's public keys: jwks, jwks_file or jwks_uri",
            );
            None
        }
        [_, second, ..] => {
            r.error(
                format!("{path}.{second}"),
                format!("give exactly one of jwks, jwks_file, jwks_uri, federated_credentials; found {}", fields.join(", ")),
            );
            None
        }
        ["jwks"] => inline(c, path, r),
        ["jwks_file"] => from_file(c, path, base_dir, sources, r),
        ["jwks_uri"] => {
            let uri = c.jwks_uri.as_deref().unwrap_or_default();
            match check_fetch_url(uri) {
                Ok(()) => Some(ClientKeys::Uri(uri.to_owned())),
                Err(e) => {
                    r.error(format!("{path}.jwks_uri"), e);
                    None
                }
            }
        }
        _ => credentials(&c.federated_credentials, path, issuers, r).map(ClientKeys::Federated),
    }
}

fn inline(c: &ClientEntry, path: &str, r: &mut Report) -> Option<ClientKeys> {
    let set = c.jwks.as_ref()?;
    let value = serde_json::json!({ "keys": set.keys });
    match jwk::parse_set(&value, &format!("{path}.jwks")) {
        Ok(keys) => Some(ClientKeys::Listed(keys)),
        Err(e) => {
            r.error(e.path().to_owned(), message(&e));
            None
        }
    }
}

/// The error's words without its path (the report places it).
fn message(e: &JwkError) -> String {
    let full = e.to_string();
    full.strip_prefix(e.path())
        .and_then(|m| m.strip_prefix(": "))
        .map_or(full.clone(), str::to_owned)
}

fn from_file(
    c: &ClientEntry,
    path: &str,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<ClientKeys> {
    let name = c.jwks_file.as_deref()?;
    let full = c.base_dir.as_deref().unwrap_or(base_dir).join(name);
    read_jwks_file(&full, &format!("{path}.jwks_file"), sources, r).map(ClientKeys::Listed)
}

/// The public keys of the JWK Set file at `full`; problems are reported at `field`,
/// placed at FILE:LINE:COLUMN in the key file.
pub(super) fn read_jwks_file(
    full: &Path,
    field: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Vec<jwk::PublicJwk>> {
    let text = match sources.read(full) {
        Ok(text) if text.len() <= MAX_JWKS_FILE => text,
        Ok(_) => {
            r.error(
                field,
                format!("{} is larger than {MAX_JWKS_FILE} bytes", full.display()),
            );
            return None;
        }
        Err(e) => {
            r.error(field, format!("cannot read {}: {e}", full.display()));
            return None;
        }
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let at = format!("{}:{}:{}", full.display(), e.line(), e.column());
            r.error(field, format!("{at}: not JSON: {e}"));
            return None;
        }
    };
    match jwk::parse_set(&value, "") {
        Ok(keys) => Some(keys),
        Err(e) => {
            let pos = member_position(&text, e.path())
                .or_else(|| Locations::yaml(text.clone()).find(e.path()))
                .map_or_else(String::new, |p| format!(":{}:{}", p.line, p.column));
            r.error(field, format!("{}{pos}: {e}", full.display()));
            None
        }
    }
}

/// Where the member a path ends with (`keys[0].d` → `"d"`) is first written after the
/// start of its key, found by text: for JSON the YAML index cannot read.
fn member_position(text: &str, path: &str) -> Option<crate::config::locate::Position> {
    let member = path.rsplit('.').next()?;
    let index: usize = path
        .strip_prefix("keys[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())?;
    // The n-th key object starts at the n-th '{' after the "keys" array opens.
    let keys = text.find("\"keys\"")?;
    let mut from = keys;
    for _ in 0..=index {
        from += text.get(from..)?.find('{')? + 1;
    }
    let offset = from + text.get(from..)?.find(&format!("\"{member}\""))?;
    Some(position_of(text, offset))
}

/// Claims a credential may not list: the rules check them already.
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// A client's `federated_credentials` at `path`, each naming one of `issuers` (ids).
fn credentials(
    listed: &[FederatedCredentialEntry],
    path: &str,
    issuers: &[String],
    r: &mut Report,
) -> Option<Vec<FederatedCredential>> {
    let mut out = Vec::new();
    let mut complete = true;
    for (j, c) in listed.iter().enumerate() {
        let at = format!("{path}.federated_credentials[{j}]");
        let mut fail = |field: &str, message: String| {
            r.error(format!("{at}.{field}"), message);
            complete = false;
        };
        if !issuers.contains(&c.issuer) {
            fail(
                "issuer",
                format!("{:?} is not a declared [[trusted_issuers]] id", c.issuer),
            );
        }
        if c.subject.is_empty() {
            fail("subject", "may not be empty".into());
        }
        for name in c.claims.keys() {
            if name.is_empty() || REGISTERED.contains(&name.as_str()) {
                fail(
                    &format!("claims.{name}"),
                    "list claims other than iss, sub, aud, exp, nbf, iat, jti (those are checked by the rules)".into(),
                );
            }
        }
        let credential = FederatedCredential {
            issuer: c.issuer.clone(),
            subject: c.subject.clone(),
            claims: c
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        if out.contains(&credential) {
            fail("subject", "the same credential is listed twice".into());
        }
        out.push(credential);
    }
    complete.then_some(out)
}

#[cfg(test)]
mod tests {
    use crate::load::client_keys::member_position;

    #[test]
    fn a_private_member_is_placed_in_the_key_file() {
        let text = "{\n  \"keys\": [\n    {\"kty\": \"OKP\"},\n    {\"kty\": \"EC\",\n     \"d\": \"x\"}\n  ]\n}\n";
        let pos = member_position(text, "keys[1].d").expect("found");
        assert_eq!((pos.line, pos.column), (5, 6));
    }
}
