//! The authorization requests that wait for the user: kept in the store ([`Pending`])
//! under a random id that the page's form (or, for an upstream login, the `state`)
//! carries, with the step each waits for, for `[session] pending_ttl` at most. How many
//! wait is bounded per address and in all (one [`Cap`] named `pending`:
//! `[limits] pending_per_address`, `pending_total`).
//!
//! Every operation answers a typed [`Refusal`]; the pages (`web::interaction`) turn it
//! into a page. Nothing here knows a page.

use crate::crypto::{hex, random_secret, sha256};
use crate::oauth::authorize_request::AuthRequest;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::throttle::{Cap, Full};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a pending request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Awaiting {
    /// The user to log in (the login page was shown).
    Login,
    /// The user to prove a second factor (the second-factor page was shown).
    SecondFactor,
    /// The user to allow or deny the client (the consent page was shown).
    Consent,
    /// An upstream provider's callback (the browser was sent there).
    Upstream,
}

/// A login sent to an upstream provider, kept with its request until the callback.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct UpstreamAttempt {
    /// The provider the browser was sent to: the callback's path must name it.
    pub(crate) provider: String,
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
    /// The CSRF tag of the browser's cookie and the `state`: the callback must come
    /// back to the browser that started it.
    pub(crate) browser: String,
}

impl std::fmt::Debug for UpstreamAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAttempt")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// An authorization request kept while the user logs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// The validated request, as `/authorize` received it.
    pub(crate) request: AuthRequest,
    /// The step it waits for: only that step's form may take it further.
    pub(crate) awaiting: Awaiting,
    /// When the request was made (Unix seconds): a fresh login it asked for must be at
    /// or after this second.
    pub(crate) created_at: u64,
    /// The address that made it, whose pending count it is in.
    pub(crate) address: String,
    /// While `awaiting` an upstream callback: what the callback checks and needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream: Option<UpstreamAttempt>,
    /// After an upstream login with `refresh.mode = "revalidate"`: the sealed upstream
    /// token, handed to the one code this request gets (so one refresh family holds
    /// it; the session never does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_token: Option<String>,
    /// How many times this request has sent the browser to a provider: the policy
    /// stops sending it after `policy::MAX_UPSTREAM_TRIPS` (no redirect loop).
    #[serde(default)]
    pub(crate) upstream_trips: u8,
}

/// A pending request as read back from the store, with its id.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// The random id the page's form carries (the store key is its SHA-256).
    pub(crate) id: String,
    /// What was kept under it.
    pub(crate) pending: Pending,
}

/// Why a pending request could not be kept, found or taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The store (or the random source) failed: nothing was half done.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The address holds as many pending requests as it may; its window ends after
    /// this long.
    #[error("too many pending requests from this address")]
    AddressFull(Duration),
    /// The server holds as many pending requests as it keeps.
    #[error("too many pending requests in all")]
    TotalFull,
    /// The request is no longer pending: expired, or answered already.
    #[error("the request is no longer pending")]
    Gone,
    /// An upstream callback names no request waiting for a provider.
    #[error("no sign-in waits for this state")]
    UnknownState,
    /// An upstream callback came back on another provider's path.
    #[error("the callback is not the provider's")]
    ProviderMismatch,
    /// An upstream callback came back to another browser than the one that left.
    #[error("the callback came to another browser")]
    OtherBrowser,
    /// An upstream callback's `state` was used already.
    #[error("the state was used already")]
    Replayed,
}

impl Refusal {
    /// The `reason` of the audit event.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "store_unavailable",
            Self::AddressFull(_) => "pending_per_address",
            Self::TotalFull => "pending_total",
            Self::Gone => "expired_request",
            Self::UnknownState => "unknown_state",
            Self::ProviderMismatch => "provider_mismatch",
            Self::OtherBrowser => "other_browser",
            Self::Replayed => "replayed_state",
        }
    }

    fn unavailable(e: impl std::fmt::Display) -> Self {
        Self::Unavailable(e.to_string())
    }

    /// Logs and counts a refusal that is a limit (the pending caps); the others are no
    /// event of their own.
    pub(crate) fn note_limit(&self, remote: impl std::fmt::Display) {
        let metric = match self {
            Self::AddressFull(_) => "pending",
            Self::TotalFull => "pending_total",
            _ => return,
        };
        tracing::warn!(event = "rate_limited", limit = self.reason(), remote = %remote);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => metric).increment(1);
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Self::unavailable(e)
    }
}

