//! `[[scopes]]` and `[[resources]]` (RFC 8707): scope names, the APIs tokens may be
//! issued for, and the resources each client lists.

use super::report::Report;
use crate::config::file::ConfigFile;
use crate::model::{BUILTIN_SCOPES, Resource};
use crate::protocol::resource;
use std::collections::{BTreeMap, HashMap};

/// RFC 6749 3.3 scope-token: printable ASCII except space, `"` and `\`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

pub(super) fn check_scopes(file: &ConfigFile, r: &mut Report) -> BTreeMap<String, String> {
    let mut scopes = BTreeMap::new();
    let mut first: HashMap<&str, String> = HashMap::new();
    for (i, s) in file.scopes.iter().enumerate() {
        let path = format!("scopes[{i}].name");
        if !is_scope_token(&s.name) {
            r.error(path, format!("{:?} is not a valid scope name (printable ASCII, no spaces, quotes or backslashes)", s.name));
        } else if BUILTIN_SCOPES.contains(&s.name.as_str()) {
            r.error(
                path,
                format!("{:?} is built in and cannot be redefined", s.name),
            );
        } else if let Some(at) = first.get(s.name.as_str()) {
            r.duplicate(path, format!("duplicate scope {:?}", s.name), at.clone());
        } else {
            scopes.insert(s.name.clone(), s.description.clone());
            first.insert(&s.name, path);
        }
    }
    scopes
}

/// `[[resources]]`: each id an absolute URI without a fragment, listed once; each
/// scope declared in `[[scopes]]` and in one resource at most (a token's scopes are
/// those of its resources); a lifetime of at least one second.
pub(super) fn check_resources(
    file: &ConfigFile,
    scopes: &BTreeMap<String, String>,
    r: &mut Report,
) -> Vec<Resource> {
    let mut resources: Vec<Resource> = Vec::new();
    let mut first: HashMap<&str, String> = HashMap::new();
    let mut owners: HashMap<&str, String> = HashMap::new();
    for (i, entry) in file.resources.iter().enumerate() {
        let path = format!("resources[{i}]");
        if let Err(e) = resource::check_indicator(&entry.id) {
            r.error(format!("{path}.id"), e);
        } else if let Some(at) = first.get(entry.id.as_str()) {
            let message = format!("duplicate resource {:?}", entry.id);
            r.duplicate(format!("{path}.id"), message, at.clone());
        } else {
            first.insert(&entry.id, format!("{path}.id"));
        }
        if entry.id.contains('?') {
            r.warn(
                format!("{path}.id"),
                "a resource indicator should not have a query (RFC 8707 2)",
            );
        }
        if entry.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            r.error(
                format!("{path}.name"),
                "may not be empty (leave it out to show the id)",
            );
        }
        for (j, scope) in entry.scopes.iter().enumerate() {
            let field = format!("{path}.scopes[{j}]");
            if !scopes.contains_key(scope) {
                r.error(field, format!("{scope:?} is not declared in [[scopes]] (built-in scopes belong to no resource)"));
            } else if let Some(at) = owners.get(scope.as_str()) {
                let message = format!("scope {scope:?} already belongs to another resource");
                r.duplicate(field, message, at.clone());
            } else {
                owners.insert(scope, field);
            }
        }
        if entry.access_token_ttl.is_some_and(|t| t.as_secs() == 0) {
            r.error(
                format!("{path}.access_token_ttl"),
                "must be at least one second",
            );
        }
        resources.push(Resource {
            id: entry.id.clone(),
            name: entry.name.clone().unwrap_or_else(|| entry.id.clone()),
            scopes: entry.scopes.clone(),
            access_token_ttl: entry.access_token_ttl,
        });
    }
    resources
}

/// A client's `resources` (each declared, listed once) and its own lifetimes.
pub(super) fn check_client_resources(file: &ConfigFile, resources: &[Resource], r: &mut Report) {
    for (i, c) in file.clients.iter().enumerate() {
        let path = format!("clients[{i}]");
        for (j, id) in c.resources.iter().enumerate() {
            let field = format!("{path}.resources[{j}]");
            if !resources.iter().any(|res| res.id == *id) {
                r.error(
                    field,
                    format!("unknown resource {id:?}; declare it in [[resources]]"),
                );
            } else if c.resources[..j].contains(id) {
                r.error(field, format!("{id:?} is listed twice"));
            }
        }
        for (name, ttl) in [
            ("access_token_ttl", c.access_token_ttl),
            ("refresh_token_ttl", c.refresh_token_ttl),
        ] {
            if ttl.is_some_and(|t| t.as_secs() == 0) {
                r.error(format!("{path}.{name}"), "must be at least one second");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::load::scopes::*;

    #[test]
    fn scope_tokens() {
        assert!(is_scope_token("invoices:read"));
        assert!(!is_scope_token("two words"));
        assert!(!is_scope_token(""));
        assert!(!is_scope_token("quote\""));
    }
}
