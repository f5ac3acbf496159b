//! Client secrets at run time: constant-time comparison, argon2id off the async workers
//! with bounded concurrency, and a cache of successful verifications so a service asking
//! for a token per request pays the slow hash once: runtime state, kept beside the
//! registry, not in it.

use crate::crypto::{DECOY_HASH, sha256, verify_phc_in};
use crate::model::{Client, ClientAuth, ClientSecret, CredentialId};
use crate::registry::Registry;
use argon2::Block;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Per client id: the credential a secret was verified against, and the SHA-256 of
/// that secret. An entry counts only while the client's credential is the same, so a
/// rotated secret needs no cache flush.
#[derive(Default)]
struct VerifiedSecrets(RwLock<HashMap<String, (CredentialId, [u8; 32])>>);

impl VerifiedSecrets {
    fn contains(&self, client: &Client, digest: &[u8; 32]) -> bool {
        let Some(credential) = client.credential_id() else {
            return false;
        };
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(&client.id)
            .is_some_and(|(c, d)| *c == credential && bool::from(d.ct_eq(digest)))
    }

    fn insert(&self, client: &Client, digest: [u8; 32]) {
        if let Some(credential) = client.credential_id() {
            let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
            map.insert(client.id.clone(), (credential, digest));
        }
    }

    /// Forgets clients that `registry` no longer has, or whose credential changed.
    fn retain_current(&self, registry: &Registry) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|id, (credential, _)| {
            registry
                .client(id)
                .is_some_and(|c| c.credential_id() == Some(*credential))
        });
    }
}

/// Verifies client secrets and passwords: argon2 on the blocking pool, at most
/// `concurrency` at a time, with successful client verifications cached.
#[derive(Clone)]
pub struct SecretVerifier {
    permits: Arc<Semaphore>,
    verified: Arc<VerifiedSecrets>,
    /// How many argon2 verifications ran: what failure throttling must bound.
    hashes: Arc<AtomicU64>,
    /// argon2 memory, reused: one buffer per run in flight (at most `concurrency`).
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl SecretVerifier {
    /// A verifier allowing `concurrency` argon2 runs at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            verified: Arc::default(),
            hashes: Arc::default(),
            memory: Arc::default(),
        }
    }

    /// True when `presented` is a secret of `client` that this process has verified
    /// already: a constant-time comparison of digests, no argon2. Only the secret's
    /// holder can present it, so throttling never needs to refuse it.
    pub fn known_good(&self, client: &Client, presented: &str) -> bool {
        matches!(client.auth, ClientAuth::SharedSecret(ClientSecret::Hash(_)))
            && self
                .verified
                .contains(client, &sha256(presented.as_bytes()))
    }

    /// True when `presented` is `client`'s secret. A wrong secret always costs one
    /// argon2 run (the client's hash, or the decoy for a secret kept as a digest), so a
    /// failure takes as long whatever the client and however its secret is kept.
    pub async fn verify(&self, client: &Client, presented: &str) -> bool {
        let digest = sha256(presented.as_bytes());
        match &client.auth {
            ClientAuth::None => false,
            ClientAuth::SharedSecret(ClientSecret::Digest(expected)) => {
                let ok = bool::from(expected.ct_eq(&digest));
                if !ok {
                    self.decoy(presented).await;
                }
                ok
            }
            ClientAuth::SharedSecret(ClientSecret::Hash(phc)) => {
                if self.verified.contains(client, &digest) {
                    return true;
                }
                let Ok(_permit) = self.permits.acquire().await else {
                    return false;
                };
                // Requests that queued for a permit with the same secret (after a
                // restart, say) find it verified by the first one: one hash, not many.
                if self.verified.contains(client, &digest) {
                    return true;
                }
                let ok = self.argon2_off_thread(phc, presented).await;
                if ok {
                    self.verified.insert(client, digest);
                }
                ok
            }
        }
    }

    /// Verifies `password` against an argon2 PHC string on the blocking pool, waiting
    /// for a permit first. Nothing is cached: used for user passwords.
    pub async fn verify_password(&self, phc: &str, password: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        self.argon2_off_thread(phc, password).await
    }

    /// Spends one argon2 run on the decoy hash, which `presented` never matches: for a
    /// client id that does not exist, so that it answers after the same work as one
    /// that does.
    pub async fn decoy(&self, presented: &str) {
        self.verify_password(DECOY_HASH, presented).await;
    }

    /// How many argon2 verifications this verifier has run.
    pub fn hashes_run(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// Drops cached verifications that `registry` makes stale (after a reload).
    pub fn retain_current(&self, registry: &Registry) {
        self.verified.retain_current(registry);
    }

    /// Runs argon2 on the blocking pool (the caller holds a permit) in a buffer taken
    /// from the pool and given back after, so memory is allocated once per permit
    /// rather than once per run.
    async fn argon2_off_thread(&self, phc: &str, password: &str) -> bool {
        self.hashes.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("gatehouse_argon2_verifications_total").increment(1);
        let phc = phc.to_owned();
        let password = password.to_owned();
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let ok = verify_phc_in(&phc, &password, &mut memory);
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
            ok
        })
        .await
        .unwrap_or(false)
    }
}
