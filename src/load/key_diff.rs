//! `gatehouse diff` for clients that authenticate with keys: keys (by `kid`, else by
//! thumbprint) added widen, removed narrow (their tokens end), a `kid` with new
//! material is "replaced" (credential_replaced, like a rotated secret); a `jwks_uri` moved widens
//! (another server is believed); federated credentials added widen, removed narrow.
//! Never shows key material: a `kid` or the start of a thumbprint.

use super::change::{Changes, Mark, Subject};
use crate::model::{ClientAuth, ClientKeys, FederatedCredential, TrustedIssuer};
use crate::protocol::jwk::PublicJwk;

/// The changes between a client's `old` and `new` authentication, one of them (at
/// least) by keys.
pub(super) fn client_auth(out: &mut Changes, id: &str, old: &ClientAuth, new: &ClientAuth) {
    let s = Subject::Client;
    match (old, new) {
        (ClientAuth::Keys(a), ClientAuth::Keys(b)) => keys(out, id, a, b),
        (ClientAuth::SharedSecret(_), ClientAuth::Keys(b)) => {
            out.push(
                s,
                id,
                Mark::Widens,
                format!("now authenticates with {}", what(b)),
            );
            out.push(
                s,
                id,
                Mark::Narrows,
                "its secrets removed: their tokens end",
            );
        }
        (ClientAuth::Keys(a), ClientAuth::SharedSecret(_)) => {
            out.push(s, id, Mark::Widens, "now authenticates with a secret");
            out.push(
                s,
                id,
                Mark::Narrows,
                format!("{} removed: their tokens end", what(a)),
            );
        }
        _ => {}
    }
}

fn what(keys: &ClientKeys) -> String {
    match keys {
        ClientKeys::Listed(k) => format!("private_key_jwt ({} key(s) listed)", k.len()),
        ClientKeys::Uri(uri) => format!("private_key_jwt (keys from {uri})"),
        ClientKeys::Federated(c) => format!("{} federated credential(s)", c.len()),
    }
}

fn keys(out: &mut Changes, id: &str, old: &ClientKeys, new: &ClientKeys) {
    let s = Subject::Client;
    match (old, new) {
        (ClientKeys::Listed(a), ClientKeys::Listed(b)) => listed(out, id, a, b),
        (ClientKeys::Uri(a), ClientKeys::Uri(b)) if a != b => {
            out.push(
                s,
                id,
                Mark::Widens,
                format!("jwks_uri changed to {b:?} (was {a:?})"),
            );
        }
        (ClientKeys::Federated(a), ClientKeys::Federated(b)) => federated(out, id, a, b),
        (a, b) if a != b => {
            out.push(
                s,
                id,
                Mark::Widens,
                format!("now authenticates with {}", what(b)),
            );
            out.push(
                s,
                id,
                Mark::Narrows,
                format!("{} removed: their tokens end", what(a)),
            );
        }
        _ => {}
    }
}

/// A key's name in a change: its `kid`, else the start of its thumbprint.
fn name(k: &PublicJwk) -> String {
    match &k.kid {
        Some(kid) => format!("{kid:?}"),
        None => format!("thumbprint {}…", k.thumbprint.get(..8).unwrap_or_default()),
    }
}

fn listed(out: &mut Changes, id: &str, old: &[PublicJwk], new: &[PublicJwk]) {
    let s = Subject::Client;
    let same_name = |a: &PublicJwk, b: &PublicJwk| match (&a.kid, &b.kid) {
        (Some(x), Some(y)) => x == y,
        _ => a.thumbprint == b.thumbprint,
    };
    for k in new {
        match old.iter().find(|o| same_name(o, k)) {
            None => out.push(s, id, Mark::Widens, format!("key added {}", name(k))),
            Some(o) if o.material != k.material || o.alg != k.alg => out.push(
                s,
                id,
                Mark::CredentialReplaced,
                format!("key replaced {}: tokens under the old one end", name(k)),
            ),
            Some(_) => {}
        }
    }
    for k in old.iter().filter(|o| !new.iter().any(|k| same_name(o, k))) {
        out.push(
            s,
            id,
            Mark::Narrows,
            format!("key removed {}: its tokens end", name(k)),
        );
    }
}

fn federated(
    out: &mut Changes,
    id: &str,
    old: &[FederatedCredential],
    new: &[FederatedCredential],
) {
    let s = Subject::Client;
    let show = |c: &FederatedCredential| format!("{} {:?}", c.issuer, c.subject);
    for c in new.iter().filter(|c| !old.contains(c)) {
        out.push(
            s,
            id,
            Mark::Widens,
            format!("federated credential added {}", show(c)),
        );
    }
    for c in old.iter().filter(|c| !new.contains(c)) {
        out.push(
            s,
            id,
            Mark::Narrows,
            format!("federated credential removed {}: its tokens end", show(c)),
        );
    }
}

/// `[[trusted_issuers]]`: one added widens (clients naming it may now be believed),
/// removed narrows; a changed issuer, audience, age or key source widens when it may
/// let other tokens in (every change but a shorter age), else narrows.
pub(super) fn trusted_issuers(out: &mut Changes, old: &[TrustedIssuer], new: &[TrustedIssuer]) {
    let s = Subject::TrustedIssuer;
    for t in new {
        match old.iter().find(|o| o.id == t.id) {
            None => out.push(s, &t.id, Mark::Widens, format!("added ({})", t.issuer)),
            Some(o) if o == t => {}
            Some(o) => {
                let only_age = TrustedIssuer {
                    max_token_age: t.max_token_age,
                    ..o.clone()
                } == *t;
                if only_age && t.max_token_age < o.max_token_age {
                    out.push(s, &t.id, Mark::Narrows, "max_token_age shortened");
                } else {
                    out.push(
                        s,
                        &t.id,
                        Mark::Widens,
                        "changed (issuer, audience, age or keys)",
                    );
                }
            }
        }
    }
    for o in old.iter().filter(|o| !new.iter().any(|t| t.id == o.id)) {
        out.push(s, &o.id, Mark::Narrows, "removed");
    }
}
