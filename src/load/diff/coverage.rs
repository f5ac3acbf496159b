//! Every field of the config model has a diff rule, or a stated reason to have none:
//! the test walks the JSON Schema derived from the file model (`config::file`), so a
//! field added there without a line here fails it.

/// Each config field path (`clients[].redirect_uris`; a path covers the fields under
/// it) and the rule that compares it, or why none does.
const RULES: &[(&str, &str)] = &[
    (
        "include",
        "none: the included files' entries are compared as the main file's",
    ),
    ("issuer", "settings: changed widens"),
    ("server.bind", "settings: neutral, at the next restart"),
    ("server.admin_bind", "settings: removed widens, set narrows"),
    (
        "server.admin_token_file",
        "settings: set widens, new token credential_replaced, removed narrows",
    ),
    (
        "server.trusted_proxies",
        "settings: a network not covered before widens",
    ),
    ("tokens", "lifetime: longer widens (every field)"),
    ("session.ttl", "lifetime"),
    ("session.pending_ttl", "lifetime"),
    (
        "login.second_factor",
        "settings: stricter (off < optional < required) narrows, looser widens",
    ),
    ("ui.product_name", "none: a display name, grants nothing"),
    ("ui.templates_dir", "settings: set or changed widens"),
    ("limits.login_max_failures", "limits"),
    ("limits.login_failure_window", "limits: shorter widens"),
    ("limits.token_max_failures", "limits"),
    ("limits.token_failure_window", "limits: shorter widens"),
    ("limits.pages_per_second", "limits"),
    ("limits.pages_burst", "limits"),
    ("limits.pending_per_address", "limits"),
    ("limits.pending_total", "limits"),
    ("limits.ipv4_prefix", "limits: longer widens"),
    ("limits.ipv6_prefix", "limits: longer widens"),
    ("limits.user_code_max_failures_total", "limits"),
    (
        "store",
        "store: the backend, its TLS, CA and client certificate; sentinel: the Sentinels, their password, wait_for_replica",
    ),
    ("keys[].id", "keys: added widens, removed narrows"),
    ("keys[].algorithm", "keys: neutral"),
    (
        "keys[].private_key_file",
        "keys: material by thumbprint, credential_replaced",
    ),
    ("keys[].active", "keys: another signer, neutral"),
    ("scopes", "scopes: declared, removed, described"),
    ("resources", "resources: every field"),
    ("clients[].id", "clients: added widens, removed narrows"),
    ("clients[].name", "clients: neutral"),
    ("clients[].public", "clients: made public widens"),
    (
        "clients[].secret_hash",
        "secrets: added widens, replaced credential_replaced",
    ),
    ("clients[].secret", "secrets"),
    ("clients[].secret_file", "secrets"),
    ("clients[].grant_types", "clients: lists"),
    ("clients[].scopes", "clients: lists"),
    ("clients[].audience", "clients: lists"),
    ("clients[].first_party", "clients: flag"),
    (
        "clients[].backchannel_logout_uri",
        "clients: set neutral, changed or removed widens",
    ),
    (
        "clients[].backchannel_logout_session_required",
        "none: gatehouse always sends sid for a session's end",
    ),
    (
        "clients[].tokens_not_before",
        "not_before: set or later narrows, removed or earlier widens",
    ),
    ("clients[].redirect_uris", "clients: lists"),
    ("clients[].introspect", "clients: flag"),
    ("clients[].post_logout_redirect_uris", "clients: lists"),
    ("clients[].allowed_origins", "clients: lists (as resolved)"),
    (
        "clients[].providers",
        "clients: restricted narrows, lifted widens",
    ),
    ("clients[].resources", "client_resources"),
    (
        "clients[].access_token_ttl",
        "client_resources: as it applies",
    ),
    (
        "clients[].refresh_token_ttl",
        "client_resources: as it applies",
    ),
    (
        "clients[].jwks",
        "key_diff::client_keys: by thumbprint, added widens, removed narrows",
    ),
    ("clients[].jwks_file", "key_diff::client_keys: as jwks"),
    (
        "clients[].jwks_uri",
        "key_diff::client_keys: set or changed widens",
    ),
    (
        "clients[].token_endpoint_auth_method",
        "key_diff::client_keys: the method follows the credentials",
    ),
    (
        "clients[].federated_credentials",
        "key_diff::client_keys: added widens, removed narrows",
    ),
    (
        "client_metadata_documents",
        "documents::diff: added or a prefix, scope or resource added widens",
    ),
    (
        "trusted_issuers",
        "key_diff::trusted_issuers: added or loosened widens",
    ),
    (
        "clients[].require_pushed_authorization_requests",
        "fapi::diff: on narrows, off widens",
    ),
    ("clients[].dpop_bound_access_tokens", "fapi::diff"),
    (
        "clients[].require_second_factor",
        "fapi::diff: on narrows, off widens",
    ),
    ("clients[].profile", "fapi::diff"),
    (
        "server.require_pushed_authorization_requests",
        "settings: on narrows, off widens",
    ),
    ("server.dpop_nonce", "settings: on narrows, off widens"),
    ("users[].id", "users: added widens, removed narrows"),
    ("users[].username", "users: neutral"),
    (
        "users[].password_hash",
        "users: replaced credential_replaced, set widens",
    ),
    ("users[].email", "users: neutral"),
    ("users[].email_verified", "users: flag"),
    ("users[].name", "users: neutral"),
    ("users[].groups", "users: lists"),
    ("users[].links", "users: lists"),
    (
        "users[].totp_secret",
        "users: set narrows, removed widens, changed credential_replaced",
    ),
    (
        "users[].passkeys",
        "users::passkeys: added widens, removed narrows, key replaced credential_replaced",
    ),
    (
        "login.rp_id",
        "settings: changed narrows (enrolled passkeys stop working)",
    ),
    (
        "users[].tokens_not_before",
        "not_before: set or later narrows, removed or earlier widens",
    ),
    ("providers[].id", "providers: added widens, removed narrows"),
    ("providers[].name", "providers: neutral"),
    ("providers[].kind", "providers: the endpoints"),
    ("providers[].issuer", "providers: the endpoints"),
    ("providers[].api_url", "providers: the endpoints"),
    ("providers[].web_url", "providers: the endpoints"),
    ("providers[].client_id", "providers: neutral"),
    ("providers[].client_secret", "providers: rotated, neutral"),
    (
        "providers[].client_secret_file",
        "providers: rotated, neutral",
    ),
    (
        "providers[].scopes",
        "providers: upstream scope lists, neutral",
    ),
    ("providers[].accept", "providers: rules widens"),
    ("providers[].allowed_email_domains", "rule_list"),
    ("providers[].trust_email", "providers: flag"),
    ("providers[].allowed_groups", "rule_list"),
    ("providers[].required_claims", "providers: lists, reversed"),
    ("providers[].claims", "providers: mapping changed widens"),
    ("providers[].groups", "providers: prefix, filter, add"),
    ("providers[].id_token_algorithms", "providers: lists"),
    ("providers[].refresh", "providers: lifetime or neutral"),
    (
        "federation.token_key",
        "settings: replaced credential_replaced",
    ),
];

