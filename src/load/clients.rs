//! `[[clients]]`: ids, grant types, redirect URIs, origins, scopes and how each client
//! authenticates, resolved into the model's `Client`.

use super::client_keys;
use super::limits::check_not_before;
use super::report::Report;
use super::secrets::resolve_secret;
use crate::config::file::{ClientEntry, ConfigFile, GrantType};
use crate::config::report::Sources;
use crate::model::{BUILTIN_SCOPES, Client, ClientAuth};
use crate::protocol::origin;
use crate::protocol::redirect_uri::check_registered;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// `[[clients]]`, each checked in named steps (id, grant types, URIs, origins, scopes,
/// authentication) and resolved into the model's `Client`.
pub(super) fn check_clients(
    file: &ConfigFile,
    scopes: &BTreeMap<String, String>,
    issuers: &[String],
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Vec<Client> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(file.clients.len());
    // Of their exact count: the registry keeps them as they are (`into_boxed_slice`,
    // which leaves a grown vector's slack allocated).
    let mut clients = Vec::with_capacity(file.clients.len());
    for (i, c) in file.clients.iter().enumerate() {
        let path = format!("clients[{i}]");
        check_id(c, (i, &path), &mut seen, r);
        let user_grant = check_grants(c, &path, r);
        check_uris(c, &path, r);
        let allowed_origins = check_origins(c, &path, r);
        check_scopes_and_audience(c, &path, scopes, r);
        let auth = authentication(c, &path, issuers, base_dir, sources, r);
        clients.push(resolved(c, &path, user_grant, allowed_origins, auth, r));
    }
    clients
}

/// A client's `id`: not empty, no whitespace or control characters, listed once
/// (`seen`: each earlier id's index; its place is written out only if named twice).
fn check_id<'a>(
    c: &'a ClientEntry,
    (i, path): (usize, &str),
    seen: &mut HashMap<&'a str, usize>,
    r: &mut Report,
) {
    if c.id.is_empty() {
        r.error(format!("{path}.id"), "may not be empty");
    } else if c.id.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        r.error(
            format!("{path}.id"),
            format!("{:?} contains whitespace or control characters", c.id),
        );
    } else if let Some(at) = seen.get(c.id.as_str()) {
        r.duplicate(
            format!("{path}.id"),
            format!("duplicate client id {:?}", c.id),
            format!("clients[{at}].id"),
        );
    } else {
        seen.insert(&c.id, i);
    }
}

/// A client's `grant_types`: at least one, each once, none a public client cannot use,
/// refresh_token only beside a grant that issues one. True when a user grant
/// (authorization_code or device_code) is among them.
fn check_grants(c: &ClientEntry, path: &str, r: &mut Report) -> bool {
    let grants: HashSet<GrantType> = c.grant_types.iter().copied().collect();
    if grants.is_empty() {
        r.error(
            format!("{path}.grant_types"),
            "must list at least one grant type",
        );
    }
    if grants.len() != c.grant_types.len() {
        r.error(format!("{path}.grant_types"), "lists a grant type twice");
    }
    if c.public && grants.contains(&GrantType::ClientCredentials) {
        r.error(
            format!("{path}.grant_types"),
            "a public client may not use client_credentials (it has no secret to authenticate with)",
        );
    }
    let user_grant =
        grants.contains(&GrantType::AuthorizationCode) || grants.contains(&GrantType::DeviceCode);
    if grants.contains(&GrantType::RefreshToken) && !user_grant {
        r.error(
            format!("{path}.grant_types"),
            "refresh_token needs authorization_code or the device_code grant: refresh tokens are only issued by those",
        );
    }
    if grants.contains(&GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
        r.error(
            format!("{path}.redirect_uris"),
            "a client with the authorization_code grant needs at least one redirect URI",
        );
    }
    user_grant
}

/// A client's `redirect_uris` and `post_logout_redirect_uris`, each a registrable URI.
fn check_uris(c: &ClientEntry, path: &str, r: &mut Report) {
    for (j, uri) in c.redirect_uris.iter().enumerate() {
        if let Err(e) = check_registered(uri) {
            r.error(format!("{path}.redirect_uris[{j}]"), e);
        }
    }
    for (j, uri) in c.post_logout_redirect_uris.iter().enumerate() {
        if let Err(e) = check_registered(uri) {
            r.error(format!("{path}.post_logout_redirect_uris[{j}]"), e);
        }
    }
}

