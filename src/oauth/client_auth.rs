//! Client authentication at the token, introspection, revocation and device
//! authorization endpoints: `client_secret_basic` (with the RFC 6749 2.3.1
//! form-decoding of id and secret), `client_secret_post`, `private_key_jwt` (a
//! `client_assertion`, checked in `oauth::assertion`), or a bare `client_id` for public
//! clients (`none`). Using two methods in one request is `invalid_request`. Which methods a client may use comes
//! from its `ClientAuth`; attempts are counted and throttled here, and take the same
//! time for an unknown client id as for a known one.

use super::assertion::Refused;
use crate::error::OAuthError;
use crate::http::form::{Form, decode_component};
use crate::jwt::assertion::{JWT_BEARER, Parsed};
use crate::model::{Client, ClientAuth, ClientKeys, CredentialId};
use crate::registry::Registry;
use crate::state::AppState;
use crate::throttle::{self, Policy};
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::net::IpAddr;

/// The credentials a request carries, not yet checked.
#[derive(Debug)]
pub enum Credentials {
    /// A client id and a shared secret, by HTTP Basic (`via_basic`) or in the form.
    Secret {
        client_id: String,
        secret: String,
        via_basic: bool,
    },
    /// A `client_id` alone: a public client.
    IdOnly { client_id: String },
    /// A JWT assertion (`client_assertion`); the client is the `client_id` sent
    /// (`named`), else the assertion's (unverified) `sub`.
    Assertion {
        client_id: String,
        assertion: String,
        named: bool,
    },
}

impl Credentials {
    /// The client the request claims to be.
    pub(crate) fn client_id(&self) -> &str {
        match self {
            Self::Secret { client_id, .. }
            | Self::IdOnly { client_id }
            | Self::Assertion { client_id, .. } => client_id,
        }
    }

    /// True when the client used HTTP Basic: a 401 must then challenge for it.
    pub(crate) fn via_basic(&self) -> bool {
        matches!(
            self,
            Self::Secret {
                via_basic: true,
                ..
            }
        )
    }
}

/// A client that proved who it is, and with which of its secrets: the tokens it gets
/// record that secret's fingerprint, and stand while the client still lists it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authenticated<'r> {
    pub(crate) client: &'r Client,
    /// The fingerprint of the secret presented; `None` for a public client.
    pub(crate) credential: Option<CredentialId>,
}

/// Reads the client's credentials from the Authorization header and the form.
pub fn presented(headers: &HeaderMap, form: &Form) -> Result<Credentials, OAuthError> {
    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        return presented_assertion(headers, form);
    }
    if let Some(value) = headers.get(AUTHORIZATION) {
        let (id, secret) = parse_basic(value.as_bytes())?;
        if form.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: both Basic and client_secret were sent",
            ));
        }
        if form.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok(Credentials::Secret {
            client_id: id,
            secret,
            via_basic: true,
        });
    }
    let Some(id) = form.get("client_id") else {
        return Err(OAuthError::invalid_client(
            "no client authentication was included",
            false,
        ));
    };
    Ok(match form.get("client_secret") {
        Some(secret) => Credentials::Secret {
            client_id: id.to_owned(),
            secret: secret.to_owned(),
            via_basic: false,
        },
        None => Credentials::IdOnly {
            client_id: id.to_owned(),
        },
    })
}

/// A `client_assertion` (RFC 7521 4.2), alone: with Basic or a `client_secret` it is
/// two methods at once.
fn presented_assertion(headers: &HeaderMap, form: &Form) -> Result<Credentials, OAuthError> {
    if headers.get(AUTHORIZATION).is_some() || form.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method: a client_assertion and a secret were sent",
        ));
    }
    let (Some(kind), Some(assertion)) = (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) else {
        return Err(OAuthError::invalid_request(
            "client_assertion and client_assertion_type go together",
        ));
    };
    if kind != JWT_BEARER {
        return Err(OAuthError::invalid_client(
            "unsupported client_assertion_type",
            false,
        ));
    }
    let client_id = match form.get("client_id") {
        Some(id) => id.to_owned(),
        // Only to find the client: the assertion is checked against it before anything
        // trusts it. An unreadable one has no client, and fails as an unknown one.
        None => Parsed::new(assertion)
            .ok()
            .and_then(|p| p.text("sub").map(str::to_owned))
            .unwrap_or_default(),
    };
    Ok(Credentials::Assertion {
        client_id,
        assertion: assertion.to_owned(),
        named: form.get("client_id").is_some(),
    })
}

