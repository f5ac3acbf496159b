//! The user claims each OpenID scope releases (OIDC Core 5.4), shared by the ID token
//! and the userinfo endpoint.

use crate::model::Identity;
use serde_json::{Map, Value, json};

/// Every user claim [`for_scopes`] may release.
pub(crate) const USER_CLAIMS: [&str; 6] = [
    "preferred_username",
    "name",
    "picture",
    "groups",
    "email",
    "email_verified",
];

/// The claims about `user` that `scopes` allow, without `sub`.
pub(crate) fn for_scopes(user: &Identity, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    let has = |s: &str| scopes.iter().any(|g| g == s);
    if has("profile") {
        claims.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
        if let Some(picture) = &user.picture {
            claims.insert("picture".into(), json!(picture));
        }
        if !user.groups.is_empty() {
            claims.insert("groups".into(), json!(user.groups));
        }
    }
    if has("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    claims
}
