//! Failure throttling, counted in the store so every replica sees the same counts:
//! logins per username and per address, client authentications per client id and per
//! address.
//!
//! An attempt is counted before its secret is checked, in one atomic store operation
//! per counter, so a burst of parallel attempts cannot all read "below the limit" and
//! all reach argon2: past the limit, the attempt is refused before any hashing. A
//! success takes its attempt back (the address's count) or clears the count (the
//! account's), so only failures remain counted.
//!
//! The counters do not weigh the same. The address's count refuses (429) once it
//! passes the limit: it is the attacker's own. The account's count (a username, a
//! client id: anyone can name it) only slows attempts down, progressively and capped,
//! so that nobody can lock a user or a service out by failing on purpose; the price is
//! that guesses spread over many addresses are slowed, not stopped (README: Abuse).
//!
use crate::config::file::LimitsSection;
use crate::store::{Store, StoreError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Requests per address to the HTML endpoints, in a token bucket.
pub type PageLimiter = DefaultKeyedRateLimiter<IpAddr>;

/// The page limiter for `limits` (zero values are refused by validation; 1 is the floor).
pub fn page_limiter(limits: &LimitsSection) -> PageLimiter {
    let rate = NonZeroU32::new(limits.pages_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.pages_burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
}

/// What to do with an attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Go on after waiting this long.
    Delay(Duration),
    /// Refuse; the window ends after this long.
    Refuse(Duration),
}

/// The longest an attempt is slowed down.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// How much longer each attempt past the slow-down point waits.
const DELAY_STEP: Duration = Duration::from_millis(250);

/// The counters one attempt is judged by, and the limits that apply.
pub struct Policy {
    /// The account's counter (slows down), if the attempt names one.
    account: Option<String>,
    /// The address's counter (refuses).
    address: String,
    max: u32,
    window: Duration,
}

impl Policy {
    /// Logins as `username` from `address`.
    pub fn login(limits: &LimitsSection, username: &str, address: &str) -> Self {
        Self {
            account: Some(format!("login:user:{username}")),
            address: format!("login:addr:{address}"),
            max: limits.login_max_failures,
            window: limits.login_failure_window,
        }
    }

    /// Client authentications as `client_id` from `address`.
    pub fn client(limits: &LimitsSection, client_id: &str, address: &str) -> Self {
        Self {
            account: Some(format!("client:id:{client_id}")),
            address: format!("client:addr:{address}"),
            max: limits.token_max_failures,
            window: limits.token_failure_window,
        }
    }

    /// User codes typed at `/device` from `address`: counted with the address's failed
    /// logins (one budget for guessing either), and naming no account.
    pub fn user_code(limits: &LimitsSection, address: &str) -> Self {
        Self {
            account: None,
            address: format!("login:addr:{address}"),
            max: limits.login_max_failures,
            window: limits.login_failure_window,
        }
    }

    /// The verdict for an attempt counted as the `address`-th from its address and the
    /// `account`-th for its account, with `left` of the address's window to run
    /// (pure). Refused only past the limit of the address's count; slowed down once
    /// either count passes half the limit.
    pub fn verdict(&self, address: u32, account: u32, left: Duration) -> Verdict {
        if address > self.max {
            return Verdict::Refuse(left.max(Duration::from_secs(1)));
        }
        let slow_from = self.max.div_ceil(2);
        let worst = address.max(account);
        if worst > slow_from {
            Verdict::Delay((DELAY_STEP * (worst - slow_from)).min(MAX_DELAY))
        } else {
            Verdict::Allow
        }
    }
}

/// Counts an attempt (before its secret is checked) and judges it. The address is
/// counted first: an attempt it refuses leaves no account counter behind, so refused
/// attempts with made-up usernames store nothing.
pub async fn attempt(store: &dyn Store, policy: &Policy) -> Result<Verdict, StoreError> {
    let (address, left) = store.add_failure(&policy.address, policy.window).await?;
    if address > policy.max {
        return Ok(policy.verdict(address, 0, left));
    }
    let account = match &policy.account {
        Some(name) => store.add_failure(name, policy.window).await?.0,
        None => 0,
    };
    Ok(policy.verdict(address, account, left))
}

/// Counts an attempt in `shared` and judges it; when `shared` cannot be reached,
/// counts it in `local` instead (this process's memory) with a warning, so that what
/// needs no stored state (client credentials) keeps working and stays throttled, per
/// replica, while the shared store is down. Returns the store the attempt was counted
/// in, for [`succeeded`].
pub async fn attempt_or_local<'s>(
    shared: &'s dyn Store,
    local: &'s dyn Store,
    policy: &Policy,
) -> Result<(Verdict, &'s dyn Store), StoreError> {
    match attempt(shared, policy).await {
        Ok(verdict) => Ok((verdict, shared)),
        Err(e) => {
            warn_falling_back(&e);
            Ok((attempt(local, policy).await?, local))
        }
    }
}

