//! One entry of the memory store: its value, its expiry on the store's clock and its
//! used flag; reading a live one and using a single-use one.

use crate::store::Redeemed;
use dashmap::DashMap;
use std::time::Duration;

/// Milliseconds on the store's clock.
pub(crate) type Millis = u64;

pub(super) struct Entry<T> {
    pub(super) value: T,
    pub(super) used: bool,
    pub(super) expires: Millis,
}

impl<T> Entry<T> {
    pub(super) fn new(value: T, now: Millis, ttl: Duration) -> Self {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Self {
            value,
            used: false,
            expires: now.saturating_add(ttl),
        }
    }

    pub(super) fn live(&self, now: Millis) -> bool {
        self.expires > now
    }
}

/// Uses a single-use entry: marks it used and says whether it was already.
pub(super) fn redeem<K: Eq + std::hash::Hash, T: Clone>(
    map: &DashMap<K, Entry<T>>,
    key: K,
    now: Millis,
    on_first_use: impl FnOnce(&mut T),
) -> Redeemed<T> {
    redeem_with(map, key, now, |value| {
        on_first_use(value);
        value.clone()
    })
}

/// [`redeem`], where the first use changes what stays (`first_use` may record what was
/// issued and drop what a replay does not need) and gives what the caller gets.
pub(super) fn redeem_with<K: Eq + std::hash::Hash, T: Clone>(
    map: &DashMap<K, Entry<T>>,
    key: K,
    now: Millis,
    first_use: impl FnOnce(&mut T) -> T,
) -> Redeemed<T> {
    match map.get_mut(&key) {
        Some(mut e) if e.live(now) => {
            if e.used {
                Redeemed::Replayed(e.value.clone())
            } else {
                e.used = true;
                Redeemed::Fresh(first_use(&mut e.value))
            }
        }
        _ => Redeemed::Unknown,
    }
}

pub(super) fn get_live<K, Q, T>(map: &DashMap<K, Entry<T>>, key: &Q, now: Millis) -> Option<T>
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<Q>,
    Q: Eq + std::hash::Hash + ?Sized,
    T: Clone,
{
    map.get(key)
        .filter(|e| e.live(now))
        .map(|e| e.value.clone())
}

pub(super) fn remaining(expires: Millis, now: Millis) -> Duration {
    Duration::from_millis(expires.saturating_sub(now))
}
