//! What every request handler shares: the current registry, the store, the clock, the
//! secret verifier, the page limiter, and the outcome of the last reload. Runtime state lives here; the registry holds only the config.

use crate::clock::Clock;
use crate::crypto::{MacKey, RngError, random_bytes};
use crate::jwt::verify::VerifiedTokens;
use crate::registry::Registry;
use crate::secret::SecretVerifier;
use crate::store::memory::MemoryStore;
use crate::store::{Store, StoreError};
use crate::throttle::{PageLimiter, page_limiter};
use crate::upstream::connect::Upstreams;
use crate::upstream::document::DocumentCache;
use crate::upstream::jwks::KeySets;
use crate::upstream::logout::LogoutPoster;
use actix_web::web::Bytes;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::sync::{Arc, Mutex};

/// Shared server state, held in `web::Data`.
pub struct AppState {
    /// The config generation now serving; swapped whole on reload.
    pub registry: ArcSwap<Registry>,
    /// The time every expiry is judged by.
    pub clock: Clock,
    pub verifier: SecretVerifier,
    /// The key CSRF tokens are made with: the store's shared secret, so a form served
    /// by one replica is accepted by another (random per process with the memory
    /// store). See [`AppState::form_key`] and [`AppState::share_form_key`].
    form_key: ArcSwap<([u8; 32], MacKey)>,
    /// Codes, refresh tokens, sessions and counters.
    pub store: Arc<dyn Store>,
    /// The store in use as it may be shown (a Redis URL without its password).
    pub store_in_use: String,
    /// Where client authentications are counted while `store` cannot be reached, so
    /// client credentials keep working (and stay throttled, per replica) in an outage.
    pub local_failures: Arc<MemoryStore>,
    /// Request rate per address on the HTML endpoints (limits read at start).
    pub pages: PageLimiter,
    /// Access tokens whose signature verified, so introspection pays it once per token.
    pub verified_tokens: VerifiedTokens,
    /// The discovery document, rendered once per generation by its module.
    pub discovery: PerGeneration<Bytes>,
    /// The error of the last reload attempt, cleared by the next good one.
    pub last_reload_error: Mutex<Option<String>>,
    /// Upstream providers' discovery and keys, and the outbound client.
    pub upstreams: Upstreams,
    /// Public keys fetched for clients (`jwks_uri`) and trusted workload issuers.
    pub key_sets: KeySets,
    /// The Client ID Metadata Documents read, until their lifetime ends.
    pub documents: DocumentCache,
    /// Sends back-channel logout tokens (bounded in time and number at once).
    pub logouts: LogoutPoster,
    /// The store's epoch as this replica last saw it (see [`StoreEpoch`]).
    epoch: ArcSwap<StoreEpoch>,
}

/// When the records in the store began: the denied token ids, revoked families and
/// not-befores that access tokens are judged by live there, so an access token issued
/// before the store lost its records (Redis restarted empty or flushed, a new store
/// file) cannot be judged and is refused (`standing::access`). The memory store's
/// epoch begins at 0: it starts empty by design, and refusing every token at each
/// restart would end what the config still allows. Kept in the store as
/// the shared secret [`EPOCH_KEY`]: its first 8 bytes are when it was made (Unix
/// seconds, big-endian), the rest random; whoever finds it missing makes a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreEpoch {
    held: [u8; 32],
    /// When the store's present records began (Unix seconds).
    pub(crate) since: u64,
    /// When this replica saw the store lose its records (a new epoch while it ran).
    pub(crate) lost_at: Option<u64>,
}

impl StoreEpoch {
    fn of(held: [u8; 32], lost_at: Option<u64>) -> Self {
        let mut since = [0; 8];
        since.copy_from_slice(&held[..8]);
        Self {
            held,
            since: u64::from_be_bytes(since),
            lost_at,
        }
    }

    /// A new epoch beginning at `now`, to offer the store.
    fn fresh(now: u64) -> Result<[u8; 32], RngError> {
        let mut held: [u8; 32] = random_bytes()?;
        held[..8].copy_from_slice(&now.to_be_bytes());
        Ok(held)
    }
}

/// Why the state could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    /// No random key could be made.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// The store did not give the shared CSRF key.
    #[error("reading the shared CSRF key: {0}")]
    Store(#[from] StoreError),
}

/// The name of the CSRF form key among the store's shared secrets.
const FORM_KEY: &str = "csrf-form-key";
/// The name of the store's epoch among its shared secrets.
const EPOCH_KEY: &str = "store-epoch";