/// The second (Unix time) of the last fallback warning: one a second at most, so an
/// outage under load does not flood the log.
static LAST_FALLBACK_WARNING: AtomicU64 = AtomicU64::new(0);

fn warn_falling_back(e: &StoreError) {
    metrics::counter!("gatehouse_failure_counting_local_total").increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if LAST_FALLBACK_WARNING.swap(now, Ordering::Relaxed) != now {
        tracing::warn!(event = "failure_counting_local", error = %e, "the store is unreachable: failed client authentications are counted in this replica's memory until it is back");
    }
}

/// After a success: the address's count takes the attempt back, the account's is
/// cleared.
pub async fn succeeded(store: &dyn Store, policy: &Policy) -> Result<(), StoreError> {
    store.take_back_failure(&policy.address).await?;
    match &policy.account {
        Some(name) => store.clear_failures(name).await,
        None => Ok(()),
    }
}

/// Waits out `verdict`'s delay; the refusal, if it is one.
pub async fn abide(verdict: Verdict) -> Option<Duration> {
    match verdict {
        Verdict::Allow => None,
        Verdict::Delay(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
        Verdict::Refuse(left) => Some(left),
    }
}

/// One "at most N per address, and at most M in all" rule over store counters: the
/// pending logins (`[limits] pending_per_address`, `pending_total`) and the device codes
/// waiting for a user, and anything later that an unauthenticated caller makes the
/// server keep. An entry is counted before it is stored, atomically (the store's
/// `add_failure`), and a refused one is taken back at once, so the counts are those of
/// the entries kept.
#[derive(Debug, Clone)]
pub(crate) struct Cap {
    /// The counters' prefix: `{name}:addr:{address}` and `{name}:all`.
    name: &'static str,
    per_address: u32,
    total: u32,
    /// How long an entry counts (the entries' own lifetime).
    window: Duration,
}

/// Why a [`Cap`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The address holds its share; its window ends after this long.
    Address(Duration),
    /// The server holds as many as it keeps in all.
    Total,
}

impl Cap {
    /// The rule named `name` (the counters' prefix), with its two limits and how long
    /// an entry counts.
    pub(crate) fn new(name: &'static str, per_address: u32, total: u32, window: Duration) -> Self {
        Self {
            name,
            per_address,
            total,
            window,
        }
    }

    fn address_counter(&self, address: &str) -> String {
        format!("{}:addr:{address}", self.name)
    }

    fn total_counter(&self) -> String {
        format!("{}:all", self.name)
    }

    /// Counts one entry of `address`: `Ok(Ok(()))` when it may be kept, `Ok(Err(full))`
    /// when a limit is reached (nothing stays counted for it).
    pub(crate) async fn admit(
        &self,
        store: &dyn Store,
        address: &str,
    ) -> Result<Result<(), Full>, StoreError> {
        let mine = self.address_counter(address);
        let (count, left) = store.add_failure(&mine, self.window).await?;
        if count > self.per_address {
            store.take_back_failure(&mine).await?;
            return Ok(Err(Full::Address(left)));
        }
        let all = self.total_counter();
        let (count, _) = store.add_failure(&all, self.window).await?;
        if count > self.total {
            store.take_back_failure(&mine).await?;
            store.take_back_failure(&all).await?;
            return Ok(Err(Full::Total));
        }
        Ok(Ok(()))
    }

