//! Signing keys: parsed once from PKCS#8 PEM, held for the life of a registry, published
//! as a JWKS. Holding parsed key pairs avoids re-parsing a key for every token signed.

use crate::config::file::Algorithm;
use actix_web::web::Bytes;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM file: {0}")]
    Pem(String),
    #[error("PEM block is {0:?}; expected \"PRIVATE KEY\" (PKCS#8, as `gatehouse keygen` writes)")]
    PemTag(String),
    #[error("the key is not a valid {alg} private key ({reason})")]
    Rejected { alg: &'static str, reason: String },
    #[error("RSA keys must be at least 2048 bits, this one is {0}")]
    RsaTooSmall(usize),
    #[error("key generation failed")]
    Generate,
    #[error("the JWS header does not serialize: {0}")]
    Header(#[from] serde_json::Error),
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// The `typ` of an RFC 9068 access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// A parsed private key with its `kid`, ready to sign, plus its public JWK.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    pair: Pair,
    jwk: Value,
    /// The encoded header of the access tokens it signs, made once: every access
    /// token repeats it.
    access_header: String,
}

/// A JWS header as this server writes it.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// The base64url JWS header naming `algorithm`, `typ` and `kid`.
fn encoded_header(algorithm: Algorithm, typ: &str, kid: &str) -> Result<String, serde_json::Error> {
    let header = serde_json::to_vec(&Header {
        alg: algorithm.as_str(),
        typ,
        kid,
    })?;
    Ok(B64.encode(header))
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Two keys are the same key when their kid, algorithm and public half agree.
impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.algorithm == other.algorithm && self.jwk == other.jwk
    }
}

impl SigningKey {
    /// Parses a PKCS#8 PEM private key for `algorithm`; `kid` defaults to the RFC 7638
    /// thumbprint of the public key.
    pub(crate) fn from_pem(
        pem_text: &str,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Self, KeyError> {
        let block = pem::parse(pem_text).map_err(|e| KeyError::Pem(e.to_string()))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(KeyError::PemTag(block.tag().to_owned()));
        }
        Self::from_pkcs8(block.contents(), algorithm, kid)
    }

    /// Parses PKCS#8 DER for `algorithm`.
    pub(crate) fn from_pkcs8(
        der: &[u8],
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Self, KeyError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::Rejected {
            alg: algorithm.as_str(),
            reason: e.to_string(),
        };
        let pair = match algorithm {
            Algorithm::ES256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            Algorithm::EdDSA => Pair::EdDsa(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
                let bits = pair.public_modulus_len() * 8;
                if bits < 2048 {
                    return Err(KeyError::RsaTooSmall(bits));
                }
                Pair::Rs256(pair)
            }
        };
        let public = public_members(&pair);
        let kid = kid.map_or_else(|| thumbprint(&public), str::to_owned);
        let mut jwk = public;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(algorithm.as_str());
        jwk["use"] = json!("sig");
        Ok(Self {
            access_header: encoded_header(algorithm, ACCESS_TOKEN_TYP, &kid)?,
            kid,
            algorithm,
            pair,
            jwk,
        })
    }

    /// Makes a new random key; returns it with its PKCS#8 PEM encoding.
    pub fn generate(algorithm: Algorithm, kid: Option<&str>) -> Result<(Self, String), KeyError> {
        let rng = SystemRandom::new();
        let der: Vec<u8> = match algorithm {
            Algorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
            Algorithm::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
        };
        let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", der.clone()));
        Ok((Self::from_pkcs8(&der, algorithm, kid)?, pem_text))
    }

    /// The JWK `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The base64url JWS header of a token of type `typ` this key signs.
    pub(crate) fn header(&self, typ: &str) -> Result<Cow<'_, str>, serde_json::Error> {
        if typ == ACCESS_TOKEN_TYP {
            return Ok(Cow::Borrowed(&self.access_header));
        }
        encoded_header(self.algorithm, typ, &self.kid).map(Cow::Owned)
    }

    /// The JOSE algorithm this key signs with.
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public JWK (kid, alg, use and the public members; never a private one).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `message` (the JWS signing input) and returns the raw JWS signature.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es256(k) => Ok(k
                .sign(&rng, message)
                .map_err(|_| SignError)?
                .as_ref()
                .to_vec()),
            Pair::EdDsa(k) => Ok(k.sign(message).as_ref().to_vec()),
            Pair::Rs256(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| SignError)?;
                Ok(sig)
            }
        }
    }
}

/// An Ed25519 key's PKCS#8 PEM as version 1 (the seed alone), which every library
/// imports (Node's WebCrypto refuses the version 2 `generate` writes, with the public
/// key inside); `None` for anything but such a version 2 Ed25519 key.
pub fn ed25519_pkcs8_v1(pem_text: &str) -> Option<String> {
    const V2_HEAD: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let block = pem::parse(pem_text).ok()?;
    let der = block.contents();
    if der.len() < 48 || der[..16] != V2_HEAD {
        return None;
    }
    let mut v1 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    v1.extend_from_slice(&der[16..48]);
    Some(pem::encode(&pem::Pem::new("PRIVATE KEY", v1)))
}

