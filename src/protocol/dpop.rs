//! DPoP proofs (RFC 9449 4.3), checked as pure functions: the caller gives the
//! request's method and URL, the time, the algorithms it accepts, the access token a
//! resource request carries and how to judge a nonce; the single use of `jti` is the
//! caller's (the store). A proof is a compact JWS with `typ` `dpop+jwt`, an
//! asymmetric `alg` of the list, and a public `jwk` in its header that verifies it;
//! its claims `jti`, `htm`, `htu` (compared without query and fragment), `iat` within
//! [`MAX_AGE`] (and at most [`LEEWAY`] ahead), `ath` at a resource, `nonce` when asked.

use crate::protocol::jwk::{self, Alg};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

/// Longest proof accepted (an RSA 8192 key in the header stays well under it).
pub(crate) const MAX_PROOF: usize = 8 * 1024;

/// How old a proof may be, in seconds: its `jti` is remembered this long (and
/// [`LEEWAY`]) to refuse a replay.
pub(crate) const MAX_AGE: u64 = 60;

/// How far ahead of the server's clock a proof's `iat` may be.
pub(crate) const LEEWAY: u64 = 5;

/// The JWS algorithms FAPI 2.0 allows (5.4.1): PS256, ES256 and EdDSA (Ed25519).
pub(crate) const FAPI2_ALGS: [&str; 4] = ["PS256", "ES256", "EdDSA", "Ed25519"];

/// Longest `jti` accepted.
const MAX_JTI: usize = 256;

/// Why a proof is refused: `invalid_dpop_proof`, except [`ProofError::Nonce`]
/// (`use_dpop_nonce`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProofError {
    #[error("the DPoP proof is not a compact JWS with JSON header and claims")]
    Malformed,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Type,
    #[error("the DPoP proof's alg is not one of {0}")]
    Algorithm(String),
    #[error("the DPoP proof's jwk is not a public key of its alg: {0}")]
    Key(String),
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    #[error("the DPoP proof has no usable {0}")]
    Claim(&'static str),
    #[error("the DPoP proof's htm is not this request's method")]
    Method,
    #[error("the DPoP proof's htu is not this endpoint")]
    Url,
    #[error("the DPoP proof is too old or from the future")]
    Time,
    #[error("the DPoP proof's ath is not the hash of the access token")]
    TokenHash,
    #[error("the DPoP proof has no valid nonce; use the one in the DPoP-Nonce header")]
    Nonce,
}

/// What a proof is checked against.
pub(crate) struct Expected<'a> {
    /// The request's method (`POST`).
    pub(crate) htm: &'a str,
    /// The endpoint's URL, as the issuer publishes it.
    pub(crate) htu: &'a str,
    /// The JWS algorithm names accepted.
    pub(crate) algs: &'a [&'a str],
    /// The server's time (Unix seconds).
    pub(crate) now: u64,
    /// At a resource: the access token the request carries (`ath`).
    pub(crate) access_token: Option<&'a str>,
    /// When nonces are required: whether a given nonce is good.
    pub(crate) nonce: Option<&'a dyn Fn(&str) -> bool>,
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proof {
    /// The RFC 7638 thumbprint of its key: what tokens are bound to (`cnf.jkt`).
    pub(crate) jkt: String,
    /// Its `jti`, for the caller to use once.
    pub(crate) jti: String,
    /// Its `iat`.
    pub(crate) iat: u64,
}

/// The `ath` of `access_token`: base64url of its SHA-256 (RFC 9449 4.2).
pub(crate) fn ath(access_token: &str) -> String {
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        access_token.as_bytes(),
    ))
}

/// `url` without its query and fragment, normalized by the URL parser (scheme and
/// host case, default port, dot segments); `None` when it is no absolute URL.
fn without_query(url: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(url).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url)
}

