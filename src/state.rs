//! What every request handler shares: the current registry, the store, the clock, the
//! secret verifier, the page limiter, and the outcome of the last reload. Runtime state lives here; the registry holds only the config.

use crate::clock::Clock;
use crate::crypto::{MacKey, RngError};
use crate::jwt::verify::VerifiedTokens;
use crate::registry::Registry;
use crate::secret::SecretVerifier;
use crate::store::Store;
use crate::throttle::{PageLimiter, page_limiter};
use crate::upstream::connect::Upstreams;
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
    /// The key CSRF tokens are made with: random per process (README: replicas
    /// behind a load balancer need sticky sessions until it is shared).
    pub form_key: MacKey,
    /// Codes, refresh tokens, sessions and counters.
    pub store: Arc<dyn Store>,
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
}

impl AppState {
    /// State serving `registry`; fails only when no random key can be made.
    pub fn new(
        registry: Registry,
        clock: Clock,
        verifier: SecretVerifier,
        store: Arc<dyn Store>,
    ) -> Result<Self, RngError> {
        Ok(Self {
            pages: page_limiter(&registry.limits),
            registry: ArcSwap::from_pointee(registry),
            clock,
            verifier,
            form_key: MacKey::generate()?,
            store,
            verified_tokens: VerifiedTokens::default(),
            discovery: PerGeneration::default(),
            last_reload_error: Mutex::new(None),
            upstreams: Upstreams::default(),
        })
    }

    /// One consistent snapshot of the config, for the whole of a request.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.registry.load_full()
    }
}

/// A value derived from one config generation and made on first use: the module that
/// owns it renders it, this only remembers it until the generation changes.
#[derive(Default)]
pub struct PerGeneration<T>(ArcSwapOption<(u64, T)>);

impl<T: Clone> PerGeneration<T> {
    /// The value for `registry`'s generation, made by `make` when there is none yet.
    pub fn get_or(&self, registry: &Registry, make: impl FnOnce() -> T) -> T {
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
