//! One entry of the memory store: its value, its expiry on the store's clock and its
//! used flag; reading a live one and using a single-use one.

use crate::store::Redeemed;
use dashmap::DashMap;
use std::time::Duration;

/// Milliseconds on the store's clock.
pub(crate) type Millis = u64;

/// The used flag's bit in [`Entry`]'s stamp.
const USED: u64 = 1 << 63;

/// The latest expiry an entry can hold: what its stamp leaves beside the used flag
/// (about 292 million years of milliseconds).
const LATEST: Millis = !USED;

pub(super) struct Entry<T> {
    pub(super) value: T,
    /// The expiry in the low 63 bits, the used flag in the top one: one word, not two,
    /// in every slot of every table (a refresh token's slot is 40 bytes, not 48).
    stamp: u64,
}

impl<T> Entry<T> {
    pub(super) fn new(value: T, now: Millis, ttl: Duration) -> Self {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Self::at(value, now.saturating_add(ttl), false)
    }

    /// An entry expiring at `expires` (at most [`LATEST`]), used or not.
    pub(super) fn at(value: T, expires: Millis, used: bool) -> Self {
        let used = if used { USED } else { 0 };
        Self {
            value,
            stamp: expires.min(LATEST) | used,
        }
    }

    pub(super) fn expires(&self) -> Millis {
        self.stamp & LATEST
    }

    pub(super) fn used(&self) -> bool {
        self.stamp & USED != 0
    }

    pub(super) fn mark_used(&mut self) {
        self.stamp |= USED;
    }

    /// Moves the expiry to `expires` if that is later.
    pub(super) fn extend_to(&mut self, expires: Millis) {
        if expires > self.expires() {
            self.stamp = expires.min(LATEST) | (self.stamp & USED);
        }
    }

    pub(super) fn live(&self, now: Millis) -> bool {
        self.expires() > now
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
            if e.used() {
                Redeemed::Replayed(e.value.clone())
            } else {
                e.mark_used();
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