/// The pending requests of one registry generation: the store, the clock's now, the
/// lifetime and the cap.
pub(crate) struct Pendings<'a> {
    store: &'a dyn Store,
    now: u64,
    ttl: Duration,
    cap: Cap,
}

impl<'a> Pendings<'a> {
    /// The pending requests as `registry` bounds them, kept in `state`'s store.
    pub(crate) fn of(state: &'a AppState, registry: &Registry) -> Self {
        let ttl = registry.session.pending_ttl;
        let limits = &registry.limits;
        let cap = Cap::new(
            "pending",
            limits.pending_per_address,
            limits.pending_total,
            ttl,
        );
        Self::new(state.store.as_ref(), state.clock.now(), ttl, cap)
    }

    /// The pending requests in `store` at `now`, each kept `ttl` at most, within `cap`.
    pub(crate) fn new(store: &'a dyn Store, now: u64, ttl: Duration, cap: Cap) -> Self {
        Self {
            store,
            now,
            ttl,
            cap,
        }
    }

    /// Keeps `request` waiting for `awaiting` and returns its id: a new entry (within
    /// the cap) when it is not kept yet, else the kept one, updated when it now waits
    /// for another step.
    pub(crate) async fn remember(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        awaiting: Awaiting,
        address: &str,
    ) -> Result<String, Refusal> {
        match kept {
            Some(k) if k.pending.awaiting == awaiting => Ok(k.id),
            Some(mut k) => {
                k.pending.awaiting = awaiting;
                self.keep(&k).await?;
                Ok(k.id)
            }
            None => {
                let kept = self.admit(request, awaiting, address).await?;
                self.keep(&kept).await?;
                Ok(kept.id)
            }
        }
    }

    /// A new pending request under a fresh id, counted against the cap (not yet
    /// written: [`Pendings::keep`] does).
    pub(crate) async fn admit(
        &self,
        request: &AuthRequest,
        awaiting: Awaiting,
        address: &str,
    ) -> Result<Kept, Refusal> {
        match self.cap.admit(self.store, address).await? {
            Ok(()) => {}
            Err(Full::Address(left)) => return Err(Refusal::AddressFull(left)),
            Err(Full::Total) => return Err(Refusal::TotalFull),
        }
        let id = random_secret().map_err(Refusal::unavailable)?;
        Ok(Kept {
            id,
            pending: Pending {
                request: request.clone(),
                awaiting,
                created_at: self.now,
                address: address.to_owned(),
                upstream: None,
                upstream_token: None,
                upstream_trips: 0,
            },
        })
    }

    /// `kept` (or a new entry for `request`) moved under a new id, waiting for the
    /// callback of `attempt`'s provider: the id is the `state` sent up. The old entry
    /// is removed; the counts stay as they are (moved, not answered).
    pub(crate) async fn send_upstream(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        address: &str,
        id: String,
        attempt: UpstreamAttempt,
    ) -> Result<(), Refusal> {
        let (old, mut pending) = match kept {
            Some(k) => (Some(k.id), k.pending),
            None => (
                None,
                self.admit(request, Awaiting::Upstream, address)
                    .await?
                    .pending,
            ),
        };
        pending.request = request.clone();
        pending.awaiting = Awaiting::Upstream;
        pending.upstream = Some(attempt);
        pending.upstream_token = None;
        pending.upstream_trips = pending.upstream_trips.saturating_add(1);
        self.keep(&Kept { id, pending }).await?;
        if let Some(old) = old {
            self.store.delete_pending(sha256(old.as_bytes())).await?;
        }
        Ok(())
    }

    /// Writes `kept` to the store for what is left of its lifetime.
    pub(crate) async fn keep(&self, kept: &Kept) -> Result<(), Refusal> {
        let age = self.now.saturating_sub(kept.pending.created_at);
        let left = self
            .ttl
            .saturating_sub(Duration::from_secs(age))
            .max(Duration::from_secs(1));
        let json = serde_json::to_string(&kept.pending).map_err(Refusal::unavailable)?;
        self.store
            .put_pending(sha256(kept.id.as_bytes()), json, left)
            .await?;
        Ok(())
    }

