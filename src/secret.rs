//! Client secret verification: constant-time comparison, argon2id off the async workers
//! with bounded concurrency, and a per-generation cache of successful verifications so a
//! service asking for a token per request pays the slow hash once.

use crate::registry::{Client, ClientSecret};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref());
    out
}

/// Client id to the SHA-256 of the secret that last verified against its hash.
/// Lives in a `Registry`, so a reload (or a rotated secret) starts it empty.
#[derive(Default)]
pub struct VerifiedSecrets(RwLock<HashMap<String, [u8; 32]>>);

impl VerifiedSecrets {
    fn contains(&self, client_id: &str, digest: &[u8; 32]) -> bool {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(client_id)
            .is_some_and(|d| bool::from(d.ct_eq(digest)))
    }

    /// Keeps `client_id`'s entry from the generation before, when its secret is unchanged.
    pub fn carry_from(&self, previous: &VerifiedSecrets, client_id: &str) {
        let before = previous
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .copied();
        if let Some(digest) = before {
            self.insert(client_id, digest);
        }
    }

    fn insert(&self, client_id: &str, digest: [u8; 32]) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.insert(client_id.to_owned(), digest);
    }
}

/// Runs argon2 verifications on the blocking pool, at most `permits` at a time.
#[derive(Clone)]
pub struct SecretVerifier {
    permits: Arc<Semaphore>,
}

impl SecretVerifier {
    /// A verifier allowing `concurrency` argon2 runs at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// True when `presented` is `client`'s secret. `cache` is the registry's.
    pub async fn verify(&self, cache: &VerifiedSecrets, client: &Client, presented: &str) -> bool {
        let digest = sha256(presented.as_bytes());
        match &client.secret {
            None => false,
            Some(ClientSecret::Digest(expected)) => bool::from(expected.ct_eq(&digest)),
            Some(ClientSecret::Hash(phc)) => {
                if cache.contains(&client.id, &digest) {
                    return true;
                }
                let Ok(_permit) = self.permits.acquire().await else {
                    return false;
                };
                // Requests that queued for a permit with the same secret (after a
                // restart, say) find it verified by the first one: one hash, not many.
                if cache.contains(&client.id, &digest) {
                    return true;
                }
                let ok = argon2_off_thread(phc, presented).await;
                if ok {
                    cache.insert(&client.id, digest);
                }
                ok
            }
        }
    }
}

impl SecretVerifier {
    /// Verifies `password` against an argon2 PHC string on the blocking pool, waiting
    /// for a permit first. Nothing is cached: used for user passwords.
    pub async fn verify_password(&self, phc: &str, password: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        argon2_off_thread(phc, password).await
    }
}

/// Runs `verify_phc` on the blocking pool (the caller holds a permit).
async fn argon2_off_thread(phc: &str, password: &str) -> bool {
    let phc = phc.to_owned();
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || verify_phc(&phc, &password))
        .await
        .unwrap_or(false)
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
    }
}
