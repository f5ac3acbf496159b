//! `[[clients]]`: ids, grant types, redirect URIs, origins, scopes and how each client
//! authenticates, checked; then, once the whole config is valid, built into the
//! model's `Client`s from their entries, moved.
//!
//! Two steps so that a big config's clients exist once, not twice: the checks read the
//! file model and keep only what they resolve beyond it ([`Resolved`]: how the client
//! authenticates, its parsed `tokens_not_before`, its protections); [`build`] then takes
//! each entry's strings into its `Client` (`load::check_as` calls it after the
//! diagnostics are placed and the config's text is gone).

use super::client_keys;
use super::limits::check_not_before;
use super::report::Report;
use super::secrets::resolve_secret;
use crate::config::file::{ClientEntries, ClientEntry, ConfigFile, GrantType};
use crate::config::report::Sources;
use crate::model::{BUILTIN_SCOPES, Client, ClientAuth, ClientSecret, Protections};
use crate::protocol::origin;
use crate::protocol::redirect_uri::check_registered;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// What checking a client resolved that its entry does not hold as it is, kept until
/// [`build`] makes the client.
pub(super) struct Resolved {
    /// authorization_code or device_code is among its grants (it may ask for openid).
    user_grant: bool,
    auth: Auth,
    /// `tokens_not_before`, parsed.
    tokens_not_before: Option<u64>,
    protections: Protections,
}

/// What [`check_clients`] resolved, in pieces of at most [`RESOLVED_PIECE`], each in a
/// block of its size: [`build`] frees each once its clients are made (100,000
/// clients: 5.6 MB freed as the registry grows, not after it).
pub(super) type Resolutions = Vec<Vec<Resolved>>;

/// Clients whose resolutions share a piece (56 KiB).
const RESOLVED_PIECE: usize = 1024;

/// How a checked client authenticates.
enum Auth {
    /// By the argon2 hashes its `secret_hash` lists, each checked: moved from the entry.
    Hashes,
    /// As resolved: public, its keys, or secrets read from files or the environment.
    Resolved(ClientAuth),
}

