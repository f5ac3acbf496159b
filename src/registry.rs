//! The validated, indexed, immutable view of one config generation. Every request takes
//! one `Arc<Registry>` snapshot and uses only it, so a reload never mixes two configs.
//!
//! It holds the config and what is derived from it alone (indexes, parsed keys, the
//! JWKS). What changes while a generation serves (verified-secret caches, rotation
//! times, rendered discovery) lives in `AppState`, never here.

use crate::config::file::{LimitsSection, LoginSection, SessionSection, TokensSection};
use crate::jwt::keys::{KeySet, SigningKey};
use crate::load::diff::Side;
use crate::load::passkeys::PasskeySettings;
use crate::load::{ServerSettings, StoreSettings, UiSettings, Validated};
use crate::model::{Client, DocumentSource, Passkey, Resource, TrustedIssuer, User};
use crate::protocol::origin;
use crate::upstream::provider::Provider;
use crate::upstream::seal::TokenKey;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

/// One config generation, indexed for lookups.
pub struct Registry {
    /// Which load this is (1 for the first), and when it was made.
    pub generation: u64,
    pub loaded_at: SystemTime,
    /// SHA-256 (hex) of every input this generation was built from: the config file,
    /// the files it reads and the env values it names (`load::Loaded::fingerprint`).
    /// `None` for a registry not built from a loaded file.
    pub config_sha256: Option<String>,
    pub issuer: String,
    pub server: ServerSettings,
    pub tokens: TokensSection,
    pub session: SessionSection,
    /// `[login]`: the second-factor policy.
    pub login: LoginSection,
    pub limits: LimitsSection,
    /// The store this config names; the server uses the one it started with.
    pub store: StoreSettings,
    pub ui: UiSettings,
    /// WebAuthn: the RP ID and origin passkeys are checked against.
    pub passkeys: PasskeySettings,
    pub keys: KeySet,
    /// Custom scopes by name, with their descriptions.
    pub scopes: BTreeMap<String, String>,
    /// The APIs tokens may be issued for (RFC 8707), in the config's order.
    resources: Vec<Resource>,
    /// The resource each resource scope belongs to.
    scope_owners: HashMap<String, String>,
    /// The issuer's own web origin: its pages and scripts may always call the endpoints.
    issuer_origin: String,
    /// Every client's allowed origins: the origins a CORS preflight is answered for.
    origins: HashSet<String>,
    /// Sorted by id, looked up by binary search: no key copy and no hash-table slack
    /// per client, which is most of a large config's memory (issue 28).
    clients: Box<[Client]>,
    /// Users by username.
    users: HashMap<String, User>,
    /// Username by user id (`sub`).
    user_ids: HashMap<String, String>,
    /// (username, index in its `passkeys`) by credential id.
    credentials: HashMap<Vec<u8>, (String, usize)>,
    /// Upstream providers, in the order the config lists them (the login page's).
    providers: Vec<Provider>,
    /// User id by linked upstream identity (provider id, upstream subject).
    links: HashMap<(String, String), String>,
    /// Seals kept upstream tokens (`[federation] token_key`).
    pub token_key: Option<Arc<TokenKey>>,
    /// Workload platforms trusted for federated credentials, in the config's order.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// `[[client_metadata_documents]]`: the prefixes of clients registered by documents.
    client_documents: Vec<DocumentSource>,
}

/// The clients sorted by id (validation has made the ids unique), in a slice of
/// exactly their count.
fn sorted_by_id(mut clients: Vec<Client>) -> Box<[Client]> {
    clients.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    clients.into_boxed_slice()
}