/// True when a proof's `htu` names `endpoint` (RFC 9449 4.3 step 9: query and
/// fragment ignored).
pub(crate) fn same_url(htu: &str, endpoint: &str) -> bool {
    match (without_query(htu), without_query(endpoint)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn decode_json(part: &str) -> Result<Map<String, Value>, ProofError> {
    let bytes = B64.decode(part).map_err(|_| ProofError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| ProofError::Malformed)
}

/// Checks `proof` against `expected`.
pub(crate) fn check(proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let header = decode_json(h)?;
    let claims = decode_json(c)?;
    let signature = B64.decode(s).map_err(|_| ProofError::Malformed)?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(ProofError::Type);
    }
    if header.contains_key("crit") {
        return Err(ProofError::Malformed);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|name| expected.algs.contains(name))
        .and_then(Alg::from_name)
        .ok_or_else(|| ProofError::Algorithm(expected.algs.join(", ")))?;
    let key = header
        .get("jwk")
        .ok_or_else(|| ProofError::Key("no jwk".into()))
        .and_then(|k| jwk::parse_key(k, "jwk").map_err(|e| ProofError::Key(e.to_string())))?;
    if !key.fits(alg) {
        return Err(ProofError::Key("the key does not fit the alg".into()));
    }
    if !key.verifies(alg, format!("{h}.{c}").as_bytes(), &signature) {
        return Err(ProofError::Signature);
    }
    check_claims(&claims, expected).map(|(jti, iat)| Proof {
        jkt: key.thumbprint,
        jti,
        iat,
    })
}

/// The claims of a proof whose signature verified: its `jti` and `iat`.
fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<(String, u64), ProofError> {
    let text = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or(ProofError::Claim(name))
    };
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI {
        return Err(ProofError::Claim("jti"));
    }
    if text("htm")? != expected.htm {
        return Err(ProofError::Method);
    }
    if !same_url(text("htu")?, expected.htu) {
        return Err(ProofError::Url);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(ProofError::Claim("iat"))?;
    if iat > expected.now + LEEWAY || expected.now.saturating_sub(iat) > MAX_AGE {
        return Err(ProofError::Time);
    }
    if let Some(token) = expected.access_token
        && claims.get("ath").and_then(Value::as_str) != Some(ath(token).as_str())
    {
        return Err(ProofError::TokenHash);
    }
    if let Some(good) = expected.nonce
        && !claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(good)
    {
        return Err(ProofError::Nonce);
    }
    Ok((jti.to_owned(), iat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const HTU: &str = "https://id.example/token";
    const ALGS: [&str; 3] = ["ES256", "PS256", "EdDSA"];

    fn key() -> EcdsaKeyPair {
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key")
    }

    fn public(key: &EcdsaKeyPair) -> Value {
        let point = key.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])})
    }

    fn sign(key: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = key
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signs");
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    fn proof(key: &EcdsaKeyPair, claims: Value) -> String {
        sign(
            key,
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public(key)}),
            claims,
        )
    }

    fn expected(now: u64) -> Expected<'static> {
        Expected {
            htm: "POST",
            htu: HTU,
            algs: &ALGS,
            now,
            access_token: None,
            nonce: None,
        }
    }

    fn claims() -> Value {
        json!({"jti": "j1", "htm": "POST", "htu": HTU, "iat": 1000})
    }

    #[test]
    fn a_good_proof_gives_its_key_thumbprint() {
        let k = key();
        let p = check(&proof(&k, claims()), &expected(1000)).expect("good");
        let again = jwk::parse_key(&public(&k), "k").expect("parses");
        assert_eq!(p.jkt, again.thumbprint);
        assert_eq!((p.jti.as_str(), p.iat), ("j1", 1000));
    }

    #[test]
    fn htu_ignores_query_and_fragment_but_not_the_path() {
        let k = key();
        let mut c = claims();
        c["htu"] = json!("https://ID.example:443/token?x=1#f");
        assert!(check(&proof(&k, c.clone()), &expected(1000)).is_ok());
        c["htu"] = json!("https://id.example/userinfo");
        assert_eq!(check(&proof(&k, c), &expected(1000)), Err(ProofError::Url));
        let mut c = claims();
        c["htm"] = json!("GET");
        assert_eq!(
            check(&proof(&k, c), &expected(1000)),
            Err(ProofError::Method)
        );
    }

    #[test]
    fn too_old_or_ahead_is_refused() {
        let k = key();
        let p = proof(&k, claims());
        assert!(check(&p, &expected(1000 + MAX_AGE)).is_ok());
        assert_eq!(check(&p, &expected(1001 + MAX_AGE)), Err(ProofError::Time));
        assert_eq!(
            check(&p, &expected(1000 - LEEWAY - 1)),
            Err(ProofError::Time)
        );
    }

    #[test]
    fn header_rules() {
        let k = key();
        let wrong_typ = sign(
            &k,
            json!({"typ": "JWT", "alg": "ES256", "jwk": public(&k)}),
            claims(),
        );
        assert_eq!(check(&wrong_typ, &expected(1000)), Err(ProofError::Type));
        let none = sign(
            &k,
            json!({"typ": "dpop+jwt", "alg": "none", "jwk": public(&k)}),
            claims(),
        );
        assert!(matches!(
            check(&none, &expected(1000)),
            Err(ProofError::Algorithm(_))
        ));
        let mut private = public(&k);
        private["d"] = json!("AAAA");
        let private = sign(
            &k,
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
            claims(),
        );
        assert!(matches!(
            check(&private, &expected(1000)),
            Err(ProofError::Key(_))
        ));
        let other = key();
        let foreign = sign(
            &k,
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public(&other)}),
            claims(),
        );
        assert_eq!(check(&foreign, &expected(1000)), Err(ProofError::Signature));
        let only_ps = Expected {
            algs: &["PS256"],
            ..expected(1000)
        };
        assert!(matches!(
            check(&proof(&k, claims()), &only_ps),
            Err(ProofError::Algorithm(_))
        ));
        assert_eq!(check("a.b", &expected(1000)), Err(ProofError::Malformed));
    }

    #[test]
    fn ath_and_nonce() {
        let k = key();
        let mut c = claims();
        c["ath"] = json!(ath("token-1"));
        c["nonce"] = json!("n1");
        let p = proof(&k, c);
        let good = |n: &str| n == "n1";
        let bad = |n: &str| n == "n2";
        fn at<'a>(token: &'a str, nonce: Option<&'a dyn Fn(&str) -> bool>) -> Expected<'a> {
            Expected {
                access_token: Some(token),
                nonce,
                ..expected(1000)
            }
        }
        assert!(check(&p, &at("token-1", Some(&good))).is_ok());
        assert_eq!(check(&p, &at("token-2", None)), Err(ProofError::TokenHash));
        assert_eq!(
            check(&p, &at("token-1", Some(&bad))),
            Err(ProofError::Nonce)
        );
        let no_nonce = proof(&k, claims());
        assert_eq!(
            check(
                &no_nonce,
                &Expected {
                    nonce: Some(&good),
                    ..expected(1000)
                }
            ),
            Err(ProofError::Nonce)
        );
    }
}
