//! A DPoP client's key and its proofs (RFC 9449 4), made here with aws-lc-rs,
//! independently of the server's code: the tests sign what a client would, and also
//! what a client should not (another `htu`, an old `iat`).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// One P-256 key a client proves possession of.
pub struct DpopKey {
    key: EcdsaKeyPair,
    counter: AtomicU64,
}

impl Default for DpopKey {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopKey {
    /// A fresh key.
    pub fn new() -> Self {
        Self {
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a key"),
            counter: AtomicU64::new(0),
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])})
    }

    /// The RFC 7638 thumbprint of the public key, computed here.
    pub fn jkt(&self) -> String {
        let jwk = self.jwk();
        let members = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            jwk["x"], jwk["y"]
        );
        B64.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, members.as_bytes()).as_ref(),
        )
    }

    /// `claims` signed with `header` by this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signs");
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    /// The claims of a fresh proof for `htm` `htu` at `iat` (a new `jti` each time).
    pub fn claims(&self, htm: &str, htu: &str, iat: u64) -> Value {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        json!({"jti": format!("jti-{n}-{}", &self.jkt()[..8]), "htm": htm, "htu": htu, "iat": iat})
    }

    /// A proof with `claims`.
    pub fn proof_with(&self, claims: &Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        self.sign(&header, claims)
    }

    /// A good proof for `htm` `htu` at `iat`.
    pub fn proof(&self, htm: &str, htu: &str, iat: u64) -> String {
        self.proof_with(&self.claims(htm, htu, iat))
    }

    /// A good proof at a resource, carrying the access token's hash (`ath`).
    pub fn proof_for_token(&self, htm: &str, htu: &str, iat: u64, token: &str) -> String {
        let mut claims = self.claims(htm, htu, iat);
        claims["ath"] = json!(ath(token));
        self.proof_with(&claims)
    }
}

/// `ath`: base64url of the SHA-256 of the access token.
pub fn ath(token: &str) -> String {
    B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}