/// Signing failed inside the crypto library (in practice: the system RNG failed).
#[derive(Debug, thiserror::Error)]
#[error("signing failed")]
pub struct SignError;

/// The required public members of the key's JWK, as RFC 7638 lists them.
fn public_members(pair: &Pair) -> Value {
    match pair {
        Pair::Es256(k) => {
            // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
            let point = k.public_key().as_ref();
            let (x, y) = point[1..].split_at(32);
            json!({"crv": "P-256", "kty": "EC", "x": B64.encode(x), "y": B64.encode(y)})
        }
        Pair::EdDsa(k) => {
            json!({"crv": "Ed25519", "kty": "OKP", "x": B64.encode(k.public_key().as_ref())})
        }
        Pair::Rs256(k) => {
            let public = k.public_key();
            json!({
                "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
                "kty": "RSA",
                "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
            })
        }
    }
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(members: &Value) -> String {
    // serde_json's map is ordered by key, and `to_string` adds no whitespace.
    let canonical = members.to_string();
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// A key that verifies tokens signed under one `kid`: parsed once per config
/// generation (parsing an EC point costs about as much as a verification), with the
/// only JOSE algorithm accepted for it.
pub struct Verifier {
    pub key: ParsedPublicKey,
    pub algorithm: Algorithm,
}

/// The keys of one config generation: the one that signs, every one that verifies,
/// and the JWKS document that publishes them, rendered once.
pub struct KeySet {
    /// Signing keys; the first signs, all are published.
    keys: Vec<Arc<SigningKey>>,
    verifiers: HashMap<String, Verifier>,
    jwks: Bytes,
}

impl KeySet {
    /// The set of `keys` (the signing one first).
    pub(crate) fn new(keys: Vec<Arc<SigningKey>>) -> Self {
        let jwks = json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()});
        let verifiers = keys
            .iter()
            .filter_map(|k| verifier_of(k).map(|v| (k.kid().to_owned(), v)))
            .collect();
        Self {
            keys,
            verifiers,
            jwks: Bytes::from(jwks.to_string()),
        }
    }

    /// The key that signs new tokens.
    pub fn signing(&self) -> Option<&SigningKey> {
        self.keys.first().map(Arc::as_ref)
    }

    /// Every published key.
    pub(crate) fn all(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The verifier of tokens signed under `kid`.
    pub fn verifier(&self, kid: &str) -> Option<&Verifier> {
        self.verifiers.get(kid)
    }

    /// The JWKS document (RFC 7517), as served at `/jwks`.
    pub(crate) fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The signing algorithms in use, sorted and without repeats.
    pub(crate) fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&str> = self.keys.iter().map(|k| k.algorithm().as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }
}

/// The verifier of tokens `key` signs.
fn verifier_of(key: &SigningKey) -> Option<Verifier> {
    let parsed = match &key.pair {
        Pair::Es256(k) => ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k.public_key().as_ref()),
        Pair::EdDsa(k) => ParsedPublicKey::new(&ED25519, k.public_key().as_ref()),
        Pair::Rs256(k) => {
            ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, k.public_key().as_ref())
        }
    };
    Some(Verifier {
        key: parsed.ok()?,
        algorithm: key.algorithm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ed25519_key_written_as_version_1_is_the_same_key() {
        let (key, pem_text) = SigningKey::generate(Algorithm::EdDSA, None).expect("generate");
        let v1 = ed25519_pkcs8_v1(&pem_text).expect("a version 2 Ed25519 key");
        let again = SigningKey::from_pem(&v1, Algorithm::EdDSA, None).expect("parse v1");
        assert_eq!(again.public_jwk(), key.public_jwk());
    }

    #[test]
    fn generated_keys_round_trip_through_pem() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            let (key, pem_text) = SigningKey::generate(alg, None).expect("generate");
            let again = SigningKey::from_pem(&pem_text, alg, None).expect("parse");
            assert_eq!(key, again, "{alg:?}");
            assert_eq!(key.kid().len(), 43, "thumbprint is a base64url SHA-256");
            assert!(key.public_jwk().get("d").is_none(), "no private member");
            assert!(!key.sign(b"msg").expect("sign").is_empty());
        }
    }

    #[test]
    fn key_must_match_algorithm() {
        let (_, ec_pem) = SigningKey::generate(Algorithm::ES256, None).expect("generate");
        assert!(SigningKey::from_pem(&ec_pem, Algorithm::RS256, None).is_err());
        assert!(SigningKey::from_pem(&ec_pem, Algorithm::EdDSA, None).is_err());
        assert!(SigningKey::from_pem("garbage", Algorithm::ES256, None).is_err());
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // The RSA key of RFC 7638 section 3.1 and its published thumbprint.
        let members = json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        });
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