/// Parses `Basic base64(urlencode(id):urlencode(secret))`.
fn parse_basic(value: &[u8]) -> Result<(String, String), OAuthError> {
    let bad =
        |why: &str| OAuthError::invalid_client(format!("malformed Basic credentials: {why}"), true);
    let text = std::str::from_utf8(value).map_err(|_| bad("not ASCII"))?;
    let (scheme, encoded) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("no credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            format!(
                "unsupported authentication scheme {scheme:?}; use Basic or client_secret_post"
            ),
            true,
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("not base64"))?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("no ':' between id and secret"))?;
    let id = decode_component(&decoded[..colon]).ok_or_else(|| bad("client id is not UTF-8"))?;
    let secret =
        decode_component(&decoded[colon + 1..]).ok_or_else(|| bad("secret is not UTF-8"))?;
    if id.is_empty() {
        return Err(bad("empty client id"));
    }
    Ok((id, secret))
}

/// Checks the presented credentials against the registry (or `document`, the client a
/// metadata document registers under the presented id, which is public). Public clients pass with
/// their id alone, and a secret this server has verified already passes at once: both
/// cost nothing and are never throttled. Every other attempt is counted before it is
/// checked (`throttle`): refused past the address's limit before any hashing, slowed
/// down when its client id keeps failing; counted in this replica's memory while the
/// store is unreachable (`throttle::attempt_or_local`). A wrong secret costs one argon2
/// run per listed hash whether or not the client id exists.
pub(crate) async fn authenticate<'r>(
    state: &AppState,
    registry: &'r Registry,
    document: Option<&'r Client>,
    address: IpAddr,
    presented: &Credentials,
) -> Result<Authenticated<'r>, OAuthError> {
    let document = document.filter(|c| c.id == presented.client_id());
    let client = registry.client(presented.client_id()).or(document);
    if let Some(client) = client {
        let free = match presented {
            Credentials::IdOnly { .. } if client.is_public() => Some(None),
            Credentials::IdOnly { .. } => None,
            Credentials::Secret { secret, .. } => {
                state.verifier.known_good(client, secret).map(Some)
            }
            Credentials::Assertion { .. } => None,
        };
        if let Some(credential) = free {
            return Ok(Authenticated { client, credential });
        }
    }
    let policy = Policy::client(&registry.limits, presented.client_id(), address);
    let (verdict, store) =
        throttle::attempt_or_local(state.store.as_ref(), state.local_failures.as_ref(), &policy)
            .await?;
    if let Some(left) = throttle::abide(verdict).await {
        tracing::warn!(event = "client_auth_refused", reason = "too_many_failures", client_id = %presented.client_id(), remote = %address);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "client_auth").increment(1);
        return Err(OAuthError::too_many(left.as_secs().max(1)));
    }
    match check(state, registry, client, presented).await {
        Ok(client) => {
            // Only failures must stay counted: a success the store cannot take back
            // leaves one attempt too many, which is no reason to refuse the client.
            if let Err(e) = throttle::succeeded(store, &policy).await {
                tracing::warn!(error = %e, client_id = %client.client.id, "cannot take a successful attempt back from the failure count");
            }
            Ok(client)
        }
        Err(Refusal { error, check }) => {
            tracing::warn!(event = "client_auth_failed", client_id = %presented.client_id(), remote = %address, check);
            Err(error)
        }
    }
}

/// A failed client authentication: the error for the client, and the check that
/// failed for the audit line (never the credential itself).
struct Refusal {
    error: OAuthError,
    check: &'static str,
}

