//! A client's `require_pushed_authorization_requests`, `dpop_bound_access_tokens`,
//! `require_second_factor` and `profile = "fapi2"` (FAPI 2.0 Security Profile),
//! checked into its [`Protections`]. A FAPI 2.0 client implies PAR and DPoP-bound tokens; what the
//! config must say itself (no shared secret, https redirect URIs, keys and signing
//! algorithms of PS256, ES256 or EdDSA) is an error at the field that breaks it.
//! mTLS sender constraint is not offered: DPoP is the one FAPI 2.0 allows here.

use super::change::{Changes, Mark, Subject};
use super::report::Report;
use crate::config::file::{Algorithm, ClientEntry, ClientProfile, ConfigFile};
use crate::model::Protections;
use crate::protocol::dpop::FAPI2_ALGS;

/// The client's protections, with each FAPI 2.0 violation reported at `path`.
pub(super) fn protections(c: &ClientEntry, path: &str, r: &mut Report) -> Protections {
    let fapi2 = c.profile == Some(ClientProfile::Fapi2);
    if fapi2 {
        check_fapi2(c, path, r);
    }
    Protections {
        require_par: c.require_pushed_authorization_requests || fapi2,
        dpop_bound: c.dpop_bound_access_tokens || fapi2,
        fapi2,
        second_factor: c.require_second_factor,
    }
}

fn check_fapi2(c: &ClientEntry, path: &str, r: &mut Report) {
    let why = "profile \"fapi2\"";
    if c.public {
        r.error(
            format!("{path}.public"),
            format!("{why}: FAPI 2.0 (5.3.2.1) allows confidential clients only, authenticated with private_key_jwt; a public client can still require PAR and DPoP (require_pushed_authorization_requests, dpop_bound_access_tokens)"),
        );
    }
    for (field, set) in [
        ("secret_hash", c.secret_hash.is_some()),
        ("secret", c.secret.is_some()),
        ("secret_file", c.secret_file.is_some()),
    ] {
        if set {
            r.error(
                format!("{path}.{field}"),
                format!("{why}: a confidential client authenticates with private_key_jwt, never a shared secret; list its public keys (jwks, jwks_file or jwks_uri)"),
            );
        }
    }
    if !c.public && !super::client_keys::declared(c) && c.federated_credentials.is_empty() {
        r.error(
            format!("{path}.profile"),
            format!(
                "{why}: a confidential client needs private_key_jwt (jwks, jwks_file or jwks_uri)"
            ),
        );
    }
    for (j, uri) in c.redirect_uris.iter().enumerate() {
        if !uri.starts_with("https://") {
            r.error(
                format!("{path}.redirect_uris[{j}]"),
                "profile \"fapi2\": redirect URIs use https",
            );
        }
    }
    if let Some(set) = &c.jwks {
        for (j, key) in set.keys.iter().enumerate() {
            if let Some(alg) = key.get("alg").and_then(|a| a.as_str())
                && !FAPI2_ALGS.contains(&alg)
            {
                r.error(
                    format!("{path}.jwks.keys[{j}].alg"),
                    format!("profile \"fapi2\": {alg} is not allowed; use PS256, ES256 or EdDSA (FAPI 2.0 5.4.1)"),
                );
            }
        }
    }
}

/// The server's signing keys, when a FAPI 2.0 client is configured: RS256 is not
/// among the algorithms FAPI 2.0 allows for ID tokens (5.4.1).
pub(super) fn check_keys(file: &ConfigFile, r: &mut Report) {
    if !file
        .clients
        .iter()
        .any(|c| c.profile == Some(ClientProfile::Fapi2))
    {
        return;
    }
    for (i, key) in file.keys.iter().enumerate() {
        if key.algorithm == Algorithm::RS256 {
            r.error(
                format!("keys[{i}].algorithm"),
                "a client has profile \"fapi2\": sign with ES256 or EdDSA (FAPI 2.0 5.4.1 does not allow RS256)",
            );
        }
    }
}

/// A client's protections changed: one turned on narrows what the client may do
/// (more is demanded of it), one turned off widens.
pub(super) fn diff(out: &mut Changes, id: &str, before: &Protections, after: &Protections) {
    for (what, b, a) in [
        (
            "require_pushed_authorization_requests",
            before.require_par,
            after.require_par,
        ),
        (
            "dpop_bound_access_tokens",
            before.dpop_bound,
            after.dpop_bound,
        ),
        ("profile fapi2", before.fapi2, after.fapi2),
        (
            "require_second_factor",
            before.second_factor,
            after.second_factor,
        ),
    ] {
        if b != a {
            let (mark, state) = if a {
                (Mark::Narrows, "on")
            } else {
                (Mark::Widens, "off")
            };
            out.push(Subject::Client, id, mark, format!("{what} turned {state}"));
        }
    }
}
