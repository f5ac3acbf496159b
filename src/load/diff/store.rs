//! `[store]` in the diff: where the state is kept, TLS to Redis, its CA and client
//! certificate, and (in `sentinel`) the Sentinel fields.

use super::{Changes, Mark, Subject, sentinel};
use crate::load::validate::{StoreBackend, StoreSettings};

/// `[store]`: another store is neutral (never with its password: the redacted URL),
/// except TLS to Redis turned off or a CA of one's own given up for the system's roots
/// (widen: more servers are believed to be the store), and the reverse (narrow). A
/// client certificate added, removed or replaced is neutral.
pub(super) fn store(out: &mut Changes, old: &StoreSettings, new: &StoreSettings) {
    let tls = |s: &StoreSettings| s.backend.redacted().starts_with("rediss://");
    if old.backend != new.backend || old.key_prefix != new.key_prefix {
        let what = format!(
            "{} ({}) replaced by {} ({}), at the next restart",
            old.backend.redacted(),
            old.key_prefix,
            new.backend.redacted(),
            new.key_prefix
        );
        out.push(Subject::Store, "url", Mark::Neutral, what);
    }
    if tls(old) && !tls(new) && matches!(new.backend, StoreBackend::Redis(_)) {
        out.push(
            Subject::Store,
            "url",
            Mark::Widens,
            "TLS to Redis turned off",
        );
    } else if !tls(old) && tls(new) && matches!(old.backend, StoreBackend::Redis(_)) {
        out.push(
            Subject::Store,
            "url",
            Mark::Narrows,
            "TLS to Redis turned on",
        );
    }
    match (&old.tls.ca, &new.tls.ca) {
        (Some(_), None) if tls(new) => out.push(
            Subject::Store,
            "ca_file",
            Mark::Widens,
            "own CA removed: the system's roots are trusted",
        ),
        (None, Some(_)) if tls(old) => out.push(
            Subject::Store,
            "ca_file",
            Mark::Narrows,
            "own CA added: only it is trusted",
        ),
        (Some(a), Some(b)) if a != b => {
            out.push(Subject::Store, "ca_file", Mark::Neutral, "CA replaced")
        }
        _ => {}
    }
    if old.tls.client != new.tls.client && tls(old) && tls(new) {
        out.push(
            Subject::Store,
            "client_cert_file",
            Mark::Neutral,
            "client certificate replaced",
        );
    }
    sentinel::sentinel(out, old, new);
}
