//! Hashing and randomness: SHA-256, random identifiers and secrets, and argon2id for
//! secrets and passwords. Small pure functions over aws-lc-rs and argon2.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// The system random number generator failed: nothing random can be made.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RngError;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref());
    out
}

/// A fresh random identifier (128 bits, base64url): `jti` values, families, CSRF tokens.
pub fn random_id() -> Result<String, RngError> {
    random_b64::<16>()
}

/// A fresh random secret (256 bits, base64url): codes, refresh tokens, session ids.
pub fn random_secret() -> Result<String, RngError> {
    random_b64::<32>()
}

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RngError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RngError)?;
    Ok(bytes)
}

fn random_b64<const N: usize>() -> Result<String, RngError> {
    Ok(B64.encode(random_bytes::<N>()?))
}

/// A random HMAC-SHA256 key held by this process (it never leaves it): what CSRF tokens
/// are made and checked with.
pub struct MacKey(aws_lc_rs::hmac::Key);

impl MacKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, RngError> {
        Ok(Self(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &random_bytes::<32>()?,
        )))
    }

    /// The tag of `parts`, each length-prefixed so no two lists of parts collide.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut context = aws_lc_rs::hmac::Context::with_key(&self.0);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut out = [0; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }

    /// The tag of `parts`, base64url: the form of a token.
    pub fn token(&self, parts: &[&[u8]]) -> String {
        B64.encode(self.tag(parts))
    }

    /// True when `token` is the tag of `parts`, compared in constant time. A token that
    /// is not 32 bytes of base64url is refused before any comparison.
    pub fn verify_token(&self, parts: &[&[u8]], token: &str) -> bool {
        use subtle::ConstantTimeEq;
        match B64.decode(token) {
            Ok(given) if given.len() == 32 => bool::from(given.ct_eq(&self.tag(parts))),
            _ => false,
        }
    }
}

/// A valid argon2id hash (default parameters) that no password matches: verified
/// instead of a user's hash when the username is unknown, so both take the same time.
pub const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$26TcdsG5wC/tTpMYqojSkg$bSIfA831Q2G6Vf3SG9hl+mL/d7XKSnuEnHACnwBA4DI";

/// Verifies `password` against an argon2 PHC string (slow by design).
pub fn verify_phc(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Hashes `secret` as an argon2id PHC string with a random salt and default parameters.
pub fn hash_secret(secret: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::PasswordHasher;
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash_secret("s3cret").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_phc(&phc, "s3cret"));
        assert!(!verify_phc(&phc, "s3cret "));
        assert!(!verify_phc("garbage", "s3cret"));
        assert!(!verify_phc(DECOY_HASH, ""));
    }

    #[test]
    fn random_values_differ_and_have_their_length() {
        let (a, b) = (random_secret().expect("rng"), random_secret().expect("rng"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(random_id().expect("rng").len(), 22);
    }
}
