//! `[[providers]]` in the diff: one added widens (its users may come in), one removed
//! narrows; per provider, in named steps: where it is and how it is asked (`source`),
//! who it admits (`rules`), what groups it gives (`groups`) and how its tokens are
//! checked and refreshed (`tokens`).

use super::{Changes, Mark, Side, Subject, lifetime};
use crate::config::file::Accept;
use crate::upstream::provider::{Provider, RefreshPolicy};
use std::collections::BTreeMap;

const S: Subject = Subject::Provider;

/// Every change of the providers from `old` to `new`.
pub(super) fn providers(out: &mut Changes, old: &Side<'_>, new: &Side<'_>) {
    let before: BTreeMap<&str, &Provider> =
        old.providers.iter().map(|p| (p.id.as_str(), *p)).collect();
    let after: BTreeMap<&str, &Provider> =
        new.providers.iter().map(|p| (p.id.as_str(), *p)).collect();
    for (id, p) in &after {
        let Some(b) = before.get(id) else {
            let what = format!("added (accept = {})", accept(p));
            out.push(S, id, Mark::Widens, what);
            continue;
        };
        source(out, id, b, p);
        rules(out, id, b, p);
        groups(out, id, b, p);
        tokens(out, id, b, p);
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        out.push(S, id, Mark::Narrows, "removed");
    }
}

fn accept(p: &Provider) -> &'static str {
    match p.accept {
        Accept::Linked => "linked",
        Accept::Rules => "rules",
    }
}

/// Where the provider is, how gatehouse signs in to it and which claims pick the user.
fn source(out: &mut Changes, id: &str, b: &Provider, p: &Provider) {
    match (b.accept, p.accept) {
        (Accept::Linked, Accept::Rules) => out.push(
            S,
            id,
            Mark::Widens,
            "accept linked -> rules: unlinked users may come in",
        ),
        (Accept::Rules, Accept::Linked) => out.push(
            S,
            id,
            Mark::Narrows,
            "accept rules -> linked: only linked users",
        ),
        _ => {}
    }
    if b.endpoints != p.endpoints {
        let what = format!("upstream changed {:?} -> {:?}", b.endpoints, p.endpoints);
        out.push(S, id, Mark::Widens, what);
    }
    if b.client_id != p.client_id {
        let what = format!("client_id changed {:?} -> {:?}", b.client_id, p.client_id);
        out.push(S, id, Mark::Neutral, what);
    }
    if b.client_secret != p.client_secret {
        out.push(S, id, Mark::Neutral, "client secret rotated");
    }
    if b.claims != p.claims {
        let what = format!(
            "claims mapping changed {:?} -> {:?}: other upstream claims pick the user",
            b.claims, p.claims
        );
        out.push(S, id, Mark::Widens, what);
    }
    let neutral = Mark::Neutral;
    out.list(
        S,
        id,
        "upstream scope",
        &b.scopes,
        &p.scopes,
        neutral,
        neutral,
    );
    if b.name != p.name {
        let what = format!("name changed {:?} -> {:?}", b.name, p.name);
        out.push(S, id, Mark::Neutral, what);
    }
}

/// Who the provider's users must be: email domains, groups, required claims and
/// whether unverified emails count.
fn rules(out: &mut Changes, id: &str, b: &Provider, p: &Provider) {
    let (br, pr) = (&b.rules, &p.rules);
    let domains = (&br.allowed_email_domains, &pr.allowed_email_domains);
    rule_list(out, id, "email domain", domains.0, domains.1);
    rule_list(
        out,
        id,
        "allowed group",
        &br.allowed_groups,
        &pr.allowed_groups,
    );
    let claims = |p: &Provider| -> Vec<String> {
        p.rules
            .required_claims
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    };
    let (w, n) = (Mark::Widens, Mark::Narrows);
    out.list(S, id, "required claim", &claims(b), &claims(p), n, w);
    let trust = "trust_email (unverified emails count)";
    out.flag(S, id, trust, br.trust_email, pr.trust_email);
}

/// A rule list where empty means "anyone": going to or from empty flips the mark.
fn rule_list(out: &mut Changes, id: &str, noun: &str, before: &[String], after: &[String]) {
    match (before.is_empty(), after.is_empty()) {
        (true, false) => out.push(S, id, Mark::Narrows, format!("{noun} rule added {after:?}")),
        (false, true) => out.push(S, id, Mark::Widens, format!("{noun} rule removed (any)")),
        _ => out.list(S, id, noun, before, after, Mark::Widens, Mark::Narrows),
    }
}

/// The groups the provider's users get: prefix, filter and added groups.
fn groups(out: &mut Changes, id: &str, b: &Provider, p: &Provider) {
    if b.groups.prefix != p.groups.prefix {
        let what = format!(
            "groups prefix changed {:?} -> {:?}",
            b.groups.prefix, p.groups.prefix
        );
        out.push(S, id, Mark::Widens, what);
    }
    let filter = |p: &Provider| p.groups.filter.as_ref().map(|f| f.as_str().to_owned());
    match (filter(b), filter(p)) {
        (None, Some(f)) => out.push(S, id, Mark::Narrows, format!("groups filter added {f:?}")),
        (Some(_), None) => out.push(S, id, Mark::Widens, "groups filter removed"),
        (Some(x), Some(y)) if x != y => {
            let what = format!("groups filter changed {x:?} -> {y:?}");
            out.push(S, id, Mark::Neutral, what);
        }
        _ => {}
    }
    let (w, n) = (Mark::Widens, Mark::Narrows);
    out.list(S, id, "added group", &b.groups.add, &p.groups.add, w, n);
}

/// The ID token algorithms accepted and how a refresh is checked against the provider.
fn tokens(out: &mut Changes, id: &str, b: &Provider, p: &Provider) {
    let (w, n) = (Mark::Widens, Mark::Narrows);
    out.list(
        S,
        id,
        "ID token algorithm",
        &b.algorithms,
        &p.algorithms,
        w,
        n,
    );
    match (b.refresh, p.refresh) {
        (RefreshPolicy::Cap(x), RefreshPolicy::Cap(y)) => {
            lifetime(out, S, &format!("{id} refresh max_age"), x, y);
        }
        (RefreshPolicy::Revalidate(x), RefreshPolicy::Revalidate(y)) => {
            lifetime(out, S, &format!("{id} refresh every"), x, y);
        }
        (x, y) => {
            let what = format!("refresh changed {x:?} -> {y:?}");
            out.push(S, id, Mark::Neutral, what);
        }
    }
}
