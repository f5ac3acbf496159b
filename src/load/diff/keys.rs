//! Signing keys in the diff, by `kid`: one added widens (tokens it signs are accepted),
//! one removed narrows, key material replaced under the same kid is a credential
//! replaced (compared by RFC 7638 thumbprint, never shown), another signer is neutral.

use super::{Changes, Mark, Side, Subject};
use crate::jwt::keys::SigningKey;
use std::collections::BTreeSet;

/// Every change of the keys from `old` to `new`.
pub(super) fn keys(out: &mut Changes, old: &Side<'_>, new: &Side<'_>) {
    let kids = |side: &Side<'_>| -> BTreeSet<String> {
        side.keys.iter().map(|k| k.kid().to_owned()).collect()
    };
    let (before, after) = (kids(old), kids(new));
    let s = Subject::Key;
    for kid in after.difference(&before) {
        out.push(s, kid, Mark::Widens, "added: tokens it signs are accepted");
    }
    for kid in before.difference(&after) {
        out.push(
            s,
            kid,
            Mark::Narrows,
            "removed: tokens it signed no longer verify",
        );
    }
    for k in &new.keys {
        if let Some(b) = old.keys.iter().find(|b| b.kid() == k.kid())
            && thumbprint(b) != thumbprint(k)
        {
            out.push(
                s,
                k.kid(),
                Mark::CredentialReplaced,
                "key material replaced under the same kid",
            );
        }
        if let Some(b) = old.keys.iter().find(|b| b.kid() == k.kid())
            && b.algorithm() != k.algorithm()
        {
            let what = format!(
                "algorithm changed {} -> {}",
                b.algorithm().as_str(),
                k.algorithm().as_str()
            );
            out.push(s, k.kid(), Mark::Neutral, what);
        }
    }
    let signer = |side: &Side<'_>| side.keys.first().map(|k| k.kid().to_owned());
    if let Some(now) = signer(new)
        && signer(old) != Some(now.clone())
    {
        let what = match signer(old) {
            Some(was) => format!("now signs new tokens (was {was})"),
            None => "now signs new tokens".to_owned(),
        };
        out.push(s, &now, Mark::Neutral, what);
    }
}

/// The RFC 7638 thumbprint of a key's public JWK: the SHA-256 of its required members
/// (`crv`, `e`, `kty`, `n`, `x`, `y`, those it has) in lexicographic order.
fn thumbprint(key: &SigningKey) -> [u8; 32] {
    let jwk = key.public_jwk();
    let members: serde_json::Map<String, serde_json::Value> = ["crv", "e", "kty", "n", "x", "y"]
        .into_iter()
        .filter_map(|m| jwk.get(m).map(|v| (m.to_owned(), v.clone())))
        .collect();
    let text = serde_json::Value::Object(members).to_string();
    crate::crypto::sha256(text.as_bytes())
}
