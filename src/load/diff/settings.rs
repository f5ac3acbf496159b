//! The single settings in the diff: `issuer`, `[server]`, `[ui] templates_dir`,
//! `[federation] token_key` and `[login] second_factor` and `rp_id`.

use super::{Changes, Mark, Side, Subject};
use crate::http::client_ip::Cidr;

/// Every change to the single settings, marked.
pub(super) fn settings(out: &mut Changes, old: &Side<'_>, new: &Side<'_>) {
    if old.issuer != new.issuer {
        out.push(
            Subject::Issuer,
            "issuer",
            Mark::Widens,
            format!(
                "changed {:?} -> {:?}: tokens name another issuer (clients must follow; whoever checks the new one accepts ours)",
                old.issuer, new.issuer
            ),
        );
    }
    server(out, old, new);
    let (before, after) = (old.login.second_factor, new.login.second_factor);
    if before != after {
        // off < optional < required: more asked of a password login narrows.
        let mark = if after > before {
            Mark::Narrows
        } else {
            Mark::Widens
        };
        let what = format!("changed {} -> {}", before.as_str(), after.as_str());
        out.push(Subject::Login, "second_factor", mark, what);
    }
    if old.rp_id != new.rp_id {
        // Every enrolled passkey was made for the old RP ID: none works under the new.
        let what = format!(
            "changed {:?} -> {:?}: every enrolled passkey stops working",
            old.rp_id, new.rp_id
        );
        out.push(Subject::Login, "rp_id", Mark::Narrows, what);
    }
    for (what, before, after) in [
        (
            "require_pushed_authorization_requests",
            old.server.require_par,
            new.server.require_par,
        ),
        ("dpop_nonce", old.server.dpop_nonce, new.server.dpop_nonce),
    ] {
        // More demanded of every client: on narrows, off widens.
        if before != after {
            let (mark, state) = if after {
                (Mark::Narrows, "on")
            } else {
                (Mark::Widens, "off")
            };
            out.push(Subject::Server, what, mark, format!("turned {state}"));
        }
    }
    match (old.templates_dir, new.templates_dir) {
        (None, Some(dir)) => out.push(
            Subject::Ui,
            "templates_dir",
            Mark::Widens,
            format!("set to {dir:?}: its templates render the login pages (they see passwords)"),
        ),
        (Some(_), None) => out.push(
            Subject::Ui,
            "templates_dir",
            Mark::Narrows,
            "removed: the built-in pages",
        ),
        (Some(a), Some(b)) if a != b => out.push(
            Subject::Ui,
            "templates_dir",
            Mark::Widens,
            format!("changed {a:?} -> {b:?}: other templates render the login pages"),
        ),
        _ => {}
    }
    let fingerprint = |side: &Side<'_>| side.token_key.map(|k| *k.fingerprint());
    match (fingerprint(old), fingerprint(new)) {
        (None, Some(_)) => out.push(Subject::Federation, "token_key", Mark::Neutral, "set"),
        (Some(_), None) => out.push(Subject::Federation, "token_key", Mark::Neutral, "removed"),
        (Some(a), Some(b)) if a != b => out.push(
            Subject::Federation,
            "token_key",
            Mark::CredentialReplaced,
            "replaced: tokens sealed under the old key no longer open",
        ),
        _ => {}
    }
}

/// `[server]`: a trusted proxy network added widens (more peers may name the client's
/// address) unless a listed one already covers it; `admin_bind` removed widens (metrics
/// and the detailed readiness move to the public listener); `bind` moved is neutral.
fn server(out: &mut Changes, old: &Side<'_>, new: &Side<'_>) {
    let (before, after) = (&old.server.trusted_proxies, &new.server.trusted_proxies);
    let covered = |by: &[Cidr], c: &Cidr| by.iter().any(|b| b.covers(c));
    for c in after.iter().filter(|c| !covered(before, c)) {
        let what = format!(
            "trusted proxy added {:?}: its X-Forwarded-For is believed",
            c.to_string()
        );
        out.push(Subject::Server, "trusted_proxies", Mark::Widens, what);
    }
    for c in before.iter().filter(|c| !covered(after, c)) {
        let what = format!("trusted proxy removed {:?}", c.to_string());
        out.push(Subject::Server, "trusted_proxies", Mark::Narrows, what);
    }
    match (old.server.admin_bind, new.server.admin_bind) {
        (Some(a), None) => out.push(
            Subject::Server,
            "admin_bind",
            Mark::Widens,
            format!("removed (was {a}): /metrics and the detailed /readyz move to the public listener, at the next restart"),
        ),
        (None, Some(b)) => out.push(
            Subject::Server,
            "admin_bind",
            Mark::Narrows,
            format!("set to {b}: /metrics and the detailed /readyz leave the public listener, at the next restart"),
        ),
        (Some(a), Some(b)) if a != b => out.push(
            Subject::Server,
            "admin_bind",
            Mark::Neutral,
            format!("{a} -> {b}, at the next restart"),
        ),
        _ => {}
    }
    admin_token(out, old, new);
    if old.server.bind != new.server.bind {
        let what = format!(
            "{} -> {}, at the next restart",
            old.server.bind, new.server.bind
        );
        out.push(Subject::Server, "bind", Mark::Neutral, what);
    }
}

/// `admin_token_file`: set widens (a new credential may revoke), a new token is
/// `credential_replaced`, removed narrows (no revocation is taken).
fn admin_token(out: &mut Changes, old: &Side<'_>, new: &Side<'_>) {
    let (s, field) = (Subject::Server, "admin_token_file");
    match (&old.server.admin_token, &new.server.admin_token) {
        (None, Some(_)) => out.push(s, field, Mark::Widens, "set: `gatehouse revoke` is taken"),
        (Some(_), None) => out.push(s, field, Mark::Narrows, "removed: no revocation is taken"),
        (Some(a), Some(b)) if a != b => out.push(
            s,
            field,
            Mark::CredentialReplaced,
            "the admin token changed",
        ),
        _ => {}
    }
}