    /// The pending request `id` names, if it is still live.
    pub(crate) async fn recall(&self, id: Option<&str>) -> Result<Option<Kept>, Refusal> {
        let Some(id) = id else {
            return Ok(None);
        };
        let json = self.store.get_pending(sha256(id.as_bytes())).await?;
        Ok(json
            .and_then(|j| serde_json::from_str::<Pending>(&j).ok())
            .map(|pending| Kept {
                id: id.to_owned(),
                pending,
            }))
    }

    /// Takes a pending request to answer it: removes it from the store and from the
    /// counts. Only one answer gets it: a second post of the same form (a double
    /// click, a replay, another replica at the same moment) finds it gone
    /// ([`Refusal::Gone`]), so one pending login yields at most one code or one denial.
    pub(crate) async fn forget(&self, kept: &Kept) -> Result<(), Refusal> {
        if !self
            .store
            .delete_pending(sha256(kept.id.as_bytes()))
            .await?
        {
            return Err(Refusal::Gone);
        }
        self.cap.release(self.store, &kept.pending.address).await?;
        Ok(())
    }

    /// Claims the request an upstream callback's `state` names, once: it must wait
    /// for `provider`'s callback, come back to the browser that left (`same_browser`
    /// checks the kept tag), and its `state` is used once (an atomic count in the
    /// store: of two racing callbacks only the first goes on). The claimed request
    /// waits for a login again (so a failure after it shows the login page); the
    /// attempt is handed back.
    pub(crate) async fn claim_callback(
        &self,
        state_id: &str,
        provider: &str,
        same_browser: impl FnOnce(&str) -> bool,
    ) -> Result<(Kept, UpstreamAttempt), Refusal> {
        let mut kept = self
            .recall(Some(state_id))
            .await?
            .ok_or(Refusal::UnknownState)?;
        let attempt = match kept.pending.upstream.take() {
            Some(a) if kept.pending.awaiting == Awaiting::Upstream => a,
            _ => return Err(Refusal::UnknownState),
        };
        if attempt.provider != provider {
            return Err(Refusal::ProviderMismatch);
        }
        if !same_browser(&attempt.browser) {
            return Err(Refusal::OtherBrowser);
        }
        let counter = format!("upstream-state:{}", hex(&sha256(state_id.as_bytes())));
        let (uses, _) = self.store.add_failure(&counter, self.ttl).await?;
        if uses > 1 {
            return Err(Refusal::Replayed);
        }
        kept.pending.awaiting = Awaiting::Login;
        self.keep(&kept).await?;
        Ok((kept, attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::memory::MemoryStore;

    const TTL: Duration = Duration::from_secs(600);

    fn store() -> (MemoryStore, Clock) {
        let clock = Clock::system();
        (MemoryStore::new(clock.clone()), clock)
    }

    fn pendings<'a>(store: &'a MemoryStore, clock: &Clock, per: u32, total: u32) -> Pendings<'a> {
        Pendings::new(
            store,
            clock.now(),
            TTL,
            Cap::new("pending", per, total, TTL),
        )
    }

    fn request(client: &str) -> AuthRequest {
        AuthRequest {
            client_id: client.to_owned(),
            ..AuthRequest::default()
        }
    }

    fn attempt(provider: &str, browser: &str) -> UpstreamAttempt {
        UpstreamAttempt {
            provider: provider.to_owned(),
            nonce: "n".to_owned(),
            pkce_verifier: "v".to_owned(),
            browser: browser.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_remembered_request_is_recalled_until_it_expires() {
        let (store, clock) = store();
        let p = pendings(&store, &clock, 5, 5);
        let id = p
            .remember(&request("web"), None, Awaiting::Login, "a")
            .await
            .expect("kept");
        let kept = p.recall(Some(&id)).await.expect("store").expect("live");
        assert_eq!(kept.pending.request.client_id, "web");
        assert_eq!(kept.pending.awaiting, Awaiting::Login);
        assert_eq!(kept.pending.address, "a");
        // Remembered again for another step: the same entry, now waiting for that.
        let again = p
            .remember(&request("web"), Some(kept), Awaiting::Consent, "a")
            .await
            .expect("kept");
        assert_eq!(again, id);
        let kept = p.recall(Some(&id)).await.expect("store").expect("live");
        assert_eq!(kept.pending.awaiting, Awaiting::Consent);
        assert!(p.recall(Some("other")).await.expect("store").is_none());
        assert!(p.recall(None).await.expect("store").is_none());
        clock.advance(TTL + Duration::from_secs(1));
        assert!(
            p.recall(Some(&id)).await.expect("store").is_none(),
            "expired"
        );
    }

    #[tokio::test]
    async fn the_cap_bounds_each_address_and_the_total_and_an_answer_frees_a_place() {
        let (store, clock) = store();
        let p = pendings(&store, &clock, 2, 3);
        let first = p
            .remember(&request("web"), None, Awaiting::Login, "a")
            .await
            .expect("1");
        p.remember(&request("web"), None, Awaiting::Login, "a")
            .await
            .expect("2");
        assert!(matches!(
            p.remember(&request("web"), None, Awaiting::Login, "a")
                .await,
            Err(Refusal::AddressFull(_))
        ));
        p.remember(&request("web"), None, Awaiting::Login, "b")
            .await
            .expect("3");
        assert!(matches!(
            p.remember(&request("web"), None, Awaiting::Login, "c")
                .await,
            Err(Refusal::TotalFull)
        ));
        let kept = p.recall(Some(&first)).await.expect("store").expect("live");
        p.forget(&kept).await.expect("taken");
        assert!(
            matches!(p.forget(&kept).await, Err(Refusal::Gone)),
            "taken once"
        );
        p.remember(&request("web"), None, Awaiting::Login, "c")
            .await
            .expect("a place again");
    }

    #[tokio::test]
    async fn sending_upstream_moves_the_request_under_the_state_and_counts_the_trip() {
        let (store, clock) = store();
        let p = pendings(&store, &clock, 1, 10);
        let id = p
            .remember(&request("web"), None, Awaiting::Login, "a")
            .await
            .expect("kept");
        let kept = p.recall(Some(&id)).await.expect("store");
        p.send_upstream(
            &request("web"),
            kept,
            "a",
            "state-1".to_owned(),
            attempt("corp", "tag"),
        )
        .await
        .expect("moved");
        assert!(
            p.recall(Some(&id)).await.expect("store").is_none(),
            "the old id is gone"
        );
        let moved = p
            .recall(Some("state-1"))
            .await
            .expect("store")
            .expect("moved");
        assert_eq!(moved.pending.awaiting, Awaiting::Upstream);
        assert_eq!(moved.pending.upstream_trips, 1);
        assert!(
            matches!(
                p.remember(&request("web"), None, Awaiting::Login, "a")
                    .await,
                Err(Refusal::AddressFull(_))
            ),
            "moved, not answered: still counted"
        );
    }

    #[tokio::test]
    async fn a_callback_is_claimed_once_by_its_provider_and_browser() {
        let (store, clock) = store();
        let p = pendings(&store, &clock, 5, 5);
        p.send_upstream(
            &request("web"),
            None,
            "a",
            "s".to_owned(),
            attempt("corp", "tag"),
        )
        .await
        .expect("sent");
        assert!(matches!(
            p.claim_callback("nope", "corp", |_| true).await,
            Err(Refusal::UnknownState)
        ));
        assert!(matches!(
            p.claim_callback("s", "other", |_| true).await,
            Err(Refusal::ProviderMismatch)
        ));
        assert!(matches!(
            p.claim_callback("s", "corp", |t| t == "else").await,
            Err(Refusal::OtherBrowser)
        ));
        let (kept, attempt) = p
            .claim_callback("s", "corp", |t| t == "tag")
            .await
            .expect("claimed");
        assert_eq!(attempt.provider, "corp");
        assert_eq!(kept.pending.awaiting, Awaiting::Login);
        assert!(kept.pending.upstream.is_none());
        // Put back as waiting for the provider (a racing reader's view): the state is spent.
        let mut raced = kept.clone();
        raced.pending.awaiting = Awaiting::Upstream;
        raced.pending.upstream = Some(attempt);
        p.keep(&raced).await.expect("kept");
        assert!(matches!(
            p.claim_callback("s", "corp", |_| true).await,
            Err(Refusal::Replayed)
        ));
    }
}