impl Registry {
    /// Indexes a validated config. `fallback_key` signs when the config lists no keys.
    pub fn new(
        config: Validated,
        generation: u64,
        loaded_at: SystemTime,
        fallback_key: Option<Arc<SigningKey>>,
    ) -> Self {
        let mut keys: Vec<Arc<SigningKey>> = config.keys.into_iter().map(Arc::new).collect();
        if keys.is_empty() {
            keys.extend(fallback_key);
        }
        let origins = config
            .clients
            .iter()
            .flat_map(|c| c.allowed_origins.iter().cloned())
            .collect();
        Self {
            generation,
            loaded_at,
            config_sha256: None,
            // A validated issuer is an http(s) URL, so it has an origin.
            issuer_origin: origin::of_url(&config.issuer).unwrap_or_default(),
            origins,
            issuer: config.issuer,
            server: config.server,
            tokens: config.tokens,
            session: config.session,
            login: config.login,
            limits: config.limits,
            store: config.store,
            ui: config.ui,
            passkeys: config.passkeys,
            keys: KeySet::new(keys),
            scopes: config.scopes,
            scope_owners: config
                .resources
                .iter()
                .flat_map(|r| r.scopes.iter().map(|s| (s.clone(), r.id.clone())))
                .collect(),
            resources: config.resources,
            clients: sorted_by_id(config.clients),
            links: config
                .users
                .iter()
                .flat_map(|u| u.links.iter().map(|l| (l.clone(), u.id.clone())))
                .collect(),
            providers: config.providers,
            trusted_issuers: config.trusted_issuers,
            token_key: config.token_key,
            client_documents: config.client_documents,
            user_ids: config
                .users
                .iter()
                .map(|u| (u.id.clone(), u.username.clone()))
                .collect(),
            credentials: config
                .users
                .iter()
                .flat_map(|u| {
                    let passkeys = u.passkeys.iter().enumerate();
                    passkeys.map(|(i, p)| (p.credential_id.clone(), (u.username.clone(), i)))
                })
                .collect(),
            users: config
                .users
                .into_iter()
                .map(|u| (u.username.clone(), u))
                .collect(),
        }
    }

    /// This registry, recorded as built from the inputs whose digest is `fingerprint`.
    pub(crate) fn with_fingerprint(mut self, fingerprint: &[u8; 32]) -> Self {
        self.config_sha256 = Some(crate::crypto::hex(fingerprint));
        self
    }

