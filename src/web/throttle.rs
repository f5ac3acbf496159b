//! Login throttling: failures are counted per username and per client address in a
//! window; past half the limit each attempt is slowed, at the limit it is refused with
//! 429 until the window ends. A success clears the username's count.

use crate::config::model::LimitsSection;
use crate::store::{Store, StoreError};
use std::time::Duration;

/// What to do with a login attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Go on after waiting this long.
    Delay(Duration),
    /// Refuse; the window ends after this long.
    Refuse(Duration),
}

fn names(username: &str, address: &str) -> [String; 2] {
    [
        format!("login:user:{username}"),
        format!("login:addr:{address}"),
    ]
}

/// The verdict for `count` failures under `limits` (pure: the policy).
pub fn verdict(count: u32, left: Duration, limits: &LimitsSection) -> Verdict {
    let max = limits.login_max_failures;
    let slow_from = max.div_ceil(2);
    if count >= max {
        Verdict::Refuse(left.max(Duration::from_secs(1)))
    } else if count >= slow_from {
        let steps = count - slow_from + 1;
        Verdict::Delay((Duration::from_millis(250) * steps).min(Duration::from_secs(2)))
    } else {
        Verdict::Allow
    }
}

/// The verdict for an attempt on `username` from `address`.
pub async fn check(
    store: &dyn Store,
    limits: &LimitsSection,
    username: &str,
    address: &str,
) -> Result<Verdict, StoreError> {
    let mut worst = (0, Duration::ZERO);
    for name in names(username, address) {
        let (count, left) = store.failures(&name).await?;
        if count > worst.0 {
            worst = (count, left);
        }
    }
    Ok(verdict(worst.0, worst.1, limits))
}

/// Counts a failed attempt.
pub async fn failed(
    store: &dyn Store,
    limits: &LimitsSection,
    username: &str,
    address: &str,
) -> Result<(), StoreError> {
    for name in names(username, address) {
        store
            .add_failure(&name, limits.login_failure_window)
            .await?;
    }
    Ok(())
}

/// Clears the username's failures after a successful login.
pub async fn succeeded(store: &dyn Store, username: &str) -> Result<(), StoreError> {
    let [user, _] = names(username, "");
    store.clear_failures(&user).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slows_down_then_refuses() {
        let limits = LimitsSection {
            login_max_failures: 6,
            login_failure_window: Duration::from_secs(900),
        };
        let left = Duration::from_secs(600);
        assert_eq!(verdict(0, left, &limits), Verdict::Allow);
        assert_eq!(verdict(2, left, &limits), Verdict::Allow);
        assert_eq!(
            verdict(3, left, &limits),
            Verdict::Delay(Duration::from_millis(250))
        );
        assert_eq!(
            verdict(5, left, &limits),
            Verdict::Delay(Duration::from_millis(750))
        );
        assert_eq!(verdict(6, left, &limits), Verdict::Refuse(left));
    }
}
