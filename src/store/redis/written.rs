//! The codes this replica wrote to Redis, kept beside it until redeemed or expired, so
//! that the token request following an `/authorize` that issued a code here reads the
//! code's content here instead of asking Redis (`peek_code`): one round trip of a code
//! flow's four.
//!
//! A code's content never changes once written (its key is the hash of a secret nobody
//! else holds); only its use does, and that is Redis's alone: the redemption script
//! decides fresh or replayed. So a code kept here and used since on another replica
//! peeks fresh here, then redeems as the replay it is. A code redeemed here is
//! forgotten at once, a code past its expiry is not read, and what is kept is bounded
//! in bytes: when full (codes issued and never redeemed), expired codes are swept (at
//! most once a second) and a code that still does not fit is not kept, its peek asking
//! Redis as every peek did before.

use crate::store::Key;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// At most this many bytes of codes are kept, each counted as its payload and
/// [`ENTRY`] (a code flow's code with a small identity is about 200 bytes of payload):
/// a few thousand codes between their `/authorize` and their token request.
const BUDGET: usize = 1 << 20;

/// What keeping a code costs beside its payload: its key, expiry and the payload's
/// pointer and length in the map's table, and the payload's allocation.
const ENTRY: usize = 96;

/// At most one sweep of expired codes in this many milliseconds.
const SWEEP_EVERY_MS: u64 = 1_000;

/// A code's expiry (ms on the store's clock) and its payload as written to Redis.
struct Kept {
    expires: u64,
    payload: Box<[u8]>,
}

/// What keeping `payload` counts against the budget.
fn cost(payload: &[u8]) -> usize {
    payload.len().saturating_add(ENTRY)
}

/// The codes this replica wrote and has not redeemed: see the module.
#[derive(Default)]
pub(super) struct Written {
    codes: DashMap<Key, Kept>,
    bytes: AtomicUsize,
    last_sweep: AtomicU64,
}

impl Written {
    /// Keeps the code `key`'s `payload`, written to Redis and expiring at `expires`,
    /// when it fits in the budget (after sweeping expired codes, if due, at `now`).
    pub(super) fn keep(&self, key: Key, payload: Vec<u8>, expires: u64, now: u64) {
        if !self.reserve(cost(&payload), now) {
            return;
        }
        let kept = Kept {
            expires,
            payload: payload.into_boxed_slice(),
        };
        if let Some(before) = self.codes.insert(key, kept) {
            self.bytes
                .fetch_sub(cost(&before.payload), Ordering::Relaxed);
        }
    }

    /// The payload of the code `key` as written, read by `read`, when it is kept and
    /// live at `now`.
    pub(super) fn read<T>(&self, key: &Key, now: u64, read: impl FnOnce(&[u8]) -> T) -> Option<T> {
        let kept = self.codes.get(key)?;
        (kept.expires > now).then(|| read(&kept.payload))
    }

    /// Forgets the code `key` (it is being redeemed).
    pub(super) fn forget(&self, key: &Key) {
        if let Some((_, kept)) = self.codes.remove(key) {
            self.bytes.fetch_sub(cost(&kept.payload), Ordering::Relaxed);
        }
    }

    /// Counts `len` more bytes if they fit in the budget, sweeping once first when
    /// they do not and a sweep is due.
    fn reserve(&self, len: usize, now: u64) -> bool {
        if self.fits(len) {
            return true;
        }
        self.sweep(now);
        self.fits(len)
    }

    fn fits(&self, len: usize) -> bool {
        let counted = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_add(len).filter(|&after| after <= BUDGET)
            });
        counted.is_ok()
    }

    /// Drops the expired codes, unless another sweep ran less than a second ago.
    fn sweep(&self, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        let due = now >= last.saturating_add(SWEEP_EVERY_MS);
        if !due
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.codes.retain(|_, kept| {
            let live = kept.expires > now;
            if !live {
                self.bytes.fetch_sub(cost(&kept.payload), Ordering::Relaxed);
            }
            live
        });
    }

    /// How many bytes of codes are kept.
    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Key;
    use crate::store::redis::written::{BUDGET, ENTRY, Written};

    fn key(n: u32) -> Key {
        let mut k = [0; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        k
    }

    #[test]
    fn a_kept_code_reads_until_it_expires_or_is_forgotten() {
        let w = Written::default();
        w.keep(key(1), b"one".to_vec(), 2_000, 1_000);
        w.keep(key(2), b"two".to_vec(), 2_000, 1_000);
        assert_eq!(
            w.read(&key(1), 1_999, <[u8]>::to_vec),
            Some(b"one".to_vec())
        );
        assert_eq!(w.read(&key(1), 2_000, <[u8]>::to_vec), None, "expired");
        assert_eq!(w.read(&key(3), 1_000, <[u8]>::to_vec), None, "never kept");
        w.forget(&key(2));
        assert_eq!(w.read(&key(2), 1_000, <[u8]>::to_vec), None, "forgotten");
        assert_eq!(
            w.kept_bytes(),
            3 + ENTRY,
            "a forgotten code's bytes are given back"
        );
        w.forget(&key(2));
        assert_eq!(
            w.kept_bytes(),
            3 + ENTRY,
            "forgetting twice gives back once"
        );
    }

    #[test]
    fn a_full_budget_keeps_no_more_until_expired_codes_are_swept() {
        let w = Written::default();
        let size = BUDGET / 4 - ENTRY;
        for n in 0..4 {
            w.keep(key(n), vec![0; size], 5_000, 1_000);
        }
        assert_eq!(w.kept_bytes(), BUDGET);
        w.keep(key(9), vec![1; 10], 6_000, 2_000);
        assert_eq!(w.read(&key(9), 2_000, <[u8]>::len), None, "full: not kept");
        assert_eq!(
            w.read(&key(0), 2_000, <[u8]>::len),
            Some(size),
            "the rest stay"
        );
        // The four expire at 5,000: the next code that does not fit sweeps them.
        w.keep(key(10), vec![2; 10], 9_000, 5_000);
        assert_eq!(w.read(&key(10), 5_000, <[u8]>::len), Some(10));
        assert_eq!(
            w.kept_bytes(),
            10 + ENTRY,
            "the expired codes' bytes are given back"
        );
    }

    #[test]
    fn sweeps_are_at_most_a_second_apart() {
        let w = Written::default();
        w.keep(key(0), vec![0; BUDGET - ENTRY], 1_500, 1_000);
        // The budget is taken: a first sweep at 1,200 finds nothing expired.
        w.keep(key(1), vec![1; 8], 9_000, 1_200);
        assert_eq!(w.read(&key(1), 1_200, <[u8]>::len), None);
        // Expired at 1,500, but the sweep at 1,200 was less than a second ago.
        w.keep(key(2), vec![2; 8], 9_000, 1_600);
        assert_eq!(
            w.read(&key(2), 1_600, <[u8]>::len),
            None,
            "no second sweep yet"
        );
        w.keep(key(3), vec![3; 8], 9_000, 2_200);
        assert_eq!(
            w.read(&key(3), 2_200, <[u8]>::len),
            Some(8),
            "swept a second later"
        );
    }

    #[test]
    fn a_code_larger_than_the_budget_is_never_kept() {
        let w = Written::default();
        w.keep(key(0), vec![0; BUDGET - ENTRY + 1], 9_000, 1_000);
        assert_eq!(w.read(&key(0), 1_000, <[u8]>::len), None);
        assert_eq!(w.kept_bytes(), 0);
    }
}
