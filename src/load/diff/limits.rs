//! `[limits]` in the diff: a limit raised, a window shortened or a network narrowed
//! (a longer prefix: fewer addresses counted together) lets more attempts through
//! (widens); the reverse narrows.

use super::{Changes, Mark, Subject};
use crate::config::file::LimitsSection;
use std::time::Duration;

/// Every `[limits]` field that changed, marked.
pub(super) fn limits(out: &mut Changes, old: &LimitsSection, new: &LimitsSection) {
    let counts = [
        (
            "login_max_failures",
            old.login_max_failures,
            new.login_max_failures,
        ),
        (
            "token_max_failures",
            old.token_max_failures,
            new.token_max_failures,
        ),
        (
            "pages_per_second",
            old.pages_per_second,
            new.pages_per_second,
        ),
        ("pages_burst", old.pages_burst, new.pages_burst),
        (
            "pending_per_address",
            old.pending_per_address,
            new.pending_per_address,
        ),
        ("pending_total", old.pending_total, new.pending_total),
        (
            "user_code_max_failures_total",
            old.user_code_max_failures_total,
            new.user_code_max_failures_total,
        ),
        (
            "ipv4_prefix",
            u32::from(old.ipv4_prefix),
            u32::from(new.ipv4_prefix),
        ),
        (
            "ipv6_prefix",
            u32::from(old.ipv6_prefix),
            u32::from(new.ipv6_prefix),
        ),
    ];
    for (field, before, after) in counts {
        if before != after {
            let mark = if after > before {
                Mark::Widens
            } else {
                Mark::Narrows
            };
            out.push(Subject::Limits, field, mark, format!("{before} -> {after}"));
        }
    }
    for (field, before, after) in [
        (
            "login_failure_window",
            old.login_failure_window,
            new.login_failure_window,
        ),
        (
            "token_failure_window",
            old.token_failure_window,
            new.token_failure_window,
        ),
    ] {
        window(out, field, before, after);
    }
}

/// A failure window: shorter forgets failures sooner (widens).
fn window(out: &mut Changes, field: &str, before: Duration, after: Duration) {
    if before != after {
        let mark = if after < before {
            Mark::Widens
        } else {
            Mark::Narrows
        };
        let what = format!(
            "{} -> {}",
            super::config_duration(before),
            super::config_duration(after)
        );
        out.push(Subject::Limits, field, mark, what);
    }
}
