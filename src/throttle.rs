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
//! that guesses spread over many addresses are slowed, not stopped (docs/operations.md,
//! "Abuse and bad input").
//!
//! Every per-address counter counts the caller's network ([`network`]), and a name an
//! attacker chooses is stored as a fixed-length hash of it.

mod cap;
mod network;

pub(crate) use cap::{Cap, Full};
pub(crate) use network::{Network, network};

use crate::config::file::LimitsSection;
use crate::store::{Store, StoreError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use network::name_key;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Requests per network to the HTML endpoints, in a token bucket.
pub(crate) type PageLimiter = DefaultKeyedRateLimiter<Network>;

/// The page limiter for `limits` (zero values are refused by validation; 1 is the floor).
pub(crate) fn page_limiter(limits: &LimitsSection) -> PageLimiter {
    let rate = NonZeroU32::new(limits.pages_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.pages_burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
}

/// What to do with an attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
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
pub(crate) struct Policy {
    /// The account's counter (slows down), if the attempt names one.
    account: Option<String>,
    /// The network's counter (refuses).
    address: String,
    max: u32,
    window: Duration,
    /// The server-wide counter and its limit, if the attempts have one (refuses
    /// everyone past it; a success takes its attempt back).
    total: Option<(&'static str, u32)>,
}

impl Policy {
    /// Logins as `username` from `address` (counted for its network).
    pub(crate) fn login(limits: &LimitsSection, username: &str, address: IpAddr) -> Self {
        Self {
            account: Some(format!("login:user:{}", name_key(username))),
            address: format!("login:addr:{}", network(limits, address)),
            max: limits.login_max_failures,
            window: limits.login_failure_window,
            total: None,
        }
    }

    /// A passkey login from `address`: no username is typed, so only the network's
    /// counter, the one password logins count against.
    pub(crate) fn passkey(limits: &LimitsSection, address: IpAddr) -> Self {
        Self {
            account: None,
            address: format!("login:addr:{}", network(limits, address)),
            max: limits.login_max_failures,
            window: limits.login_failure_window,
            total: None,
        }
    }

    /// Client authentications as `client_id` from `address` (counted for its network).
    pub(crate) fn client(limits: &LimitsSection, client_id: &str, address: IpAddr) -> Self {
        Self {
            account: Some(format!("client:id:{}", name_key(client_id))),
            address: format!("client:addr:{}", network(limits, address)),
            max: limits.token_max_failures,
            window: limits.token_failure_window,
            total: None,
        }
    }

    /// Second-factor codes of the user `user_id` typed from `address`: counted with
    /// its network's failed logins (one budget for guessing either), under the login
    /// limits; the account's count is the codes' own, so a right password does not
    /// clear the wrong codes before it (only a right code does).
    pub(crate) fn second_factor(limits: &LimitsSection, user_id: &str, address: IpAddr) -> Self {
        Self {
            account: Some(format!("login:factor:{}", name_key(user_id))),
            address: format!("login:addr:{}", network(limits, address)),
            max: limits.login_max_failures,
            window: limits.login_failure_window,
            total: None,
        }
    }

    /// User codes typed at `/device` from `address`: counted with its network's failed
    /// logins (one budget for guessing either), naming no account, and within the
    /// server-wide `[limits] user_code_max_failures_total`.
    pub(crate) fn user_code(limits: &LimitsSection, address: IpAddr) -> Self {
        Self {
            account: None,
            address: format!("login:addr:{}", network(limits, address)),
            max: limits.login_max_failures,
            window: limits.login_failure_window,
            total: Some(("user_code:all", limits.user_code_max_failures_total)),
        }
    }

    /// The verdict for an attempt counted as the `address`-th from its address and the
    /// `account`-th for its account, with `left` of the address's window to run
    /// (pure). Refused only past the limit of the address's count; slowed down once
    /// either count passes half the limit.
    pub(crate) fn verdict(&self, address: u32, account: u32, left: Duration) -> Verdict {
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
/// attempts with made-up usernames store nothing. Then the server-wide count, if any:
/// past its limit the attempt is refused and taken back from both counts (it was not
/// judged), so the budget stays spent until its window ends.
pub(crate) async fn attempt(store: &dyn Store, policy: &Policy) -> Result<Verdict, StoreError> {
    let (address, left) = store.add_failure(&policy.address, policy.window).await?;
    if address > policy.max {
        return Ok(policy.verdict(address, 0, left));
    }
    if let Some((name, max)) = policy.total {
        let (all, left) = store.add_failure(name, policy.window).await?;
        if all > max {
            store.take_back_failure(name).await?;
            store.take_back_failure(&policy.address).await?;
            tracing::warn!(
                event = "rate_limited",
                limit = name,
                "the server-wide budget of wrong attempts is spent"
            );
            return Ok(Verdict::Refuse(left.max(Duration::from_secs(1))));
        }
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
pub(crate) async fn attempt_or_local<'s>(
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

/// After a success: the address's count (and the server-wide one) takes the attempt
/// back, the account's is cleared.
pub(crate) async fn succeeded(store: &dyn Store, policy: &Policy) -> Result<(), StoreError> {
    store.take_back_failure(&policy.address).await?;
    if let Some((name, _)) = policy.total {
        store.take_back_failure(name).await?;
    }
    match &policy.account {
        Some(name) => store.clear_failures(name).await,
        None => Ok(()),
    }
}

/// Waits out `verdict`'s delay; the refusal, if it is one.
pub(crate) async fn abide(verdict: Verdict) -> Option<Duration> {
    match verdict {
        Verdict::Allow => None,
        Verdict::Delay(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
        Verdict::Refuse(left) => Some(left),
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
        let policy = Policy::login(&limits, "u", IpAddr::from([192, 0, 2, 1]));
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
        let policy = Policy::client(&limits, "c", IpAddr::from([192, 0, 2, 1]));
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
    async fn wrong_user_codes_have_a_server_wide_budget() {
        let store = memory();
        let limits = LimitsSection {
            user_code_max_failures_total: 3,
            ..LimitsSection::default()
        };
        let from = |n: u8| Policy::user_code(&limits, IpAddr::from([192, 0, n, 1]));
        for n in 0..3 {
            assert_eq!(
                attempt(&store, &from(n)).await.expect("store"),
                Verdict::Allow
            );
        }
        assert!(
            matches!(
                attempt(&store, &from(9)).await.expect("store"),
                Verdict::Refuse(_)
            ),
            "a fresh network is refused once the budget is spent"
        );
        // A right code takes its attempt back: it costs the budget nothing.
        succeeded(&store, &from(0)).await.expect("store");
        assert_eq!(
            attempt(&store, &from(9)).await.expect("store"),
            Verdict::Allow
        );
        assert!(matches!(
            attempt(&store, &from(9)).await.expect("store"),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn attacker_chosen_names_make_keys_of_one_length() {
        let limits = LimitsSection::default();
        let ip = IpAddr::from([192, 0, 2, 1]);
        let long = Policy::login(&limits, &"u".repeat(8192), ip);
        let short = Policy::client(&limits, "c", ip);
        assert_eq!(
            long.account.as_ref().map(String::len),
            Some("login:user:".len() + 32)
        );
        assert_eq!(
            short.account.as_ref().map(String::len),
            Some("client:id:".len() + 32)
        );
        assert_eq!(long.address, "login:addr:192.0.2.0/24");
    }
}
