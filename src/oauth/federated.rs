//! Workload identity federation: a platform's token (a Kubernetes projected
//! service-account token, a GitHub Actions OIDC token, ...) presented as the
//! `client_assertion` of a client with `federated_credentials`. The token's `iss` must
//! be a trusted issuer one of the client's credentials names; its signature a key of
//! that issuer (listed, or fetched and cached by `upstream::jwks`); its claims what
//! `jwt::assertion::platform_claims` and the credential ask. Reusable within its
//! lifetime: no `jti` rule.

use crate::jwt::assertion::{Failed, Parsed, PlatformRules, platform_claims};
use crate::model::{CredentialId, FederatedCredential, IssuerKeys, TrustedIssuer};
use crate::registry::Registry;
use crate::state::AppState;
use crate::upstream::jwks::{KeySource, Location, origin_of};
use std::sync::Arc;

/// Where `issuer`'s keys are fetched from (`None`: listed in the config).
fn source(issuer: &TrustedIssuer) -> Option<KeySource> {
    let location = match &issuer.keys {
        IssuerKeys::Listed(_) => return None,
        IssuerKeys::Uri(uri) => Location::Jwks(uri.clone()),
        IssuerKeys::Discovery => Location::Discovery(issuer.issuer.clone()),
    };
    let bearer = issuer
        .bearer_token_file
        .as_ref()
        .and_then(|file| Some((origin_of(&issuer.issuer)?, file.clone())));
    Some(KeySource {
        location,
        ca_pem: issuer.ca_pem.clone(),
        bearer,
    })
}

/// Checks the platform token `parsed` against `creds` at `now`; the credential that
/// accepted it.
pub(crate) async fn check(
    state: &AppState,
    registry: &Registry,
    parsed: &Parsed,
    creds: &[FederatedCredential],
    now: u64,
) -> Result<CredentialId, Failed> {
    let iss = parsed.text("iss").ok_or(Failed::Issuer)?;
    let issuer = creds
        .iter()
        .filter_map(|c| registry.trusted_issuer(&c.issuer))
        .find(|t| t.issuer == iss)
        .ok_or(Failed::Issuer)?;
    let keys = match (&issuer.keys, source(issuer)) {
        (IssuerKeys::Listed(listed), _) => Arc::new(listed.clone()),
        (_, Some(source)) => state
            .key_sets
            .keys(&format!("issuer:{}", issuer.id), &source, now, |k| {
                parsed.has_key_in(k)
            })
            .await
            .map_err(|_| Failed::KeysUnavailable)?,
        (_, None) => return Err(Failed::KeysUnavailable),
    };
    parsed.verify(&keys)?;
    let mut refused = Failed::Subject;
    for credential in creds.iter().filter(|c| c.issuer == issuer.id) {
        let rules = PlatformRules {
            issuer: &issuer.issuer,
            audience: &issuer.audience,
            max_age: issuer.max_token_age,
            subject: &credential.subject,
            claims: &credential.claims,
        };
        match platform_claims(parsed, &rules, now) {
            Ok(()) => return Ok(credential.fingerprint()),
            Err(f) => refused = f,
        }
    }
    Err(refused)
}