/// A client's `scopes` (built in or declared in `[[scopes]]`) and `audience` (none empty).
fn check_scopes_and_audience(
    c: &ClientEntry,
    path: &str,
    scopes: &BTreeMap<String, String>,
    r: &mut Report,
) {
    for (j, scope) in c.scopes.iter().enumerate() {
        if !BUILTIN_SCOPES.contains(&scope.as_str()) && !scopes.contains_key(scope) {
            r.error(
                format!("{path}.scopes[{j}]"),
                format!("unknown scope {scope:?}; declare it in [[scopes]]"),
            );
        }
    }
    for (j, aud) in c.audience.iter().enumerate() {
        if aud.trim().is_empty() {
            r.error(format!("{path}.audience[{j}]"), "may not be empty");
        }
    }
}

/// How the client authenticates: its keys (`private_key_jwt`, `federated_credentials`)
/// or its shared secrets; `None` for a public client.
fn authentication(
    c: &ClientEntry,
    path: &str,
    issuers: &[String],
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> ClientAuth {
    // A confidential client without a usable secret has an error reported, so the
    // config is rejected and this `None` never serves.
    client_keys::check_method(c, path, r);
    if client_keys::declared(c) {
        match client_keys::resolve(c, path, issuers, base_dir, sources, r) {
            Some(keys) => ClientAuth::Keys(keys),
            None => ClientAuth::None,
        }
    } else {
        match resolve_secret(c, path, base_dir, sources, r) {
            Some(secrets) => ClientAuth::SharedSecret(secrets),
            None => ClientAuth::None,
        }
    }
}

/// The model's `Client` from its checked entry; a user grant's client may always ask
/// for `openid`.
fn resolved(
    c: &ClientEntry,
    path: &str,
    user_grant: bool,
    allowed_origins: Vec<String>,
    auth: ClientAuth,
    r: &mut Report,
) -> Client {
    let mut allowed_scopes = c.scopes.clone();
    if user_grant && !allowed_scopes.iter().any(|s| s == "openid") {
        allowed_scopes.push("openid".to_owned());
    }
    Client {
        id: c.id.clone(),
        name: c.name.clone().unwrap_or_else(|| c.id.clone()),
        auth,
        grant_types: c.grant_types.clone(),
        default_scopes: c.scopes.clone(),
        allowed_scopes,
        audience: c.audience.clone(),
        first_party: c.first_party,
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        allowed_origins,
        introspect: c.introspect,
        providers: c.providers.clone(),
        resources: c.resources.clone(),
        access_token_ttl: c.access_token_ttl,
        refresh_token_ttl: c.refresh_token_ttl,
        document_host: None,
        tokens_not_before: check_not_before(
            c.tokens_not_before.as_deref(),
            &format!("{path}.tokens_not_before"),
            r,
        ),
        backchannel_logout_uri: check_backchannel(c, path, r),
        backchannel_logout_session_required: c.backchannel_logout_session_required,
        protections: crate::load::fapi::protections(c, path, r),
    }
}

/// A client's `allowed_origins`, checked; absent, a public client's default (the
/// origins of its `http(s)` redirect URIs) and a confidential client's (none).
fn check_origins(c: &ClientEntry, path: &str, r: &mut Report) -> Vec<String> {
    let Some(listed) = &c.allowed_origins else {
        return if c.public {
            origin::of_redirect_uris(&c.redirect_uris)
        } else {
            Vec::new()
        };
    };
    let mut origins: Vec<String> = Vec::new();
    for (j, o) in listed.iter().enumerate() {
        let field = format!("{path}.allowed_origins[{j}]");
        if let Err(e) = origin::check_allowed(o) {
            r.error(field, e);
        } else if origins.contains(o) {
            r.error(field, format!("{o:?} is listed twice"));
        } else {
            origins.push(o.clone());
        }
    }
    if !c.public && !origins.is_empty() {
        r.warn(
            format!("{path}.allowed_origins"),
            "a confidential client's secret cannot be kept in a browser page; allowed_origins is for public clients",
        );
    }
    origins
}

/// A client's `backchannel_logout_uri`, checked (https, or http on a loopback host; no
/// fragment, no credentials), and `backchannel_logout_session_required` only with it.
fn check_backchannel(c: &ClientEntry, path: &str, r: &mut Report) -> Option<String> {
    if c.backchannel_logout_session_required && c.backchannel_logout_uri.is_none() {
        r.error(
            format!("{path}.backchannel_logout_session_required"),
            "needs backchannel_logout_uri",
        );
    }
    let uri = c.backchannel_logout_uri.as_ref()?;
    match crate::protocol::jwk::check_fetch_url(uri) {
        Ok(()) => Some(uri.clone()),
        Err(e) => {
            r.error(format!("{path}.backchannel_logout_uri"), e);
            None
        }
    }
}
