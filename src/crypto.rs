//! Hashing and randomness: SHA-256, random identifiers and secrets, and argon2id for
//! secrets and passwords. Small pure functions over aws-lc-rs and argon2.

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
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

/// `bytes` in lowercase hex: how a digest is shown (the config's SHA-256).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A fresh random identifier (128 bits, base64url): `jti` values, families, CSRF tokens.
pub fn random_id() -> Result<String, RngError> {
    random_b64::<16>()
}

/// A fresh random secret (256 bits, base64url): codes, refresh tokens, session ids.
pub(crate) fn random_secret() -> Result<String, RngError> {
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

/// An HMAC-SHA256 key held by the server (never sent anywhere but its store): what CSRF
/// tokens are made and checked with.
pub(crate) struct MacKey(aws_lc_rs::hmac::Key);

impl MacKey {
    /// The key made of `bytes` (replicas share it through the store).
    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            bytes,
        ))
    }

    /// The tag of `parts`, each length-prefixed so no two lists of parts collide.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
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
    pub(crate) fn token(&self, parts: &[&[u8]]) -> String {
        B64.encode(self.tag(parts))
    }

    /// True when `token` is the tag of `parts`, compared in constant time. A token that
    /// is not 32 bytes of base64url is refused before any comparison.
    pub(crate) fn verify_token(&self, parts: &[&[u8]], token: &str) -> bool {
        use subtle::ConstantTimeEq;
        match B64.decode(token) {
            Ok(given) if given.len() == 32 => bool::from(given.ct_eq(&self.tag(parts))),
            _ => false,
        }
    }
}

/// A valid argon2id hash (default parameters) that no password matches: verified
/// instead of a user's hash when the username is unknown, so both take the same time.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$26TcdsG5wC/tTpMYqojSkg$bSIfA831Q2G6Vf3SG9hl+mL/d7XKSnuEnHACnwBA4DI";

/// Verifies `password` against an argon2 PHC string (slow by design), in memory of its
/// own. The server uses [`verify_phc_in`] with reused memory instead.
pub fn verify_phc(phc: &str, password: &str) -> bool {
    verify_phc_in(phc, password, &mut Vec::new())
}

/// Verifies `password` against an argon2 PHC string in `memory`, which grows to the
/// hash's memory cost and is kept by the caller for the next run. Allocating the
/// 19 MiB of a default hash afresh on every run, on whichever blocking thread runs it,
/// let the allocator's per-thread arenas hold hundreds of MiB (bench/argon2_rss.sh);
/// reused buffers, one per concurrent run, hold exactly that much.
pub(crate) fn verify_phc_in(phc: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
        .is_ok_and(|()| bool::from(subtle::ConstantTimeEq::ct_eq(&*out, expected.as_bytes())))
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
    fn reused_memory_verifies_hashes_of_any_cost() {
        let mut memory = Vec::new();
        let default = hash_secret("pw").expect("hash");
        for _ in 0..2 {
            assert!(verify_phc_in(&default, "pw", &mut memory));
            assert!(!verify_phc_in(&default, "px", &mut memory));
        }
        assert_eq!(
            memory.len(),
            19 * 1024,
            "grown to the largest cost, no more"
        );
        let argon2i = argon2::PasswordHasher::hash_password(
            &Argon2::new(
                Algorithm::Argon2i,
                Version::V0x10,
                Params::new(64, 1, 1, None).expect("params"),
            ),
            b"pw",
        )
        .expect("hash")
        .to_string();
        assert!(verify_phc_in(&argon2i, "pw", &mut memory), "{argon2i}");
        assert!(!verify_phc_in(&argon2i, "px", &mut memory));
    }

    #[test]
    fn random_values_differ_and_have_their_length() {
        let (a, b) = (random_secret().expect("rng"), random_secret().expect("rng"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(random_id().expect("rng").len(), 22);
    }
}
