//! What every request handler shares: the current registry, the secret verifier, and
//! the outcome of the last reload.

use crate::registry::Registry;
use crate::secret::SecretVerifier;
use crate::store::Store;
use crate::web::flood::{PageLimiter, page_limiter};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

/// Shared server state, held in `web::Data`.
pub struct AppState {
    /// The config generation now serving; swapped whole on reload.
    pub registry: ArcSwap<Registry>,
    pub verifier: SecretVerifier,
    /// Codes, refresh tokens, sessions and counters.
    pub store: Arc<dyn Store>,
    /// Request rate per address on the HTML endpoints (limits read at start).
    pub pages: PageLimiter,
    /// The error of the last reload attempt, cleared by the next good one.
    pub last_reload_error: Mutex<Option<String>>,
}

impl AppState {
    /// State serving `registry`.
    pub fn new(registry: Registry, verifier: SecretVerifier, store: Arc<dyn Store>) -> Self {
        Self {
            pages: page_limiter(&registry.limits),
            registry: ArcSwap::from_pointee(registry),
            verifier,
            store,
            last_reload_error: Mutex::new(None),
        }
    }

    /// One consistent snapshot of the config, for the whole of a request.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.registry.load_full()
    }
}