    /// What `load::diff` compares: this generation's clients, users, keys (the
    /// signing one first), scopes and lifetimes.
    pub(crate) fn side(&self) -> Side<'_> {
        Side {
            clients: self.clients.iter().collect(),
            users: self.users.values().collect(),
            keys: self.keys.all().iter().map(Arc::as_ref).collect(),
            scopes: &self.scopes,
            tokens: &self.tokens,
            session: &self.session,
            login: &self.login,
            providers: self.providers.iter().collect(),
            resources: &self.resources,
            store: &self.store,
            trusted_issuers: &self.trusted_issuers,
            limits: &self.limits,
            issuer: &self.issuer,
            server: &self.server,
            templates_dir: self.ui.templates_dir.as_deref(),
            token_key: self.token_key.as_deref(),
            client_documents: &self.client_documents,
            rp_id: &self.passkeys.rp_id,
        }
    }

    /// What mints and verifies this generation's tokens.
    pub fn jwt(&self) -> crate::jwt::Issuer<'_> {
        crate::jwt::Issuer {
            issuer: &self.issuer,
            keys: &self.keys,
            id_token_ttl: self.tokens.id_token_ttl,
            generation: self.generation,
        }
    }

    /// The longest a refresh token can live: `[tokens]`'s or a client's own.
    pub(crate) fn longest_refresh_ttl(&self) -> std::time::Duration {
        self.clients
            .iter()
            .filter_map(|c| c.refresh_token_ttl)
            .fold(self.tokens.refresh_token_ttl, std::time::Duration::max)
    }

    /// The longest an access token of this generation can live (`[tokens]`'s, a
    /// client's or a resource's own lifetime).
    pub(crate) fn longest_access_ttl(&self) -> std::time::Duration {
        let clients = self.clients.iter().filter_map(|c| c.access_token_ttl);
        let resources = self.resources.iter().filter_map(|r| r.access_token_ttl);
        clients
            .chain(resources)
            .fold(self.tokens.access_token_ttl, std::time::Duration::max)
    }

    /// The longest any token of this generation can live (access, ID or refresh, a
    /// client's own lifetimes included).
    pub(crate) fn longest_token_ttl(&self) -> std::time::Duration {
        let t = &self.tokens;
        self.clients
            .iter()
            .flat_map(|c| [c.access_token_ttl, c.refresh_token_ttl])
            .flatten()
            .chain([t.access_token_ttl, t.id_token_ttl, t.refresh_token_ttl])
            .max()
            .unwrap_or_default()
    }

    /// The resource `id` (exact string).
    pub(crate) fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.id == id)
    }

    /// The resource the scope `scope` belongs to, if any.
    pub(crate) fn scope_owner(&self, scope: &str) -> Option<&str> {
        self.scope_owners.get(scope).map(String::as_str)
    }

    /// The trusted issuer with this id.
    pub(crate) fn trusted_issuer(&self, id: &str) -> Option<&TrustedIssuer> {
        self.trusted_issuers.iter().find(|t| t.id == id)
    }

    /// The upstream providers, in the config's order.
    pub(crate) fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider `id`.
    pub(crate) fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The user the upstream identity `subject` at `provider` is linked to.
    pub(crate) fn linked_user(&self, provider: &str, subject: &str) -> Option<&User> {
        self.links
            .get(&(provider.to_owned(), subject.to_owned()))
            .and_then(|id| self.user_by_id(id))
    }

    /// The client registered as `id`.
    pub(crate) fn client(&self, id: &str) -> Option<&Client> {
        let found = self.clients.binary_search_by(|c| c.id.as_str().cmp(id));
        found.ok().map(|i| &self.clients[i])
    }

    /// The `[[client_metadata_documents]]` entry whose prefix `client_id` starts with,
    /// for an id that is no configured client: its client is registered by the
    /// document at that URL.
    pub(crate) fn document_source(&self, client_id: &str) -> Option<&DocumentSource> {
        if self.client(client_id).is_some() {
            return None;
        }
        self.client_documents
            .iter()
            .find(|d| client_id.starts_with(&d.url_prefix))
    }

    /// True when clients may register by Client ID Metadata Documents.
    pub(crate) fn has_client_documents(&self) -> bool {
        !self.client_documents.is_empty()
    }

    /// All clients, in id order.
    pub(crate) fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// The user with login name `username`.
    pub(crate) fn user(&self, username: &str) -> Option<&User> {
        self.users.get(username)
    }

    /// The user whose stable id (`sub`) is `id`.
    pub(crate) fn user_by_id(&self, id: &str) -> Option<&User> {
        self.user_ids.get(id).and_then(|name| self.users.get(name))
    }

    /// All users, in no given order.
    pub(crate) fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The user a passkey belongs to, and the passkey, by its credential id.
    pub(crate) fn passkey(&self, credential_id: &[u8]) -> Option<(&User, &Passkey)> {
        let (username, i) = self.credentials.get(credential_id)?;
        let user = self.users.get(username)?;
        Some((user, user.passkeys.get(*i)?))
    }

    /// True when any user has a passkey (the login page then offers them).
    pub(crate) fn has_passkeys(&self) -> bool {
        !self.credentials.is_empty()
    }

    /// The number of users.
    pub(crate) fn user_count(&self) -> usize {
        self.users.len()
    }

    /// True when `origin` (a request's `Origin` header) is the issuer's own.
    pub(crate) fn is_own_origin(&self, origin: &str) -> bool {
        !self.issuer_origin.is_empty() && origin == self.issuer_origin
    }

    /// True when `origin` is allowed for at least one client: whether a CORS preflight,
    /// which names no client, is answered.
    pub(crate) fn origin_allowed_for_any(&self, origin: &str) -> bool {
        origin != "null" && self.origins.contains(origin)
    }
}

/// The URL of an endpoint at `path` (starting with `/`) under `issuer`.
pub(crate) fn endpoint(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}