impl Refusal {
    fn new(error: OAuthError, check: &'static str) -> Self {
        Self { error, check }
    }
}

/// Checks an assertion presented for `client`.
async fn check_assertion<'r>(
    state: &AppState,
    registry: &Registry,
    client: &'r Client,
    assertion: &str,
    fail: impl Fn() -> OAuthError,
) -> Result<Authenticated<'r>, Refusal> {
    let ClientAuth::Keys(keys) = &client.auth else {
        return Err(Refusal::new(fail(), "method_not_registered"));
    };
    match super::assertion::check(state, registry, client, keys, assertion).await {
        Ok(credential) => Ok(Authenticated {
            client,
            credential: Some(credential),
        }),
        Err(Refused::Check(failed)) => Err(Refusal::new(fail(), failed.name())),
        Err(Refused::Store(e)) => Err(Refusal::new(e.into(), "store_unavailable")),
    }
}

async fn check<'r>(
    state: &AppState,
    registry: &Registry,
    client: Option<&'r Client>,
    presented: &Credentials,
) -> Result<Authenticated<'r>, Refusal> {
    let used_basic = presented.via_basic();
    let fail = || OAuthError::invalid_client("client authentication failed", used_basic);
    let refuse = |check| Err(Refusal::new(fail(), check));
    match (presented, client) {
        (Credentials::Secret { secret, .. }, None) => {
            state.verifier.decoy(secret).await;
            refuse("unknown_client")
        }
        (Credentials::IdOnly { .. } | Credentials::Assertion { .. }, None) => {
            refuse("unknown_client")
        }
        (
            Credentials::Assertion {
                assertion, named, ..
            },
            Some(client),
        ) => {
            if !named && matches!(client.auth, ClientAuth::Keys(ClientKeys::Federated(_))) {
                // A platform token's `sub` is the workload, not the client.
                return refuse("client_id_missing");
            }
            check_assertion(state, registry, client, assertion, fail).await
        }
        (Credentials::IdOnly { .. }, Some(client)) => match client.auth {
            ClientAuth::None => Ok(Authenticated {
                client,
                credential: None,
            }),
            ClientAuth::SharedSecret(_) | ClientAuth::Keys(_) => refuse("no_credential"),
        },
        (Credentials::Secret { secret, .. }, Some(client)) => match client.auth {
            ClientAuth::None => Err(Refusal::new(
                OAuthError::invalid_client(
                    "this is a public client: send client_id without a secret",
                    used_basic,
                ),
                "public_client_sent_secret",
            )),
            ClientAuth::Keys(_) => refuse("method_not_registered"),
            ClientAuth::SharedSecret(_) => match state.verifier.verify(client, secret).await {
                Some(credential) => Ok(Authenticated {
                    client,
                    credential: Some(credential),
                }),
                None => refuse("secret"),
            },
        },
    }
}

/// Authenticates the client of a request from `address` with headers and `form`: for
/// the endpoints that issue nothing (introspection, revocation).
pub(crate) async fn authenticate_request<'r>(
    headers: &HeaderMap,
    form: &Form,
    state: &AppState,
    registry: &'r Registry,
    address: IpAddr,
) -> Result<&'r Client, OAuthError> {
    let presented = presented(headers, form)?;
    Ok(authenticate(state, registry, None, address, &presented)
        .await?
        .client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> Result<(String, String), OAuthError> {
        parse_basic(format!("Basic {}", STANDARD.encode(raw)).as_bytes())
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(
            basic("my%20client:p%3Ass+word").expect("ok"),
            ("my client".into(), "p:ss word".into())
        );
        assert_eq!(
            basic("id:se:cret").expect("ok"),
            ("id".into(), "se:cret".into())
        );
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        assert!(basic("no-colon").is_err());
        assert!(basic(":secret").is_err());
        assert!(parse_basic(b"Basic !!!").is_err());
        assert!(parse_basic(b"Bearer abc").is_err());
        assert!(parse_basic(b"Basic").is_err());
        let e = basic("%FF:x").expect_err("not UTF-8");
        assert!(e.basic_challenge);
    }
}
