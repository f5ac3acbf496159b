//! Verifying tokens this server issued: JWS compact serialization, signature under a
//! published key (the `kid` picks it, and only that key's algorithm is accepted), `typ`,
//! issuer and expiry. Expiry is judged against the server's clock (passed in as `now`),
//! not the system's, so tests can move time.
//!
//! Only our own tokens are verified here, with keys parsed once per config generation
//! (`KeySet`); jsonwebtoken parses the public key again at every call, which cost a
//! third of introspection's time. No `crit`, no `jku`/`x5u`/`jwk` header is followed:
//! the kid names one of our keys or the token is refused.

use super::Issuer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
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
    #[error("the algorithm is not the key's")]
    WrongAlgorithm,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the claims are not ours: {0}")]
    Claims(String),
}

/// Longest token accepted: ours are well under 2 KiB.
const MAX_TOKEN: usize = 16 * 1024;

/// The protected header of one of our tokens.
#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    /// Critical extensions (RFC 7515 4.1.11): we issue none, so any is refused.
    crit: Option<serde_json::Value>,
}

/// The registered claims every one of our tokens has (`sub` and `iat` must be there).
#[derive(Deserialize)]
struct Registered {
    iss: String,
    #[serde(rename = "sub")]
    _sub: serde::de::IgnoredAny,
    #[serde(rename = "iat")]
    _iat: serde::de::IgnoredAny,
    exp: u64,
}

/// Seconds of clock skew allowed on `exp`.
const LEEWAY: u64 = 5;

/// The claims of one of our access tokens.
#[derive(Debug, Clone, Deserialize)]
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
    /// The fingerprint of the client secret it was issued under (base64url); absent
    /// for a public client's token.
    #[serde(default)]
    pub cred: Option<String>,
    /// The login session it was issued in, if it ends with one.
    #[serde(default)]
    pub sid: Option<String>,
    /// Every other claim: a federated user's claims (`email`, `name`, ...), which the
    /// config cannot give again.
    #[serde(flatten)]
    pub profile: serde_json::Map<String, serde_json::Value>,
    /// The DPoP key the token is bound to (RFC 9449 6.1), if any.
    #[serde(default)]
    pub cnf: Option<Confirmation>,
}

/// `cnf` of a DPoP-bound token.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint of the key.
    pub jkt: String,
}

