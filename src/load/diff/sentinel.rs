//! `[store] sentinels`, `master_name`, `sentinel_password` and `wait_for_replica` in
//! the diff (they apply at the next restart, as the rest of `[store]`): other Sentinels
//! or another master name is neutral (another way of reaching the store), the Sentinels'
//! password replaced is a credential replaced (never shown); a shorter wait for a
//! replica (or none) widens: a failover can then lose a revocation, a used code or a
//! used refresh token, and what it loses is active again; a longer one narrows.

use super::{Changes, Mark, Subject};
use crate::load::StoreSettings;

/// The Sentinel fields of `[store]` that changed, marked.
pub(super) fn sentinel(out: &mut Changes, old: &StoreSettings, new: &StoreSettings) {
    let place = |s: &StoreSettings| {
        s.sentinel.as_ref().map(|s| {
            let list: Vec<String> = s
                .sentinels
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect();
            format!("{} at {}", s.master_name, list.join(", "))
        })
    };
    let (before, after) = (place(old), place(new));
    if before != after {
        let shown = |p: Option<String>| p.unwrap_or_else(|| "no Sentinels".to_owned());
        let what = format!(
            "{} replaced by {}, at the next restart",
            shown(before),
            shown(after)
        );
        out.push(Subject::Store, "sentinels", Mark::Neutral, what);
    }
    let password = |s: &StoreSettings| s.sentinel.as_ref().and_then(|s| s.password.clone());
    match (password(old), password(new)) {
        (Some(a), Some(b)) if a != b => out.push(
            Subject::Store,
            "sentinel_password",
            Mark::CredentialReplaced,
            "the Sentinels' password replaced",
        ),
        _ => {}
    }
    let (before, after) = (old.wait_for_replica, new.wait_for_replica);
    if before != after {
        let mark = if after < before {
            Mark::Widens
        } else {
            Mark::Narrows
        };
        let what = format!(
            "{} -> {}{}",
            super::config_duration(before),
            super::config_duration(after),
            if after.is_zero() {
                ": security-relevant writes no longer wait for a replica"
            } else {
                ""
            }
        );
        out.push(Subject::Store, "wait_for_replica", mark, what);
    }
}

#[cfg(test)]
mod tests {
    use super::sentinel;
    use crate::load::change::Changes;
    use crate::load::change::Mark;
    use crate::load::{StoreSentinel, StoreSettings};
    use std::time::Duration;

    fn marks(old: &StoreSettings, new: &StoreSettings) -> Vec<(Mark, String)> {
        let mut out = Changes::default();
        sentinel(&mut out, old, new);
        out.0.iter().map(|c| (c.mark, c.to_string())).collect()
    }

    fn behind(password: &str, wait_ms: u64) -> StoreSettings {
        StoreSettings {
            sentinel: Some(StoreSentinel {
                sentinels: vec![("10.0.0.5".into(), 26379)],
                master_name: "mymaster".into(),
                password: Some(password.into()),
            }),
            wait_for_replica: Duration::from_millis(wait_ms),
            ..StoreSettings::default()
        }
    }

    #[test]
    fn a_shorter_wait_widens_a_new_password_is_a_credential_never_shown() {
        let plain = StoreSettings::default();
        let added = marks(&plain, &behind("pw-one", 100));
        assert_eq!(added.len(), 1, "{added:?}");
        assert_eq!(added[0].0, Mark::Neutral);
        assert!(
            added[0].1.contains("mymaster at 10.0.0.5:26379"),
            "{added:?}"
        );
        let rotated = marks(&behind("pw-one", 100), &behind("pw-two", 100));
        assert_eq!(rotated.len(), 1, "{rotated:?}");
        assert_eq!(rotated[0].0, Mark::CredentialReplaced);
        assert!(
            rotated.iter().all(|(_, l)| !l.contains("pw-")),
            "{rotated:?}"
        );
        let off = marks(&behind("p", 100), &behind("p", 0));
        assert_eq!(off[0].0, Mark::Widens, "{off:?}");
        let longer = marks(&behind("p", 100), &behind("p", 500));
        assert_eq!(longer[0].0, Mark::Narrows, "{longer:?}");
    }
}