impl AppState {
    /// State serving `registry` with `store` (whose shared CSRF key it reads, making it
    /// when it is the first); fails when no random key can be made or the store does
    /// not answer.
    pub(crate) async fn new(
        registry: Registry,
        store_in_use: String,
        clock: Clock,
        verifier: SecretVerifier,
        store: Arc<dyn Store>,
    ) -> Result<Self, StateError> {
        let form_key = store.shared_secret(FORM_KEY, random_bytes()?).await?;
        let fresh = StoreEpoch::fresh(clock.now())?;
        let mut epoch = StoreEpoch::of(store.shared_secret(EPOCH_KEY, fresh).await?, None);
        if store.kind() == "memory" {
            // Starting empty is what a memory store does, not a loss to notice: tokens
            // issued before a restart are judged by what the config says (a removed
            // client, `tokens_not_before`), as they always were with this store.
            epoch.since = 0;
        }
        Ok(Self {
            pages: page_limiter(&registry.limits),
            registry: ArcSwap::from_pointee(registry),
            local_failures: crate::store::memory(&clock),
            store_in_use,
            clock,
            verifier,
            form_key: ArcSwap::from_pointee((form_key, MacKey::from_bytes(&form_key))),
            store,
            verified_tokens: VerifiedTokens::default(),
            discovery: PerGeneration::default(),
            last_reload_error: Mutex::new(None),
            upstreams: Upstreams::default(),
            key_sets: KeySets::default(),
            documents: DocumentCache::default(),
            logouts: LogoutPoster::default(),
            epoch: ArcSwap::from_pointee(epoch),
        })
    }

    /// The store's epoch as last seen.
    pub(crate) fn store_epoch(&self) -> StoreEpoch {
        **self.epoch.load()
    }

    /// Asks the store for its epoch (offering a new one, made now, should it have none)
    /// and adopts the answer; an epoch other than the one seen means the store lost its
    /// records: logged as an error (`store_data_lost`) and counted. Run periodically and
    /// by `/readyz`; a store error changes nothing.
    pub(crate) async fn check_store_epoch(&self) -> Result<(), StoreError> {
        let seen = self.store_epoch();
        let fresh = StoreEpoch::fresh(self.clock.now()).map_err(|e| StoreError(e.to_string()))?;
        let held = self.store.shared_secret(EPOCH_KEY, fresh).await?;
        if held == seen.held {
            return Ok(());
        }
        let now = self.clock.now();
        let epoch = StoreEpoch::of(held, Some(now));
        tracing::error!(
            event = "store_data_lost",
            store = self.store.kind(),
            since = epoch.since,
            "the store lost its records (restarted empty or flushed): revoked tokens, \
             sessions, lockouts and pending logins recorded before are gone, and access \
             tokens issued before {} are refused",
            epoch.since
        );
        metrics::counter!("gatehouse_store_data_lost_total").increment(1);
        self.epoch.store(Arc::new(epoch));
        Ok(())
    }

    /// The key CSRF tokens are made and checked with now.
    pub(crate) fn form_key(&self) -> Arc<([u8; 32], MacKey)> {
        self.form_key.load_full()
    }

    /// Offers this replica's form key to the store again and adopts the one the store
    /// holds: after Redis restarted empty, the replicas that were running put their
    /// (common) key back, and a replica that started meanwhile with a key of its own
    /// comes round to the store's. Run periodically; a store error changes nothing.
    pub(crate) async fn share_form_key(&self) -> Result<(), StoreError> {
        let mine = self.form_key.load().0;
        let held = self.store.shared_secret(FORM_KEY, mine).await?;
        if held != mine {
            tracing::warn!(
                "the shared CSRF key changed in the store; forms shown before now must be sent again"
            );
            self.form_key
                .store(Arc::new((held, MacKey::from_bytes(&held))));
        }
        Ok(())
    }

    /// One consistent snapshot of the config, for the whole of a request.
    pub(crate) fn snapshot(&self) -> Arc<Registry> {
        self.registry.load_full()
    }
}

/// A value derived from one config generation and made on first use: the module that
/// owns it renders it, this only remembers it until the generation changes.
#[derive(Default)]
pub struct PerGeneration<T>(ArcSwapOption<(u64, T)>);

impl<T: Clone> PerGeneration<T> {
    /// The value for `registry`'s generation, made by `make` when there is none yet.
    pub(crate) fn get_or(&self, registry: &Registry, make: impl FnOnce() -> T) -> T {
        if let Some(held) = self.0.load().as_ref()
            && held.0 == registry.generation
        {
            return held.1.clone();
        }
        let value = make();
        self.0
            .store(Some(Arc::new((registry.generation, value.clone()))));
        value
    }
}
