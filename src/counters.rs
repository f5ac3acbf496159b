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

/// Increments the counter `map` keeps for `first` and `second`; when it keeps none,
/// `make` asks the recorder for it and says whether to keep it (only labels from a
/// bounded set may be kept), and that counter is incremented.
pub(crate) fn count<K: PartialEq + 'static>(
    map: &'static LocalKey<Counters<K>>,
    first: &str,
    second: K,
    make: impl FnOnce() -> (Counter, bool),
) {
    let counted = map.with_borrow(|m| {
        m.get(first)
            .and_then(|kept| kept.iter().find(|(k, _)| *k == second))
            .map(|(_, counter)| counter.increment(1))
            .is_some()
    });
    if counted {
        return;
    }
    let (counter, keep) = make();
    counter.increment(1);
    if keep {
        map.with_borrow_mut(|m| m.entry(first.into()).or_default().push((second, counter)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static KEPT: Counters<u16> = Counters::default();
    }

    #[test]
    fn a_kept_counter_is_found_by_both_labels_only() {
        let made = std::cell::Cell::new(0);
        let make = |keep| {
            made.set(made.get() + 1);
            (Counter::noop(), keep)
        };
        count(&KEPT, "/token", 200, || make(true));
        count(&KEPT, "/token", 200, || make(true));
        assert_eq!(made.get(), 1, "kept, so asked for once");
        count(&KEPT, "/token", 400, || make(true));
        count(&KEPT, "/jwks", 200, || make(true));
        assert_eq!(
            made.get(),
            3,
            "each other pair of labels is its own counter"
        );
        count(&KEPT, "/login/{id}", 200, || make(false));
        count(&KEPT, "/login/{id}", 200, || make(false));
        assert_eq!(made.get(), 5, "not kept, so asked for every time");
    }
}
