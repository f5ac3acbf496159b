//! Metric counter handles kept per thread, by their labels: a request counts with one
//! lookup in its worker's small map instead of building a metric key (its label
//! strings) and hashing it into the recorder's shared registry on every increment.
//! Callers keep only labels from a bounded set (routes without parameters times
//! statuses, configured client ids times grants): never a value a client makes up.

use metrics::Counter;
use std::cell::RefCell;
use std::collections::HashMap;
use std::thread::LocalKey;

/// Counter handles by a first label (a string) and a small second one.
pub(crate) type Counters<K> = RefCell<HashMap<Box<str>, Vec<(K, Counter)>>>;

/// Increments the counter `map` keeps for `first` and `second`; false when it keeps
/// none (the caller then asks the recorder and [`remember`]s the handle).
pub(crate) fn counted<K: PartialEq + 'static>(
    map: &'static LocalKey<Counters<K>>,
    first: &str,
    second: K,
) -> bool {
    map.with_borrow(|m| {
        m.get(first)
            .and_then(|kept| kept.iter().find(|(k, _)| *k == second))
            .map(|(_, counter)| counter.increment(1))
            .is_some()
    })
}

/// Keeps `counter` in `map` under `first` and `second`.
pub(crate) fn remember<K: 'static>(
    map: &'static LocalKey<Counters<K>>,
    first: &str,
    second: K,
    counter: Counter,
) {
    map.with_borrow_mut(|m| m.entry(first.into()).or_default().push((second, counter)));
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static KEPT: Counters<u16> = Counters::default();
    }

    #[test]
    fn a_kept_counter_is_found_by_both_labels_only() {
        assert!(!counted(&KEPT, "/token", 200));
        remember(&KEPT, "/token", 200, Counter::noop());
        assert!(counted(&KEPT, "/token", 200));
        assert!(!counted(&KEPT, "/token", 400));
        assert!(!counted(&KEPT, "/jwks", 200));
    }
}
