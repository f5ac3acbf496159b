//! Client authentication by JWT assertion (`client_assertion`, RFC 7521 4.2): the
//! client's own `private_key_jwt` (keys listed in the config or fetched from its
//! `jwks_uri`, `jti` single use in the store so it holds across replicas) and platform
//! tokens of trusted workload issuers (federated credentials). The checks themselves
//! are the pure `jwt::assertion`; this module finds the keys and remembers the `jti`.

use crate::jwt::assertion::{self, Failed, Parsed};
use crate::model::{Client, ClientKeys, CredentialId, key_fingerprint, uri_fingerprint};
use crate::protocol::jwk::Alg;
use crate::registry::{Registry, endpoint};
use crate::state::AppState;
use crate::store::StoreError;
use crate::upstream::jwks::{KeySource, Location};

/// Why an assertion did not authenticate its client.
#[derive(Debug)]
pub(crate) enum Refused {
    /// A check failed: `invalid_client`, the check named in the audit line only.
    Check(Failed),
    /// The store could not record the `jti`: `temporarily_unavailable`.
    Store(StoreError),
}

impl From<Failed> for Refused {
    fn from(f: Failed) -> Self {
        Self::Check(f)
    }
}

/// The audiences a client assertion may name: the issuer identifier and the token
/// endpoint URL.
fn audiences(registry: &Registry) -> [String; 2] {
    [
        registry.issuer.clone(),
        endpoint(&registry.issuer, "/token"),
    ]
}

/// Checks `token`, presented by `client` whose keys are `keys`; the credential the
/// tokens issued on it record.
pub(crate) async fn check(
    state: &AppState,
    registry: &Registry,
    client: &Client,
    keys: &ClientKeys,
    token: &str,
) -> Result<CredentialId, Refused> {
    let parsed = Parsed::new(token)?;
    // FAPI 2.0 5.4.1: PS256, ES256 or EdDSA only.
    if client.protections.fapi2 && !matches!(parsed.alg(), Alg::Ps256 | Alg::Es256 | Alg::Ed25519) {
        return Err(Refused::Check(Failed::Algorithm));
    }
    let now = state.clock.now();
    let credential = match keys {
        ClientKeys::Listed(listed) => key_fingerprint(&parsed.verify(listed)?.thumbprint),
        ClientKeys::Uri(uri) => {
            let source = KeySource {
                location: Location::Jwks(uri.clone()),
                ca_pem: None,
                bearer: None,
            };
            let name = format!("client:{}", client.id);
            let fetched = state
                .key_sets
                .keys(&name, &source, now, |k| parsed.has_key_in(k))
                .await
                .map_err(|_| Failed::KeysUnavailable)?;
            parsed.verify(&fetched)?;
            uri_fingerprint(uri)
        }
        ClientKeys::Federated(creds) => {
            return Ok(super::federated::check(state, registry, &parsed, creds, now).await?);
        }
    };
    let [issuer, token_endpoint] = audiences(registry);
    if client.protections.fapi2 {
        assertion::issuer_as_string(&parsed, &issuer)?;
    }
    let claims = assertion::client_claims(
        &parsed,
        &client.id,
        &[issuer.as_str(), token_endpoint.as_str()],
        now,
    )?;
    let key = format!(
        "client-assertion:{}:{}",
        client.id,
        crate::crypto::hex(&crate::crypto::sha256(claims.jti.as_bytes()))
    );
    match state.store.remember_once(&key, claims.exp).await {
        Ok(true) => Ok(credential),
        Ok(false) => Err(Refused::Check(Failed::Replayed)),
        Err(e) => Err(Refused::Store(e)),
    }
}
