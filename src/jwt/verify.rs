//! Verifying tokens this server issued: signature under a published key (the `kid`
//! picks it, and only that key's algorithm is accepted), `typ`, issuer and expiry.
//! Expiry is judged against the server's clock (passed in as `now`), not the system's,
//! so tests can move time.

use crate::registry::Registry;
use jsonwebtoken::Validation;
use serde::Deserialize;

/// Why a token is not accepted. The variants are for logs; clients only learn "invalid".
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWT")]
    Malformed,
    #[error("wrong token type")]
    WrongType,
    #[error("signed by a key this server does not publish")]
    UnknownKey,
    #[error("expired")]
    Expired,
    #[error("{0}")]
    Invalid(jsonwebtoken::errors::Error),
}

/// Seconds of clock skew allowed on `exp`.
const LEEWAY: u64 = 5;

/// The claims of one of our access tokens.
#[derive(Debug, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub jti: String,
    pub exp: u64,
    pub iat: u64,
    pub iss: String,
    /// A string or an array of strings.
    pub aud: serde_json::Value,
    /// Present in a user's tokens only (a client-credentials token has none).
    #[serde(default)]
    pub auth_time: Option<u64>,
    /// The refresh-token family issued with a user's token, if any.
    #[serde(default)]
    pub family: Option<String>,
}

impl AccessClaims {
    /// True when `aud` names `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        match &self.aud {
            serde_json::Value::String(one) => one == audience,
            serde_json::Value::Array(many) => many.iter().any(|a| a == audience),
            _ => false,
        }
    }
}

/// The claim of one of our ID tokens that logout reads from `id_token_hint`.
#[derive(Debug, Deserialize)]
pub struct IdHintClaims {
    pub aud: String,
}

fn verify<T: for<'de> Deserialize<'de>>(
    registry: &Registry,
    token: &str,
    typ: &str,
) -> Result<T, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.typ.as_deref() != Some(typ) {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let (key, algorithm) = registry
        .keys
        .verifier(&kid)
        .ok_or(VerifyError::UnknownKey)?;
    let mut validation = Validation::new(*algorithm);
    validation.set_issuer(&[&registry.issuer]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    jsonwebtoken::decode::<T>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(VerifyError::Invalid)
}

/// Verifies an access token (`typ: at+jwt`) live at `now` and returns its claims.
pub fn access_token(
    registry: &Registry,
    token: &str,
    now: u64,
) -> Result<AccessClaims, VerifyError> {
    let claims: AccessClaims = verify(registry, token, super::mint::ACCESS_TOKEN_TYP)?;
    if claims.exp.saturating_add(LEEWAY) < now {
        return Err(VerifyError::Expired);
    }
    Ok(claims)
}

/// Verifies an ID token passed back as `id_token_hint`; an expired one is accepted, as
/// OIDC RP-initiated logout allows.
pub fn id_token_hint(registry: &Registry, token: &str) -> Result<IdHintClaims, VerifyError> {
    verify(registry, token, "JWT")
}
