//! [`Cap`]: every "at most N per network, and at most M in all" rule over store
//! counters, fair when nearly full.

use crate::store::{Store, StoreError};
use std::time::Duration;

/// The part of a cap's total kept for quiet networks, in tenths: once the total
/// holds all but this share (`total - total / 10`), only networks holding at most
/// [`QUIET_SHARE`] entries are admitted, so that networks filling the cap cannot
/// shut out a user from anywhere else.
const RESERVE_TENTHS: u32 = 1;

/// The entries a network may hold and still be admitted once the cap is nearly full:
/// a user's own logins in a tab or two.
pub(crate) const QUIET_SHARE: u32 = 2;

/// One "at most N per network, and at most M in all" rule over store counters: the
/// pending logins (`[limits] pending_per_address`, `pending_total`) and the device codes
/// waiting for a user, and anything later that an unauthenticated caller makes the
/// server keep. Keyed by the caller's network (`throttle::network`), never by a single
/// address. An entry is counted before it is stored, atomically (the store's
/// `add_failure`), and a refused one is taken back at once, so the counts are those of
/// the entries kept. Fair when nearly full: past `total - total / 10` only networks
/// holding at most [`QUIET_SHARE`] are admitted (see [`fits`]).
#[derive(Debug, Clone)]
pub(crate) struct Cap {
    /// The counters' prefix: `{name}:addr:{network}` and `{name}:all`.
    name: &'static str,
    per_address: u32,
    total: u32,
    /// How long an entry counts (the entries' own lifetime).
    window: Duration,
}

/// Why a [`Cap`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The network holds its share; its window ends after this long.
    Address(Duration),
    /// The server holds as many as it keeps in all, or nearly and the network holds
    /// more than a quiet one.
    Total,
}

/// Whether an entry that makes the total `count` and its network's count `held` fits
/// a cap of `total` (pure): always below the reserve, within it only for a network
/// holding at most [`QUIET_SHARE`], never past the total.
pub(crate) fn fits(count: u32, held: u32, total: u32) -> bool {
    let reserve = total / 10 * RESERVE_TENTHS;
    count <= total && (count <= total - reserve || held <= QUIET_SHARE)
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

    fn address_counter(&self, network: &str) -> String {
        format!("{}:addr:{network}", self.name)
    }

    fn total_counter(&self) -> String {
        format!("{}:all", self.name)
    }

    /// Counts one entry of `network` (`throttle::network(..).to_string()`): `Ok(Ok(()))`
    /// when it may be kept, `Ok(Err(full))` when a limit is reached (nothing stays
    /// counted for it; the total is not counted when the network's share refuses).
    pub(crate) async fn admit(
        &self,
        store: &dyn Store,
        network: &str,
    ) -> Result<Result<(), Full>, StoreError> {
        let mine = self.address_counter(network);
        let (held, left) = store.add_failure(&mine, self.window).await?;
        if held > self.per_address {
            store.take_back_failure(&mine).await?;
            return Ok(Err(Full::Address(left)));
        }
        let all = self.total_counter();
        let (count, _) = store.add_failure(&all, self.window).await?;
        if !fits(count, held, self.total) {
            store.take_back_failure(&mine).await?;
            store.take_back_failure(&all).await?;
            return Ok(Err(Full::Total));
        }
        Ok(Ok(()))
    }

    /// Takes back the entry of `network` that was answered (removed before it expired).
    pub(crate) async fn release(&self, store: &dyn Store, network: &str) -> Result<(), StoreError> {
        store
            .take_back_failure(&self.address_counter(network))
            .await?;
        store.take_back_failure(&self.total_counter()).await
    }
}

#[cfg(test)]
mod tests {
    use crate::throttle::cap::*;

    fn memory() -> crate::store::memory::MemoryStore {
        crate::store::memory::MemoryStore::new(crate::clock::Clock::system())
    }

    #[test]
    fn nearly_full_admits_only_quiet_networks() {
        // 1000 in all: the last 100 only for networks holding two at most.
        assert!(fits(900, 50, 1000));
        assert!(!fits(901, 3, 1000));
        assert!(fits(901, 2, 1000));
        assert!(fits(1000, 1, 1000));
        assert!(!fits(1001, 1, 1000), "never past the total");
        // A total under ten has no reserve.
        assert!(fits(5, 5, 5) && !fits(6, 1, 5));
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

    #[tokio::test]
    async fn a_quiet_network_gets_in_while_busy_ones_are_refused_near_full() {
        let store = memory();
        let cap = Cap::new("f", 10, 20, Duration::from_secs(60));
        for network in ["a", "b"] {
            for _ in 0..9 {
                assert_eq!(cap.admit(&store, network).await.expect("store"), Ok(()));
            }
        }
        // 18 of 20: the reserve. The busy networks are refused, the total untouched.
        assert_eq!(
            cap.admit(&store, "a").await.expect("store"),
            Err(Full::Total)
        );
        assert_eq!(cap.admit(&store, "quiet").await.expect("store"), Ok(()));
        assert_eq!(cap.admit(&store, "quiet").await.expect("store"), Ok(()));
        assert_eq!(
            cap.admit(&store, "quiet").await.expect("store"),
            Err(Full::Total),
            "past its quiet share"
        );
    }
}