impl AccessClaims {
    /// The thumbprint of the DPoP key the token is bound to, if any.
    pub(crate) fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }

    /// The client credential the token was issued under: `Ok(None)` for a public
    /// client's token, an error when the claim is not a fingerprint at all.
    pub(crate) fn credential(&self) -> Result<Option<crate::model::CredentialId>, VerifyError> {
        let Some(cred) = &self.cred else {
            return Ok(None);
        };
        let bad = || VerifyError::Claims("cred is not a credential fingerprint".into());
        let bytes = B64.decode(cred).map_err(|_| bad())?;
        bytes.try_into().map(Some).map_err(|_| bad())
    }

    /// True when `aud` names `audience`.
    pub(crate) fn has_audience(&self, audience: &str) -> bool {
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

/// Checks the signature, header and issuer of `token`; returns its claims and `exp`.
fn verify<T: for<'de> Deserialize<'de>>(
    issuer: &Issuer<'_>,
    token: &str,
    typ: &str,
) -> Result<(T, u64), VerifyError> {
    if token.len() > MAX_TOKEN {
        return Err(VerifyError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let decode = |part: &str| B64.decode(part).map_err(|_| VerifyError::Malformed);
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| VerifyError::Malformed)?;
    if header.typ.as_deref() != Some(typ) {
        return Err(VerifyError::WrongType);
    }
    if header.crit.is_some() {
        return Err(VerifyError::Malformed);
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let verifier = issuer.keys.verifier(&kid).ok_or(VerifyError::UnknownKey)?;
    if header.alg != verifier.algorithm.as_str() {
        return Err(VerifyError::WrongAlgorithm);
    }
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    verifier
        .key
        .verify_sig(signing_input.as_bytes(), &decode(signature_b64)?)
        .map_err(|_| VerifyError::BadSignature)?;
    let claims_json = decode(claims_b64)?;
    let registered: Registered =
        serde_json::from_slice(&claims_json).map_err(|e| VerifyError::Claims(e.to_string()))?;
    if registered.iss != issuer.issuer {
        return Err(VerifyError::Claims("another issuer".into()));
    }
    let claims =
        serde_json::from_slice(&claims_json).map_err(|e| VerifyError::Claims(e.to_string()))?;
    Ok((claims, registered.exp))
}

/// Verifies an access token (`typ: at+jwt`) live at `now` and returns its claims.
pub fn access_token(
    issuer: &Issuer<'_>,
    token: &str,
    now: u64,
) -> Result<AccessClaims, VerifyError> {
    let (claims, exp): (AccessClaims, u64) = verify(issuer, token, super::mint::ACCESS_TOKEN_TYP)?;
    if exp.saturating_add(LEEWAY) < now {
        return Err(VerifyError::Expired);
    }
    Ok(claims)
}

/// Verifies an ID token passed back as `id_token_hint`; an expired one is accepted, as
/// OIDC RP-initiated logout allows.
pub fn id_token_hint(issuer: &Issuer<'_>, token: &str) -> Result<IdHintClaims, VerifyError> {
    verify(issuer, token, "JWT").map(|(claims, _)| claims)
}

/// Most access tokens remembered as verified; past it the memory is started afresh.
const MAX_REMEMBERED: usize = 16 * 1024;

/// Access tokens that verified, by the SHA-256 of the token, with the config generation
/// that verified them. A resource server introspects the same token at every request it
/// serves; remembering the signature check makes that a hash and a lookup. Only the
/// signature, header and issuer are remembered: expiry is checked at every use, and
/// whether the token still stands (revoked, client reset, user removed) is asked of the
/// store every time, so a revocation takes effect at once. Only tokens we signed get
/// in, and the map is bounded.
#[derive(Default)]
pub struct VerifiedTokens(dashmap::DashMap<[u8; 32], (u64, AccessClaims)>);

impl VerifiedTokens {
    /// Like [`access_token`], remembering tokens that verify under `issuer`'s generation.
    pub(crate) fn access_token(
        &self,
        issuer: &Issuer<'_>,
        token: &str,
        now: u64,
    ) -> Result<AccessClaims, VerifyError> {
        let key = crate::crypto::sha256(token.as_bytes());
        let remembered = self
            .0
            .get(&key)
            .filter(|e| e.0 == issuer.generation)
            .map(|e| e.1.clone());
        let claims = match remembered {
            Some(claims) => claims,
            None => {
                let (claims, _): (AccessClaims, u64) =
                    verify(issuer, token, super::mint::ACCESS_TOKEN_TYP)?;
                if self.0.len() >= MAX_REMEMBERED {
                    self.0.clear();
                }
                self.0.insert(key, (issuer.generation, claims.clone()));
                claims
            }
        };
        if claims.exp.saturating_add(LEEWAY) < now {
            return Err(VerifyError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::Algorithm;
    use crate::jwt::keys::{KeySet, SigningKey};
    use crate::jwt::mint::{ACCESS_TOKEN_TYP, mint};
    use serde_json::json;
    use std::sync::Arc;

    const ISSUER: &str = "http://127.0.0.1:8080";

    /// A key set of `key` alone, leaked for the test's lifetime.
    fn keys(key: SigningKey) -> &'static KeySet {
        Box::leak(Box::new(KeySet::new(vec![Arc::new(key)])))
    }

    fn issuer(keys: &KeySet) -> Issuer<'_> {
        Issuer {
            issuer: ISSUER,
            keys,
            id_token_ttl: std::time::Duration::from_secs(600),
            generation: 1,
        }
    }

    fn claims() -> serde_json::Value {
        json!({"iss": ISSUER, "sub": "u", "client_id": "c", "aud": "c", "exp": 1000, "iat": 1, "jti": "j"})
    }

    fn b64(v: &serde_json::Value) -> String {
        B64.encode(v.to_string())
    }

    #[test]
    fn every_algorithm_verifies_and_tampering_fails() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            let (key, _) = SigningKey::generate(alg, None).expect("key");
            let token = mint(&key, ACCESS_TOKEN_TYP, &claims()).expect("mint");
            let registry = issuer(keys(key));
            let ok = access_token(&registry, &token, 1000).expect("verifies");
            assert_eq!((ok.sub.as_str(), ok.jti.as_str()), ("u", "j"), "{alg:?}");
            assert!(matches!(
                access_token(&registry, &token, 1006),
                Err(VerifyError::Expired)
            ));
            let (head, rest) = token.split_once('.').expect("jws");
            let (_, sig) = rest.split_once('.').expect("jws");
            let mut other = claims();
            other["sub"] = json!("admin");
            let forged = format!("{head}.{}.{sig}", b64(&other));
            assert!(matches!(
                access_token(&registry, &forged, 0),
                Err(VerifyError::BadSignature)
            ));
            assert!(
                id_token_hint(&registry, &token).is_err(),
                "an access token is not an ID token"
            );
        }
    }

    #[test]
    fn headers_we_never_issue_are_refused() {
        let (key, _) = SigningKey::generate(Algorithm::ES256, None).expect("key");
        let kid = key.kid().to_owned();
        let token = mint(&key, ACCESS_TOKEN_TYP, &claims()).expect("mint");
        let registry = issuer(keys(key));
        let body = token.split('.').nth(1).expect("payload").to_owned();
        let sig = token.split('.').nth(2).expect("signature").to_owned();
        let with_header = |h: serde_json::Value, sig: &str| format!("{}.{body}.{sig}", b64(&h));
        let cases = [
            (json!({"alg": "none", "typ": "at+jwt", "kid": kid}), ""),
            (
                json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
                sig.as_str(),
            ),
            (
                json!({"alg": "ES256", "typ": "at+jwt", "kid": "other"}),
                sig.as_str(),
            ),
            (json!({"alg": "ES256", "typ": "at+jwt"}), sig.as_str()),
            (
                json!({"alg": "ES256", "typ": "JWT", "kid": kid}),
                sig.as_str(),
            ),
            (
                json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "crit": ["x"]}),
                sig.as_str(),
            ),
        ];
        for (header, sig) in cases {
            assert!(
                access_token(&registry, &with_header(header.clone(), sig), 0).is_err(),
                "{header}"
            );
        }
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"a".repeat(MAX_TOKEN + 1)] {
            assert!(access_token(&registry, bad, 0).is_err(), "{bad:.20}");
        }
        let (key2, _) = SigningKey::generate(Algorithm::ES256, None).expect("key");
        let mut foreign = claims();
        foreign["iss"] = json!("https://evil.example");
        let other_issuer = mint(&key2, ACCESS_TOKEN_TYP, &foreign).expect("mint");
        let registry2 = issuer(keys(key2));
        assert!(
            access_token(&registry2, &token, 0).is_err(),
            "another server's key"
        );
        assert!(
            matches!(
                access_token(&registry2, &other_issuer, 0),
                Err(VerifyError::Claims(_))
            ),
            "another issuer"
        );
    }
}