use serde_json::Value;
use std::collections::BTreeSet;

/// The schema at `node`, with a `$ref` into `$defs` followed.
fn resolve<'v>(root: &'v Value, node: &'v Value) -> &'v Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(node),
        None => node,
    }
}

/// Collects every property path under `node` into `paths`.
fn walk(root: &Value, node: &Value, path: &str, depth: u8, paths: &mut BTreeSet<String>) {
    if depth > 12 {
        return;
    }
    let node = resolve(root, node);
    for key in ["anyOf", "oneOf", "allOf"] {
        for alternative in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(root, alternative, path, depth + 1, paths);
        }
    }
    if let Some(items) = node.get("items") {
        walk(root, items, &format!("{path}[]"), depth + 1, paths);
    }
    for (name, property) in node
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let here = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        paths.insert(here.clone());
        walk(root, property, &here, depth + 1, paths);
    }
}

fn covered(path: &str) -> bool {
    RULES.iter().any(|(rule, _)| {
        path == *rule
            || path.starts_with(&format!("{rule}."))
            || path.starts_with(&format!("{rule}["))
    })
}

#[test]
fn every_config_field_has_a_diff_rule() {
    let schema = serde_json::to_value(schemars::schema_for!(crate::config::file::ConfigFile))
        .expect("schema");
    let mut paths = BTreeSet::new();
    walk(&schema, &schema, "", 0, &mut paths);
    assert!(paths.contains("clients[].redirect_uris"), "{paths:?}");
    // Only the fields themselves: a section or a list of entries is covered through
    // what it holds.
    let leaf = |p: &String| {
        !paths
            .iter()
            .any(|q| q.starts_with(&format!("{p}.")) || q.starts_with(&format!("{p}[")))
    };
    let missing: Vec<&String> = paths.iter().filter(|p| leaf(p) && !covered(p)).collect();
    assert!(
        missing.is_empty(),
        "config fields without a diff rule (add one in load::diff and a line in RULES): {missing:?}"
    );
    let stale: Vec<&str> = RULES
        .iter()
        .map(|(rule, _)| *rule)
        .filter(|rule| !paths.contains(*rule))
        .collect();
    assert!(
        stale.is_empty(),
        "RULES names fields the config has not: {stale:?}"
    );
}
