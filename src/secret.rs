//! Client secrets at run time: constant-time comparison, argon2id off the async workers
//! with bounded concurrency, and a cache of successful verifications so a service asking
//! for a token per request pays the slow hash once: runtime state, kept beside the
//! registry, not in it.

use crate::crypto::{DECOY_HASH, sha256, verify_phc_in};
use crate::model::{Client, ClientSecret, CredentialId, SecretKind};
use crate::registry::Registry;
use argon2::Block;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Per listed secret (its fingerprint): the SHA-256 of a presented secret verified
/// against it, and the client that listed it then. Whether a secret verifies against a
/// PHC hash does not depend on the client that lists it, so the fingerprint alone is
/// the key (no client id to copy per lookup). An entry counts only while that client
/// still lists that secret, so a rotation needs no cache flush, and a client
/// presenting its old and its new secret during a rotation keeps both verified. At
/// most one entry per listed secret, and only a secret's holder can add one.
#[derive(Default)]
struct VerifiedSecrets(RwLock<HashMap<CredentialId, Verified>>);

/// A presented secret's digest, verified against a listed secret of `client`.
struct Verified {
    client: String,
    digest: [u8; 32],
}

impl VerifiedSecrets {
    /// The fingerprint of the listed secret `digest` was verified against, if any.
    fn find(&self, client: &Client, digest: &[u8; 32]) -> Option<CredentialId> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        for secret in client.secrets() {
            let id = secret.fingerprint();
            let hit = map
                .get(&id)
                .is_some_and(|v| bool::from(v.digest.ct_eq(digest)));
            if hit && found.is_none() {
                found = Some(id);
            }
        }
        found
    }

    fn insert(&self, client: &Client, credential: CredentialId, digest: [u8; 32]) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        let client = client.id.clone();
        map.insert(credential, Verified { client, digest });
    }

    /// Forgets clients that `registry` no longer has, and secrets they no longer list.
    fn retain_current(&self, registry: &Registry) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|credential, v| {
            registry
                .client(&v.client)
                .is_some_and(|c| c.accepts_credential(Some(credential)))
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
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            verified: Arc::default(),
            hashes: Arc::default(),
            memory: Arc::default(),
        }
    }

    /// The fingerprint of the listed secret of `client` that `presented` is, when this
    /// process has verified it already: constant-time comparisons of digests, no
    /// argon2. Only the secret's holder can present it, so throttling never needs to
    /// refuse it.
    pub(crate) fn known_good(&self, client: &Client, presented: &str) -> Option<CredentialId> {
        let hashed = client
            .secrets()
            .iter()
            .any(|s| matches!(s.kind(), SecretKind::Hash(_)));
        if !hashed {
            return None;
        }
        self.verified.find(client, &sha256(presented.as_bytes()))
    }

    /// The fingerprint of the listed secret of `client` that `presented` is, or `None`.
    /// Digests are all compared in constant time; PHC hashes are tried newest first,
    /// one argon2 run each. A wrong secret costs one argon2 run per listed hash (the
    /// decoy when the client lists none), so a failure takes as long whatever secret
    /// was presented; a rotation's two hashes make it two.
    pub(crate) async fn verify(&self, client: &Client, presented: &str) -> Option<CredentialId> {
        let digest = sha256(presented.as_bytes());
        let secrets = client.secrets();
        let mut matched = None;
        for secret in secrets {
            if let SecretKind::Digest(expected) = secret.kind()
                && bool::from(expected.ct_eq(&digest))
                && matched.is_none()
            {
                matched = Some(secret.fingerprint());
            }
        }
        if matched.is_some() {
            return matched;
        }
        let hashes: Vec<&ClientSecret> = secrets
            .iter()
            .filter(|s| matches!(s.kind(), SecretKind::Hash(_)))
            .collect();
        if hashes.is_empty() {
            self.decoy(presented).await;
            return None;
        }
        if let Some(id) = self.verified.find(client, &digest) {
            return Some(id);
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return None;
        };
        // Requests that queued for a permit with the same secret (after a restart,
        // say) find it verified by the first one: one hash, not many.
        if let Some(id) = self.verified.find(client, &digest) {
            return Some(id);
        }
        for secret in hashes {
            if let SecretKind::Hash(phc) = secret.kind()
                && self.argon2_off_thread(phc, presented).await
            {
                let id = secret.fingerprint();
                self.verified.insert(client, id, digest);
                return Some(id);
            }
        }
        None
    }

    /// Verifies `password` against an argon2 PHC string on the blocking pool, waiting
    /// for a permit first. Nothing is cached: used for user passwords.
    pub(crate) async fn verify_password(&self, phc: &str, password: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        self.argon2_off_thread(phc, password).await
    }

    /// Spends one argon2 run on the decoy hash, which `presented` never matches: for a
    /// client id that does not exist, so that it answers after the same work as one
    /// that does.
    pub(crate) async fn decoy(&self, presented: &str) {
        self.verify_password(DECOY_HASH, presented).await;
    }

    /// How many argon2 verifications this verifier has run.
    pub fn hashes_run(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// Drops cached verifications that `registry` makes stale (after a reload).
    pub(crate) fn retain_current(&self, registry: &Registry) {
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
