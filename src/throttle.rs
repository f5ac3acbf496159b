//! Failure throttling, counted in the store so every replica sees the same counts:
//! failed logins per username and per address, failed client authentications per
//! client id and per address. Logins past half the limit are slowed down; at the limit,
//! attempts are refused with 429 until the window (which starts at the first failure)
//! ends. A success clears the account's count, never the address's.
//!
//! Also the per-address request rate of the HTML pages ([`PageLimiter`]), which is
//! kept per process.

use crate::config::file::LimitsSection;
use crate::store::{Store, StoreError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
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

/// The counters one attempt is judged by, and the limits that apply.
pub struct Policy {
    /// The account's counter first, then the address's.
    names: [String; 2],
    max: u32,
    window: Duration,
    slow_down: bool,
}

impl Policy {
    /// Logins as `username` from `address`.
    pub fn login(limits: &LimitsSection, username: &str, address: &str) -> Self {
        Self {
            names: [
                format!("login:user:{username}"),
                format!("login:addr:{address}"),
            ],
            max: limits.login_max_failures,
            window: limits.login_failure_window,
            slow_down: true,
        }
    }

    /// Client authentications as `client_id` from `address`.
    pub fn client(limits: &LimitsSection, client_id: &str, address: &str) -> Self {
        Self {
            names: [
                format!("client:id:{client_id}"),
                format!("client:addr:{address}"),
            ],
            max: limits.token_max_failures,
            window: limits.token_failure_window,
            slow_down: false,
        }
    }

    /// The verdict for `count` failures with `left` of their window to run (pure).
    pub fn verdict(&self, count: u32, left: Duration) -> Verdict {
        let slow_from = self.max.div_ceil(2);
        if count >= self.max {
            Verdict::Refuse(left.max(Duration::from_secs(1)))
        } else if self.slow_down && count >= slow_from {
            let steps = count - slow_from + 1;
            Verdict::Delay((Duration::from_millis(250) * steps).min(Duration::from_secs(2)))
        } else {
            Verdict::Allow
        }
    }
}

/// The verdict for an attempt: the worse of the account's and the address's counts.
pub async fn check(store: &dyn Store, policy: &Policy) -> Result<Verdict, StoreError> {
    let mut worst = (0, Duration::ZERO);
    for name in &policy.names {
        let (count, left) = store.failures(name).await?;
        if count > worst.0 {
            worst = (count, left);
        }
    }
    Ok(policy.verdict(worst.0, worst.1))
}

/// Counts a failed attempt.
pub async fn failed(store: &dyn Store, policy: &Policy) -> Result<(), StoreError> {
    for name in &policy.names {
        store.add_failure(name, policy.window).await?;
    }
    Ok(())
}

/// Clears the account's failures after a success.
pub async fn succeeded(store: &dyn Store, policy: &Policy) -> Result<(), StoreError> {
    store.clear_failures(&policy.names[0]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_slow_down_then_are_refused() {
        let limits = LimitsSection {
            login_max_failures: 6,
            ..LimitsSection::default()
        };
        let policy = Policy::login(&limits, "u", "a");
        let left = Duration::from_secs(600);
        assert_eq!(policy.verdict(0, left), Verdict::Allow);
        assert_eq!(policy.verdict(2, left), Verdict::Allow);
        assert_eq!(
            policy.verdict(3, left),
            Verdict::Delay(Duration::from_millis(250))
        );
        assert_eq!(
            policy.verdict(5, left),
            Verdict::Delay(Duration::from_millis(750))
        );
        assert_eq!(policy.verdict(6, left), Verdict::Refuse(left));
    }

    #[test]
    fn clients_are_refused_without_slowing_down() {
        let limits = LimitsSection {
            token_max_failures: 4,
            ..LimitsSection::default()
        };
        let policy = Policy::client(&limits, "c", "a");
        assert_eq!(policy.verdict(3, Duration::from_secs(9)), Verdict::Allow);
        assert_eq!(
            policy.verdict(4, Duration::from_secs(9)),
            Verdict::Refuse(Duration::from_secs(9))
        );
    }
}
