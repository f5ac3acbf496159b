//! Scopes, resources and Client ID Metadata Document prefixes in the diff, and a
//! client's resources and own lifetimes.

use super::{Changes, Mark, Subject, config_duration};
use crate::config::file::TokensSection;
use crate::model::{Client, DocumentSource, Resource};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[[scopes]]`: declaring, describing or dropping a scope is neutral (what a client
/// may ask for is its own list).
pub(super) fn scopes(
    out: &mut Changes,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    let s = Subject::Scope;
    for (name, description) in new {
        match old.get(name) {
            None => out.push(s, name, Mark::Neutral, "declared"),
            Some(d) if d != description => {
                let what = format!("description changed {d:?} -> {description:?}");
                out.push(s, name, Mark::Neutral, what);
            }
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(s, name, Mark::Neutral, "no longer declared");
    }
}

/// A client's resources (one gained widens: its tokens open one more API) and its own
/// lifetimes, compared as they apply (its own, else `[tokens]`).
pub(super) fn client_resources(
    out: &mut Changes,
    id: &str,
    (b, old): (&Client, &TokensSection),
    (c, new): (&Client, &TokensSection),
) {
    let s = Subject::Client;
    out.list(
        s,
        id,
        "resource",
        &b.resources,
        &c.resources,
        Mark::Widens,
        Mark::Narrows,
    );
    for (field, before, after) in [
        (
            "access_token_ttl",
            (b.access_token_ttl, old.access_token_ttl),
            (c.access_token_ttl, new.access_token_ttl),
        ),
        (
            "refresh_token_ttl",
            (b.refresh_token_ttl, old.refresh_token_ttl),
            (c.refresh_token_ttl, new.refresh_token_ttl),
        ),
    ] {
        // A client without its own lifetime follows `[tokens]`, reported there.
        if before.0.is_none() && after.0.is_none() {
            continue;
        }
        let (before, after) = (before.0.unwrap_or(before.1), after.0.unwrap_or(after.1));
        if before != after {
            let mark = if after > before {
                Mark::Widens
            } else {
                Mark::Narrows
            };
            let what = format!(
                "{field} {} -> {}",
                config_duration(before),
                config_duration(after)
            );
            out.push(s, id, mark, what);
        }
    }
}

/// `[[resources]]`: one declared is neutral (no client may ask for it yet), one removed
/// narrows; a scope put in a resource narrows (tokens for other resources lose it),
/// one taken out widens; a longer lifetime widens.
pub(super) fn resources(out: &mut Changes, old: &[Resource], new: &[Resource]) {
    let s = Subject::Resource;
    for r in new {
        let Some(b) = old.iter().find(|b| b.id == r.id) else {
            out.push(s, &r.id, Mark::Neutral, "declared");
            continue;
        };
        if b.name != r.name {
            out.push(
                s,
                &r.id,
                Mark::Neutral,
                format!("name changed {:?} -> {:?}", b.name, r.name),
            );
        }
        out.list(
            s,
            &r.id,
            "scope",
            &b.scopes,
            &r.scopes,
            Mark::Narrows,
            Mark::Widens,
        );
        if b.access_token_ttl != r.access_token_ttl {
            let longer = match (b.access_token_ttl, r.access_token_ttl) {
                (Some(before), Some(after)) => after > before,
                (Some(_), None) => true,
                _ => false,
            };
            let mark = if longer { Mark::Widens } else { Mark::Narrows };
            let show = |t: Option<Duration>| t.map_or("(the client's)".to_owned(), config_duration);
            let what = format!(
                "access_token_ttl {} -> {}",
                show(b.access_token_ttl),
                show(r.access_token_ttl)
            );
            out.push(s, &r.id, mark, what);
        }
    }
    for r in old.iter().filter(|b| !new.iter().any(|r| r.id == b.id)) {
        out.push(s, &r.id, Mark::Narrows, "removed");
    }
}

/// How `[[client_metadata_documents]]` changed, by prefix: an entry added, or a prefix
/// widened (a shorter one covering an old one), widens; one removed narrows; a scope or
/// resource added widens, removed narrows; an extra CA added widens, removed narrows,
/// replaced is neutral.
pub(super) fn client_documents(out: &mut Changes, old: &[DocumentSource], new: &[DocumentSource]) {
    let s = Subject::ClientDocuments;
    for n in new {
        let id = n.url_prefix.as_str();
        let Some(b) = old.iter().find(|b| b.url_prefix == n.url_prefix) else {
            let what = match old.iter().find(|b| b.url_prefix.starts_with(id)) {
                Some(b) => format!("prefix widened from {:?}", b.url_prefix),
                None => "added".to_owned(),
            };
            out.push(s, id, Mark::Widens, what);
            continue;
        };
        let (w, r) = (Mark::Widens, Mark::Narrows);
        out.list(s, id, "scope", &b.scopes, &n.scopes, w, r);
        out.list(s, id, "resource", &b.resources, &n.resources, w, r);
        match (&b.ca_pem, &n.ca_pem) {
            (None, Some(_)) => out.push(s, id, Mark::Widens, "extra CA added"),
            (Some(_), None) => out.push(s, id, Mark::Narrows, "extra CA removed"),
            (Some(x), Some(y)) if x != y => out.push(s, id, Mark::Neutral, "extra CA replaced"),
            _ => {}
        }
    }
    for b in old
        .iter()
        .filter(|b| !new.iter().any(|n| n.url_prefix == b.url_prefix))
    {
        // A prefix replaced by a shorter one was reported as widened above.
        if !new.iter().any(|n| b.url_prefix.starts_with(&n.url_prefix)) {
            out.push(s, &b.url_prefix, Mark::Narrows, "removed");
        }
    }
}