/// `[[clients]]`, each checked in named steps (id, grant types, URIs, origins, scopes,
/// authentication): what each resolved, in the entries' order.
pub(super) fn check_clients(
    file: &ConfigFile,
    scopes: &BTreeMap<String, String>,
    issuers: &[String],
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Resolutions {
    let total = file.clients.len();
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(total);
    let mut resolved: Resolutions = Vec::with_capacity(total.div_ceil(RESOLVED_PIECE));
    for (i, c) in file.clients.iter().enumerate() {
        let path = format!("clients[{i}]");
        check_id(c, (i, &path), &mut seen, r);
        let user_grant = check_grants(c, &path, r);
        check_uris(c, &path, r);
        check_origins(c, &path, r);
        check_scopes_and_audience(c, &path, scopes, r);
        let auth = match authentication(c, &path, issuers, base_dir, sources, r) {
            ClientAuth::SharedSecret(_) if c.secret_hash.is_some() => Auth::Hashes,
            auth => Auth::Resolved(auth),
        };
        let not_before = format!("{path}.tokens_not_before");
        let tokens_not_before = check_not_before(c.tokens_not_before.as_deref(), &not_before, r);
        check_backchannel(c, &path, r);
        let parts = Resolved {
            user_grant,
            auth,
            tokens_not_before,
            protections: crate::load::fapi::protections(c, &path, r),
        };
        if i % RESOLVED_PIECE == 0 {
            resolved.push(Vec::with_capacity((total - i).min(RESOLVED_PIECE)));
        }
        if let Some(piece) = resolved.last_mut() {
            piece.push(parts);
        }
    }
    resolved
}

/// Pieces of entries built between two collections (a megabyte of entries at most):
/// the pages of the freed ones go back to the system while the clients are made, not
/// after the last (100,000 clients: a reload's peak while building 219 -> 199 MiB).
const PIECES_PER_COLLECT: usize = 16;

/// The model's clients, from the entries [`check_clients`] checked (with no error:
/// every rule it applies holds) and what it resolved, in the same order. Each entry's
/// strings move into its client.
pub(super) fn build(entries: ClientEntries, resolved: Resolutions) -> Vec<Client> {
    // Of their exact count: the registry keeps them as they are (`into_boxed_slice`,
    // which leaves a grown vector's slack allocated).
    let mut clients = Vec::with_capacity(entries.len());
    let mut resolved = resolved.into_iter().flatten();
    // A piece at a time, each freed once its clients are made: the entries and the
    // clients built from them do not all exist at once.
    for (n, piece) in entries.into_pieces().into_iter().enumerate() {
        for (c, parts) in piece.into_iter().zip(resolved.by_ref()) {
            clients.push(client(c, parts));
        }
        if n % PIECES_PER_COLLECT == PIECES_PER_COLLECT - 1 {
            crate::memory::collect();
        }
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
    } else if let Some(at) = seen.get(&*c.id) {
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
fn client(c: ClientEntry, parts: Resolved) -> Client {
    // A boxed slice or str becomes a `Vec` or `String` in the same block.
    let allowed_origins = match c.allowed_origins {
        Some(listed) => listed.into_vec(),
        None if c.public => origin::of_redirect_uris(&c.redirect_uris),
        None => Vec::new(),
    };
    let auth = match parts.auth {
        Auth::Resolved(auth) => auth,
        Auth::Hashes => {
            let hashes = c.secret_hash.map(|h| h.items).unwrap_or_default();
            ClientAuth::SharedSecret(hashes.into_iter().map(ClientSecret::hash).collect())
        }
    };
    let mut allowed_scopes = c.scopes.to_vec();
    if parts.user_grant && !allowed_scopes.iter().any(|s| s == "openid") {
        allowed_scopes.push("openid".to_owned());
    }
    let id = String::from(c.id);
    Client {
        name: c.name.map_or_else(|| id.clone(), String::from),
        id,
        auth,
        grant_types: c.grant_types.into_vec(),
        default_scopes: c.scopes.into_vec(),
        allowed_scopes,
        audience: c.audience.into_vec(),
        first_party: c.first_party,
        redirect_uris: c.redirect_uris.into_vec(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.into_vec(),
        allowed_origins,
        introspect: c.introspect,
        providers: c.providers.map(<[String]>::into_vec),
        resources: c.resources.into_vec(),
        access_token_ttl: c.access_token_ttl,
        refresh_token_ttl: c.refresh_token_ttl,
        document_host: None,
        tokens_not_before: parts.tokens_not_before,
        backchannel_logout_uri: c.backchannel_logout_uri.map(String::from),
        backchannel_logout_session_required: c.backchannel_logout_session_required,
        protections: parts.protections,
    }
}

/// A client's `allowed_origins`, checked (absent: [`client`] gives a public client the
/// origins of its `http(s)` redirect URIs, a confidential one none).
fn check_origins(c: &ClientEntry, path: &str, r: &mut Report) {
    let Some(listed) = &c.allowed_origins else {
        return;
    };
    let mut valid = 0;
    for (j, o) in listed.iter().enumerate() {
        let field = format!("{path}.allowed_origins[{j}]");
        if let Err(e) = origin::check_allowed(o) {
            r.error(field, e);
        } else if listed[..j].contains(o) {
            r.error(field, format!("{o:?} is listed twice"));
        } else {
            valid += 1;
        }
    }
    if !c.public && valid > 0 {
        r.warn(
            format!("{path}.allowed_origins"),
            "a confidential client's secret cannot be kept in a browser page; allowed_origins is for public clients",
        );
    }
}

/// A client's `backchannel_logout_uri`, checked (https, or http on a loopback host; no
/// fragment, no credentials), and `backchannel_logout_session_required` only with it.
fn check_backchannel(c: &ClientEntry, path: &str, r: &mut Report) {
    if c.backchannel_logout_session_required && c.backchannel_logout_uri.is_none() {
        r.error(
            format!("{path}.backchannel_logout_session_required"),
            "needs backchannel_logout_uri",
        );
    }
    if let Some(uri) = &c.backchannel_logout_uri
        && let Err(e) = crate::protocol::jwk::check_fetch_url(uri)
    {
        r.error(format!("{path}.backchannel_logout_uri"), e);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::file::ConfigFile;
    use crate::config::report::Sources;
    use crate::load::clients::{RESOLVED_PIECE, build, check_clients};
    use crate::load::report::Report;
    use crate::model::{ClientAuth, SecretKind};
    use std::collections::BTreeMap;
    use std::path::Path;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0hBjGbGFQ1ZnTgiTvtFVmAyG5mPMVYVC0QPcXkmOqQc";

    /// A built client's strings are its entry's, moved (the same heap blocks), and
    /// what the model derives is derived as the checks defined it.
    #[test]
    fn a_built_client_takes_its_entrys_strings() {
        let text = format!(
            r#"issuer = "https://id.example.com"
[[clients]]
id = "svc"
secret_hash = ["{HASH}"]
grant_types = ["client_credentials"]
audience = ["https://api.example.com"]
[[clients]]
id = "spa"
name = "The SPA"
public = true
redirect_uris = ["https://spa.example.com/cb", "http://127.0.0.1/cb"]
scopes = ["profile"]
"#
        );
        let file: ConfigFile = toml::from_str(&text).expect("a config");
        let entries: Vec<_> = file.clients.iter().collect();
        let hash = entries[0].secret_hash.as_ref().expect("hashes").items[0].as_ptr();
        let blocks = [
            entries[0].id.as_ptr(),
            entries[0].audience[0].as_ptr(),
            entries[1].redirect_uris[1].as_ptr(),
            entries[1].name.as_ref().expect("a name").as_ptr(),
        ];
        let mut report = Report::default();
        let mut sources = Sources::new();
        let dir = Path::new("/nonexistent");
        let resolved = check_clients(&file, &BTreeMap::new(), &[], dir, &mut sources, &mut report);
        assert!(report.0.is_empty(), "{:?}", report.0);

        let clients = build(file.clients, resolved);
        let [svc, spa] = clients.as_slice() else {
            panic!("two clients");
        };
        let built = [
            svc.id.as_ptr(),
            svc.audience[0].as_ptr(),
            spa.redirect_uris[1].as_ptr(),
            spa.name.as_ptr(),
        ];
        assert_eq!(built, blocks);
        let ClientAuth::SharedSecret(secrets) = &svc.auth else {
            panic!("svc has a secret");
        };
        assert!(
            matches!(&secrets[..], [s] if matches!(s.kind(), SecretKind::Hash(h) if h.as_ptr() == hash))
        );
        assert_eq!(secrets.capacity(), 1);
        assert_eq!((svc.name.as_str(), spa.name.as_str()), ("svc", "The SPA"));
        assert!(matches!(spa.auth, ClientAuth::None));
        assert_eq!(
            spa.allowed_origins,
            ["https://spa.example.com", "http://127.0.0.1"]
        );
        assert_eq!(spa.default_scopes, ["profile"]);
        assert_eq!(spa.allowed_scopes, ["profile", "openid"]);
        assert!(svc.allowed_origins.is_empty());
        assert_eq!(svc.allowed_scopes, Vec::<String>::new());
    }

    /// What the checks resolve is kept in bounded pieces of their exact size, and the
    /// clients are built from them in the entries' order.
    #[test]
    fn resolutions_are_kept_in_pieces_and_built_in_order() {
        const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
        let count = 2 * RESOLVED_PIECE + 452;
        // Even: a service with a secret; odd: a public device client.
        let service = format!("grant_types = [\"client_credentials\"]\nsecret_hash = \"{HASH}\"\n");
        let device = format!("grant_types = [\"{DEVICE}\"]\npublic = true\n");
        let mut text = String::from("issuer = \"https://id.example.com\"\n");
        for n in 0..count {
            let kind = if n % 2 == 0 { &service } else { &device };
            text.push_str(&format!("[[clients]]\nid = \"c{n}\"\n{kind}"));
        }
        let file: ConfigFile = toml::from_str(&text).expect("a config");
        let mut report = Report::default();
        let dir = Path::new("/nonexistent");
        let resolved = check_clients(
            &file,
            &BTreeMap::new(),
            &[],
            dir,
            &mut Sources::new(),
            &mut report,
        );
        assert!(report.0.is_empty(), "{:?}", report.0);
        let sizes: Vec<(usize, usize)> = resolved.iter().map(|p| (p.len(), p.capacity())).collect();
        let full = (RESOLVED_PIECE, RESOLVED_PIECE);
        assert_eq!(sizes, [full, full, (452, 452)]);

        let clients = build(file.clients, resolved);
        assert_eq!(clients.len(), count);
        for (n, c) in clients.iter().enumerate() {
            assert_eq!(c.id, format!("c{n}"));
            // A device client may ask for openid; the public one has no secret.
            let openid = c.allowed_scopes.iter().any(|s| s == "openid");
            assert_eq!((c.is_public(), openid), (n % 2 == 1, n % 2 == 1), "c{n}");
        }
    }
}
