//! `[[trusted_issuers]]`, checked: unique ids;
//! an issuer URL (https, or http on a loopback host) wherever discovery or a fetch
//! needs one; at most one of `jwks_uri` and `jwks_file`, the file holding public keys
//! only; a readable CA file; `bearer_token_file` only where something is fetched.
//! (Clients' `federated_credentials` are checked in `client_keys`.)

use super::client_keys::read_jwks_file;
use super::report::Report;
use crate::config::Sources;
use crate::config::file::ConfigFile;
use crate::model::{IssuerKeys, TrustedIssuer};
use crate::protocol::jwk::check_fetch_url;
use crate::protocol::redirect_uri::check_issuer;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `max_token_age` when absent.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// The longest `max_token_age` accepted.
const LONGEST_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The trusted issuers of `file`, checked (errors reported).
pub(super) fn check(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Vec<TrustedIssuer> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in file.trusted_issuers.iter().enumerate() {
        let path = format!("trusted_issuers[{i}]");
        if t.id.is_empty() || t.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            r.error(format!("{path}.id"), "a non-empty name without spaces");
        } else if !seen.insert(t.id.as_str()) {
            r.error(
                format!("{path}.id"),
                format!("duplicate trusted issuer id {:?}", t.id),
            );
        }
        let fetches = t.jwks_file.is_none();
        let keys = match (&t.jwks_uri, &t.jwks_file) {
            (Some(_), Some(_)) => {
                r.error(
                    format!("{path}.jwks_file"),
                    "give jwks_uri or jwks_file, not both",
                );
                None
            }
            (Some(uri), None) => match check_fetch_url(uri) {
                Ok(()) => Some(IssuerKeys::Uri(uri.clone())),
                Err(e) => {
                    r.error(format!("{path}.jwks_uri"), e);
                    None
                }
            },
            (None, Some(name)) => read_jwks_file(
                &base_dir.join(name),
                &format!("{path}.jwks_file"),
                sources,
                r,
            )
            .map(IssuerKeys::Listed),
            (None, None) => Some(IssuerKeys::Discovery),
        };
        let issuer_check = if matches!(keys, Some(IssuerKeys::Discovery)) {
            check_fetch_url(&t.issuer).and_then(|()| check_issuer(&t.issuer))
        } else if t.issuer.trim().is_empty() {
            Err("may not be empty".to_owned())
        } else {
            Ok(())
        };
        if let Err(e) = issuer_check {
            r.error(format!("{path}.issuer"), e);
        }
        let max_age = t.max_token_age.unwrap_or(DEFAULT_MAX_AGE);
        if max_age.is_zero() || max_age > LONGEST_MAX_AGE {
            r.error(format!("{path}.max_token_age"), "between 1s and 24h");
        }
        if t.bearer_token_file.is_some() && !fetches {
            r.error(
                format!("{path}.bearer_token_file"),
                "is sent when fetching keys; with jwks_file nothing is fetched",
            );
        }
        let ca_pem = t.ca_file.as_ref().and_then(|name| {
            let field = format!("{path}.ca_file");
            super::offline::ca_file(&base_dir.join(name), &field, sources, r).map(Arc::new)
        });
        if let Some(keys) = keys {
            out.push(TrustedIssuer {
                id: t.id.clone(),
                issuer: t.issuer.clone(),
                keys,
                audience: t.audience.clone().unwrap_or_else(|| file.issuer.clone()),
                max_token_age: max_age.as_secs(),
                ca_pem,
                bearer_token_file: t.bearer_token_file.as_ref().map(|f| base_dir.join(f)),
            });
        }
    }
    out
}
