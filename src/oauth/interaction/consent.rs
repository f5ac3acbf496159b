//! What a consent is asked for, in words: the description of each scope and the names
//! of the resources (RFC 8707) a request names, as the consent and device pages show
//! them.

use crate::model::BUILTIN_SCOPES;
use crate::registry::Registry;
use serde_json::json;

/// The resources a request names, as the consent and device pages show them: each
/// one's `name` (else its URI) and its URI.
pub(crate) fn resources_shown(registry: &Registry, resources: &[String]) -> Vec<serde_json::Value> {
    resources
        .iter()
        .map(|id| {
            let name = registry.resource(id).map_or(id.as_str(), |r| &r.name);
            json!({"id": id, "name": name})
        })
        .collect()
}

/// What granting `scope` means, in words for the consent and device pages.
pub(crate) fn scope_description<'a>(registry: &'a Registry, scope: &str) -> &'a str {
    match scope {
        "openid" => "Sign you in with your account",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "offline_access" => "Keep access while you are away",
        custom if !BUILTIN_SCOPES.contains(&custom) => {
            registry.scopes.get(custom).map_or("", String::as_str)
        }
        _ => "",
    }
}
