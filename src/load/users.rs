//! `[[users]]`: usernames and ids once each, password hashes as PHC strings, links to
//! upstream identities.

use super::limits::check_not_before;
use super::report::Report;
use super::secrets::check_phc;
use crate::config::file::ConfigFile;
use crate::model::User;
use std::collections::HashMap;

pub(super) fn check_users(file: &ConfigFile, r: &mut Report) -> Vec<User> {
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut users = Vec::new();
    for (i, u) in file.users.iter().enumerate() {
        let path = format!("users[{i}]");
        let username_ok = if u.username.trim().is_empty() {
            r.error(format!("{path}.username"), "may not be empty");
            false
        } else if let Some(at) = names.get(u.username.as_str()) {
            r.duplicate(
                format!("{path}.username"),
                format!("duplicate username {:?}", u.username),
                at.clone(),
            );
            false
        } else {
            names.insert(&u.username, format!("{path}.username"));
            true
        };
        let id = u.id.clone().unwrap_or_else(|| u.username.clone());
        // An id defaulted from a bad username repeats that problem: report it once.
        if u.id.is_some() || username_ok {
            if id.trim().is_empty() {
                r.error(format!("{path}.id"), "may not be empty");
            } else if let Some(at) = ids.get(&id) {
                r.duplicate(
                    format!("{path}.id"),
                    format!("duplicate user id {id:?}"),
                    at.clone(),
                );
            } else {
                ids.insert(id.clone(), format!("{path}.id"));
            }
        }
        if let Some(Err(e)) = u.password_hash.as_deref().map(check_phc) {
            r.error(format!("{path}.password_hash"), e);
        }
        users.push(User {
            id,
            username: u.username.clone(),
            password_hash: u.password_hash.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            groups: u.groups.clone(),
            links: u
                .links
                .iter()
                .map(|l| (l.provider.clone(), l.subject.clone()))
                .collect(),
            tokens_not_before: check_not_before(
                u.tokens_not_before.as_deref(),
                &format!("{path}.tokens_not_before"),
                r,
            ),
        });
    }
    users
}