    /// Takes back the entry of `address` that was answered (removed before it expired).
    pub(crate) async fn release(&self, store: &dyn Store, address: &str) -> Result<(), StoreError> {
        store
            .take_back_failure(&self.address_counter(address))
            .await?;
        store.take_back_failure(&self.total_counter()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_refused_past_the_limit_and_the_account_only_slowed() {
        let limits = LimitsSection {
            login_max_failures: 6,
            ..LimitsSection::default()
        };
        let policy = Policy::login(&limits, "u", "a");
        let left = Duration::from_secs(600);
        assert_eq!(policy.verdict(1, 1, left), Verdict::Allow);
        assert_eq!(policy.verdict(3, 3, left), Verdict::Allow);
        assert_eq!(
            policy.verdict(4, 1, left),
            Verdict::Delay(Duration::from_millis(250))
        );
        assert_eq!(
            policy.verdict(6, 6, left),
            Verdict::Delay(Duration::from_millis(750))
        );
        assert_eq!(policy.verdict(7, 1, left), Verdict::Refuse(left));
        assert_eq!(
            policy.verdict(1, 1000, left),
            Verdict::Delay(MAX_DELAY),
            "an account however failed is slowed, never refused"
        );
    }

    #[test]
    fn clients_follow_the_token_limits() {
        let limits = LimitsSection {
            token_max_failures: 4,
            ..LimitsSection::default()
        };
        let policy = Policy::client(&limits, "c", "a");
        assert_eq!(policy.verdict(2, 2, Duration::from_secs(9)), Verdict::Allow);
        assert_eq!(
            policy.verdict(5, 1, Duration::from_secs(9)),
            Verdict::Refuse(Duration::from_secs(9))
        );
    }

    fn memory() -> crate::store::memory::MemoryStore {
        crate::store::memory::MemoryStore::new(crate::clock::Clock::system())
    }

    #[tokio::test]
    async fn a_cap_refuses_past_the_address_share_and_the_total_and_counts_nothing_refused() {
        let store = memory();
        let cap = Cap::new("t", 2, 3, Duration::from_secs(60));
        assert_eq!(cap.admit(&store, "a").await.expect("store"), Ok(()));
        assert_eq!(cap.admit(&store, "a").await.expect("store"), Ok(()));
        assert!(matches!(
            cap.admit(&store, "a").await.expect("store"),
            Err(Full::Address(left)) if left <= Duration::from_secs(60) && left > Duration::ZERO
        ));
        assert_eq!(cap.admit(&store, "b").await.expect("store"), Ok(()));
        assert_eq!(
            cap.admit(&store, "c").await.expect("store"),
            Err(Full::Total),
            "three kept in all"
        );
        // The refused ones were not counted: one answered entry makes room again.
        cap.release(&store, "a").await.expect("store");
        assert_eq!(cap.admit(&store, "c").await.expect("store"), Ok(()));
        assert_eq!(
            cap.admit(&store, "c").await.expect("store"),
            Err(Full::Total)
        );
    }

    #[tokio::test]
    async fn caps_of_two_names_count_apart() {
        let store = memory();
        let pending = Cap::new("p", 1, 1, Duration::from_secs(60));
        let device = Cap::new("d", 1, 1, Duration::from_secs(60));
        assert_eq!(pending.admit(&store, "a").await.expect("store"), Ok(()));
        assert_eq!(device.admit(&store, "a").await.expect("store"), Ok(()));
        assert!(pending.admit(&store, "a").await.expect("store").is_err());
    }
}
