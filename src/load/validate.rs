//! The rules that define a valid config, applied all at once so that every problem is
//! reported together. Produces the resolved pieces a `Registry` is built from: secrets
//! read from env and files, key files parsed, hashes checked as PHC strings.

use super::report::Report;
use super::{client_keys, trusted_issuers};
use crate::config::file::{ConfigFile, GrantType, LimitsSection, SessionSection, TokensSection};
use crate::config::report::{Issue, Sources};
use crate::http::client_ip::Cidr;
use crate::jwt::keys::SigningKey;
use crate::model::{BUILTIN_SCOPES, Client, ClientAuth, ClientSecret, Resource, User};
use crate::protocol::redirect_uri::{check_issuer, check_registered};
use crate::protocol::{origin, resource};
use crate::templates::Templates;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// `[server]`, resolved: where to listen and whom to believe about addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// The admin listener for /metrics and the probes (read at start only).
    pub admin_bind: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The SHA-256 of the token of `admin_token_file`, which `gatehouse revoke`
    /// presents to the admin listener.
    pub admin_token: Option<AdminToken>,
    /// RFC 9126 for every client: `/authorize` only with a pushed request.
    pub require_par: bool,
    /// RFC 9449 server-provided nonces.
    pub dpop_nonce: bool,
}

/// The SHA-256 of the admin listener's token: compared in constant time, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(pub [u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// True when `presented` is the token, compared in constant time (of its hash).
    pub fn accepts(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(crate::crypto::sha256(presented.as_bytes()).ct_eq(&self.0))
    }
}

/// The shortest admin token accepted.
const MIN_ADMIN_TOKEN: usize = 32;

/// `[server] admin_token_file`, read (through `sources`, so a change reloads) and
/// hashed; an issue when it cannot be read, is short, or there is no admin listener.
fn admin_token(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<AdminToken> {
    let name = file.server.admin_token_file.as_ref()?;
    let path = "server.admin_token_file";
    if file.server.admin_bind.is_none() {
        r.error(
            path,
            "needs admin_bind: revocations are taken on the admin listener only",
        );
    }
    let text = match sources.read(&base_dir.join(name)) {
        Ok(text) => text,
        Err(e) => {
            r.error(path, format!("cannot read {name:?}: {e}"));
            return None;
        }
    };
    let token = text.trim_end_matches(['\n', '\r']);
    if token.chars().count() < MIN_ADMIN_TOKEN || token.chars().any(char::is_whitespace) {
        r.error(
            path,
            format!(
                "{name:?} must hold one token of at least {MIN_ADMIN_TOKEN} characters without whitespace (`gatehouse hash-secret --generate` makes one)"
            ),
        );
        return None;
    }
    Some(AdminToken(crate::crypto::sha256(token.as_bytes())))
}

/// `[store]`, resolved: which store keeps the runtime state (read at start only).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Memory or Redis.
    pub backend: StoreBackend,
    /// In front of every key of a shared store.
    pub key_prefix: String,
    /// For `rediss://`: the CA and the client certificate, read from their files.
    pub tls: StoreTls,
    /// Redis: the Sentinels that name the master (`[store] sentinels`), if any.
    pub sentinel: Option<StoreSentinel>,
    /// Redis: how long a security-relevant write waits for a replica (`WAIT 1`); zero:
    /// not at all.
    pub wait_for_replica: Duration,
}

/// `[store] ca_file`, `client_cert_file`, `client_key_file`, read (PEM). Never logged:
/// the key is a secret (`StoreSettings`'s `Debug` leaves it out).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreTls {
    /// The CA that signed Redis's certificate; `None`: the system's roots.
    pub ca: Option<Vec<u8>>,
    /// The client certificate and its key (mutual TLS).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

/// The Sentinels that name the Redis master, resolved. Never logged: `Debug` leaves the
/// password out.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSentinel {
    /// Each Sentinel's host and port.
    pub sentinels: Vec<(String, u16)>,
    /// The name the Sentinels monitor the master under.
    pub master_name: String,
    /// The Sentinels' own password (`requirepass` in sentinel.conf).
    pub password: Option<String>,
}

impl std::fmt::Debug for StoreSentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSentinel")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Where the runtime state lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// This process's memory: one replica.
    Memory,
    /// A Redis (or Valkey) server shared by every replica: the URL with its `${env:}`
    /// resolved, which may hold a password (never logged: `Debug` shows [`redacted`]).
    Redis(String),
    /// An embedded database file (`file:PATH` or `path`, relative to the config file's
    /// directory): one instance that keeps its state across restarts.
    File(std::path::PathBuf),
}

impl StoreBackend {
    /// The backend as it may be logged: a Redis URL without its password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Memory => "memory".to_owned(),
            Self::Redis(url) => redact_url(url),
            Self::File(path) => format!("file:{}", path.display()),
        }
    }

    /// The kind of store, as `/readyz` and the metrics name it: `memory`, `file` or
    /// `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
            Self::File(_) => "file",
        }
    }

    /// True for a store replicas share.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }
}

/// `url` with any password replaced by `***` (and the whole of it hidden when it does
/// not parse).
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(unparsable url)".to_owned(),
    }
}

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("backend", &self.backend)
            .field("key_prefix", &self.key_prefix)
            .field("sentinel", &self.sentinel)
            .field("wait_for_replica", &self.wait_for_replica)
            .finish()
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Memory,
            key_prefix: "gatehouse:".to_owned(),
            tls: StoreTls::default(),
            sentinel: None,
            wait_for_replica: Duration::from_millis(100),
        }
    }
}

/// `[ui]`, resolved: the product name and the compiled page templates.
pub struct UiSettings {
    pub product_name: String,
    pub templates: Templates,
    /// `[ui] templates_dir` as written, for `gatehouse diff`.
    pub templates_dir: Option<String>,
}

/// Everything a registry needs, resolved and checked.
pub struct Validated {
    pub issuer: String,
    pub server: ServerSettings,
    pub tokens: TokensSection,
    pub session: SessionSection,
    pub limits: LimitsSection,
    pub store: StoreSettings,
    pub ui: UiSettings,
    /// Signing keys; the one that signs comes first.
    pub keys: Vec<SigningKey>,
    /// Custom scopes by name, with their descriptions.
    pub scopes: BTreeMap<String, String>,
    /// The APIs tokens may be issued for (RFC 8707), in the order listed.
    pub resources: Vec<Resource>,
    pub clients: Vec<Client>,
    /// `[[client_metadata_documents]]`: the prefixes of clients registered by documents.
    pub client_documents: Vec<crate::model::DocumentSource>,
    pub users: Vec<User>,
    /// Workload platforms whose tokens authenticate clients (`federated_credentials`).
    pub trusted_issuers: Vec<crate::model::TrustedIssuer>,
    /// Upstream providers, in the order listed.
    pub providers: Vec<crate::upstream::provider::Provider>,
    /// `[federation] token_key`: seals kept upstream tokens.
    pub token_key: Option<std::sync::Arc<crate::upstream::seal::TokenKey>>,
}

/// Checks `file` and resolves what it references (relative to `base_dir`). Returns the
/// resolved config when there is no error, and every issue found either way.
pub fn validate(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
) -> (Option<Validated>, Vec<Issue>) {
    let mut r = Report::default();

    if let Err(e) = check_issuer(&file.issuer) {
        r.error("issuer", e);
    }
    let bind = file.server.bind.parse::<SocketAddr>().map_err(|e| {
        r.error(
            "server.bind",
            format!(
                "{:?} is not a socket address like 127.0.0.1:8080 ({e})",
                file.server.bind
            ),
        )
    });
    let admin_bind = match &file.server.admin_bind {
        Some(addr) => match addr.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                r.error(
                    "server.admin_bind",
                    format!("{addr:?} is not a socket address ({e})"),
                );
                None
            }
        },
        None => None,
    };
    let trusted_proxies = crate::load::proxies::trusted_proxies(file, &mut r.0);
    check_ttls(file, &mut r);
    crate::load::fapi::check_keys(file, &mut r);
    check_session_and_limits(file, &mut r);
    let admin_token = admin_token(file, base_dir, sources, &mut r);
    let templates = load_templates(file, base_dir, sources, &mut r);
    let keys = load_keys(file, base_dir, sources, &mut r);
    let store = check_store(file, base_dir, sources, &mut r);
    let scopes = check_scopes(file, &mut r);
    let resources = check_resources(file, &scopes, &mut r);
    let trusted_issuers = trusted_issuers::check(file, base_dir, sources, &mut r);
    let issuer_ids: Vec<String> = file.trusted_issuers.iter().map(|t| t.id.clone()).collect();
    let clients = check_clients(file, &scopes, &issuer_ids, base_dir, sources, &mut r);
    check_client_resources(file, &resources, &mut r);
    let users = check_users(file, &mut r);

    let has_error = r.0.iter().any(Issue::is_error);
    let validated = match (bind, templates, store) {
        (Ok(bind), Some(templates), Some(store)) if !has_error => Some(Validated {
            issuer: file.issuer.clone(),
            server: ServerSettings {
                bind,
                admin_bind,
                trusted_proxies,
                admin_token,
                require_par: file.server.require_pushed_authorization_requests,
                dpop_nonce: file.server.dpop_nonce,
            },
            tokens: file.tokens.clone(),
            session: file.session.clone(),
            limits: file.limits.clone(),
            store,
            ui: UiSettings {
                product_name: file.ui.product_name.clone(),
                templates,
                templates_dir: file.ui.templates_dir.clone(),
            },
            keys,
            scopes,
            resources,
            clients,
            // Filled in by `load::documents`, checked after this.
            client_documents: Vec::new(),
            users,
            trusted_issuers,
            // Filled in by `config::providers`, checked after this.
            providers: Vec::new(),
            token_key: None,
        }),
        _ => None,
    };
    (validated, r.0)
}

/// `[store]`: the URL (its `${env:NAME}` resolved) and the key prefix. A shared store
/// needs `[[keys]]`: an ephemeral key would differ per replica, so tokens signed by
/// one would not verify at another.
fn check_store(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<StoreSettings> {
    let section = &file.store;
    if let Some(path) = &section.path {
        return file_store(file, section, base_dir, path, "store.path", sources, r);
    }
    let url = match parse_env_ref(&section.url) {
        EnvRef::Literal => section.url.clone(),
        EnvRef::Name(_) if sources.is_offline() => {
            let tls_files = [
                &section.ca_file,
                &section.client_cert_file,
                &section.client_key_file,
            ];
            crate::load::offline::store_url(tls_files.iter().any(|f| f.is_some()))
        }
        EnvRef::Name(name) => env_value(name, "store.url", sources, r)?,
        EnvRef::Malformed => {
            r.error("store.url", "malformed reference; write \"${env:NAME}\"");
            return None;
        }
    };
    if let Some(path) = url.strip_prefix("file:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        return file_store(file, section, base_dir, path, "store.url", sources, r);
    }
    let backend = match url.split_once("://").map(|(scheme, _)| scheme) {
        None if url == "memory" => StoreBackend::Memory,
        Some("redis" | "rediss") => match url::Url::parse(&url) {
            Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => {
                if parsed.password().is_some()
                    && matches!(parse_env_ref(&section.url), EnvRef::Literal)
                {
                    r.warn(
                        "store.url",
                        "a password in the config file; use \"${env:NAME}\" to keep it out of git",
                    );
                }
                StoreBackend::Redis(url)
            }
            _ => {
                r.error(
                    "store.url",
                    format!(
                        "{} is not a Redis URL like redis://[user:password@]host:6379/0",
                        redact_url(&url)
                    ),
                );
                return None;
            }
        },
        _ => {
            r.error(
                "store.url",
                "must be \"memory\", \"file:/path/to/state.redb\" or a URL redis://[user:password@]host:port/db (rediss:// for TLS)",
            );
            return None;
        }
    };
    let prefix = &section.key_prefix;
    if prefix.len() > 64 || prefix.bytes().any(|b| !b.is_ascii_graphic()) {
        r.error(
            "store.key_prefix",
            "must be at most 64 printable ASCII characters without spaces",
        );
        return None;
    }
    if backend.is_shared() && file.keys.is_empty() {
        r.error(
            "store.url",
            "a shared store needs [[keys]]: every replica must sign with the same key, and an \
             ephemeral one differs per process. Make one with `gatehouse keygen --out signing.pem` \
             and add [[keys]] private_key_file = \"signing.pem\"",
        );
        return None;
    }
    let tls = store_tls(section, &backend, base_dir, sources, r)?;
    Some(StoreSettings {
        backend,
        key_prefix: prefix.clone(),
        tls,
        // `[store] sentinels` and `wait_for_replica`: `sentinel::apply`, after this.
        sentinel: None,
        wait_for_replica: Duration::ZERO,
    })
}

/// `[store] ca_file`, `client_cert_file`, `client_key_file`: only with `rediss://`,
/// the certificate and key together, each file read now (relative to `base_dir`).
fn store_tls(
    section: &crate::config::file::StoreSection,
    backend: &StoreBackend,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<StoreTls> {
    let fields = [
        ("store.ca_file", &section.ca_file),
        ("store.client_cert_file", &section.client_cert_file),
        ("store.client_key_file", &section.client_key_file),
    ];
    let tls_url = matches!(backend, StoreBackend::Redis(url) if url.starts_with("rediss://"));
    if !tls_url {
        if let Some((field, _)) = fields.iter().find(|(_, value)| value.is_some()) {
            r.error(*field, "needs a TLS store URL, rediss://host:port/db");
            return None;
        }
        return Some(StoreTls::default());
    }
    let mut read = |field: &str, file: &Option<String>| -> Option<Option<Vec<u8>>> {
        let Some(file) = file else { return Some(None) };
        if sources.is_offline() {
            return Some(Some(crate::load::offline::value(file).into_bytes()));
        }
        match sources.read(&base_dir.join(file)) {
            Ok(text) if text.contains("-----BEGIN ") => Some(Some(text.into_bytes())),
            Ok(_) => {
                r.error(field, format!("{file} is not a PEM file"));
                None
            }
            Err(e) => {
                r.error(field, format!("cannot read {file}: {e}"));
                None
            }
        }
    };
    let ca = read(fields[0].0, fields[0].1)?;
    let cert = read(fields[1].0, fields[1].1)?;
    let key = read(fields[2].0, fields[2].1)?;
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            r.error("store.client_cert_file", "needs client_key_file too");
            return None;
        }
        (None, Some(_)) => {
            r.error("store.client_key_file", "needs client_cert_file too");
            return None;
        }
    };
    Some(StoreTls { ca, client })
}

/// `[store] path` or `url = "file:PATH"`: the embedded store's file, relative to
/// `base_dir`. Not both `path` and a `url` other than the default. The file itself is
/// not looked at here (`gatehouse check` runs where the server's disk is not): opening
/// it at start says what is wrong. Without `[[keys]]` a warning: the state survives a restart, an ephemeral
/// signing key does not (access and ID tokens issued before it stop verifying).
fn file_store(
    file: &ConfigFile,
    section: &crate::config::file::StoreSection,
    base_dir: &Path,
    path: &str,
    field: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<StoreSettings> {
    if field == "store.path" && section.url != "memory" {
        r.error(
            "store.path",
            "set either `path` or `url`, not both (`url = \"file:PATH\"` is the same as `path`)",
        );
        return None;
    }
    if path.trim().is_empty() || path.len() > 4096 || path.contains('\0') {
        r.error(
            field,
            "must name a file, like \"/var/lib/gatehouse/state.redb\"",
        );
        return None;
    }
    let full = base_dir.join(path);
    if file.keys.is_empty() {
        r.warn(
            field,
            "the file store keeps sessions and refresh tokens across restarts, but the ephemeral \
             signing key does not: add [[keys]] (`gatehouse keygen`) so access and ID tokens \
             still verify after a restart",
        );
    }
    let backend = StoreBackend::File(full);
    let tls = store_tls(section, &backend, base_dir, sources, r)?;
    Some(StoreSettings {
        backend,
        key_prefix: section.key_prefix.clone(),
        tls,
        // `[store] sentinels` and `wait_for_replica`: `sentinel::apply`, after this.
        sentinel: None,
        wait_for_replica: Duration::ZERO,
    })
}

fn check_ttls(file: &ConfigFile, r: &mut Report) {
    let t = &file.tokens;
    for (name, ttl) in [
        ("access_token_ttl", t.access_token_ttl),
        ("id_token_ttl", t.id_token_ttl),
        ("refresh_token_ttl", t.refresh_token_ttl),
        ("authorization_code_ttl", t.authorization_code_ttl),
        ("device_code_ttl", t.device_code_ttl),
    ] {
        if ttl.as_secs() == 0 {
            r.error(format!("tokens.{name}"), "must be at least one second");
        }
    }
    if t.authorization_code_ttl.as_secs() > 600 {
        r.warn(
            "tokens.authorization_code_ttl",
            "longer than 10 minutes; authorization codes should be short-lived (RFC 6749 4.1.2)",
        );
    }
}

fn check_session_and_limits(file: &ConfigFile, r: &mut Report) {
    if file.session.ttl.as_secs() == 0 {
        r.error("session.ttl", "must be at least one second");
    }
    let pending = file.session.pending_ttl;
    if !(Duration::from_secs(10)..=Duration::from_secs(3600)).contains(&pending) {
        r.error(
            "session.pending_ttl",
            "must be between 10 seconds and 1 hour: it bounds how long unfinished logins are kept",
        );
    }
    let limits = &file.limits;
    for (name, value) in [
        ("login_max_failures", limits.login_max_failures),
        ("token_max_failures", limits.token_max_failures),
        ("pages_per_second", limits.pages_per_second),
        ("pages_burst", limits.pages_burst),
        ("pending_per_address", limits.pending_per_address),
        ("pending_total", limits.pending_total),
        (
            "user_code_max_failures_total",
            limits.user_code_max_failures_total,
        ),
    ] {
        if value == 0 {
            r.error(format!("limits.{name}"), "must be at least 1");
        }
    }
    for (name, value, range) in [
        ("ipv4_prefix", limits.ipv4_prefix, 8..=32),
        ("ipv6_prefix", limits.ipv6_prefix, 16..=128),
    ] {
        if !range.contains(&value) {
            r.error(
                format!("limits.{name}"),
                format!(
                    "must be between {} and {}: the network every per-address limit counts together",
                    range.start(),
                    range.end()
                ),
            );
        }
    }
    for (name, window) in [
        ("login_failure_window", limits.login_failure_window),
        ("token_failure_window", limits.token_failure_window),
    ] {
        if window.as_secs() == 0 {
            r.error(format!("limits.{name}"), "must be at least one second");
        }
    }
    if file.ui.product_name.trim().is_empty() {
        r.error("ui.product_name", "may not be empty");
    }
}

/// The built-in page templates, with any of the same name from `[ui] templates_dir`.
fn load_templates(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Templates> {
    let dir = file.ui.templates_dir.as_ref().map(|d| base_dir.join(d));
    if let Some(dir) = &dir {
        for name in Templates::names() {
            let path = dir.join(name);
            if !path.is_file() {
                sources.may_appear(path);
            }
        }
    }
    match Templates::load(dir.as_deref(), |path| sources.read(path)) {
        Ok(t) => Some(t),
        Err(problems) => {
            for problem in problems {
                r.error("ui.templates_dir", problem);
            }
            None
        }
    }
}

/// Parses every key; the signing key (the `active` one, else the first) comes first.
fn load_keys(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Vec<SigningKey> {
    let mut keys: Vec<SigningKey> = Vec::new();
    let mut active: Option<String> = None;
    for (i, entry) in file.keys.iter().enumerate() {
        let path = format!("keys[{i}]");
        if entry.active && active.is_some() {
            r.error(
                format!("{path}.active"),
                "only one key may be active (the one that signs)",
            );
        }
        if entry.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            r.error(
                format!("{path}.id"),
                "may not be empty (leave it out to use the key's thumbprint)",
            );
            continue;
        }
        let key_path = base_dir.join(&entry.private_key_file);
        let parsed = if sources.is_offline() {
            crate::load::offline::key(entry)
        } else {
            let text = match sources.read(&key_path) {
                Ok(t) => t,
                Err(e) => {
                    r.error(
                        format!("{path}.private_key_file"),
                        format!("cannot read {}: {e}", key_path.display()),
                    );
                    continue;
                }
            };
            SigningKey::from_pem(&text, entry.algorithm, entry.id.as_deref())
        };
        match parsed {
            Ok(key) => {
                if keys.iter().any(|k| k.kid() == key.kid()) {
                    r.error(
                        format!("{path}.id"),
                        format!("duplicate key id {:?}", key.kid()),
                    );
                } else {
                    if entry.active && active.is_none() {
                        active = Some(key.kid().to_owned());
                    }
                    keys.push(key);
                }
            }
            Err(e) => r.error(
                format!("{path}.private_key_file"),
                format!("{}: {e}", key_path.display()),
            ),
        }
    }
    if let Some(kid) = active
        && let Some(at) = keys.iter().position(|k| k.kid() == kid)
    {
        keys[..=at].rotate_right(1);
    }
    keys
}

/// RFC 6749 3.3 scope-token: printable ASCII except space, `"` and `\`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn check_scopes(file: &ConfigFile, r: &mut Report) -> BTreeMap<String, String> {
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
fn check_resources(
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
fn check_client_resources(file: &ConfigFile, resources: &[Resource], r: &mut Report) {
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

fn check_clients(
    file: &ConfigFile,
    scopes: &BTreeMap<String, String>,
    issuers: &[String],
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Vec<Client> {
    let mut seen: HashMap<&str, String> = HashMap::new();
    let mut clients = Vec::new();
    for (i, c) in file.clients.iter().enumerate() {
        let path = format!("clients[{i}]");
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
                at.clone(),
            );
        } else {
            seen.insert(&c.id, format!("{path}.id"));
        }

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
        let user_grant = grants.contains(&GrantType::AuthorizationCode)
            || grants.contains(&GrantType::DeviceCode);
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
        let allowed_origins = check_origins(c, &path, r);
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
        // A confidential client without a usable secret has an error reported, so the
        // config is rejected and this `None` never serves.
        client_keys::check_method(c, &path, r);
        let auth = if client_keys::declared(c) {
            match client_keys::resolve(c, &path, issuers, base_dir, sources, r) {
                Some(keys) => ClientAuth::Keys(keys),
                None => ClientAuth::None,
            }
        } else {
            match resolve_secret(c, &path, base_dir, sources, r) {
                Some(secrets) => ClientAuth::SharedSecret(secrets),
                None => ClientAuth::None,
            }
        };
        let mut allowed_scopes = c.scopes.clone();
        if user_grant && !allowed_scopes.iter().any(|s| s == "openid") {
            allowed_scopes.push("openid".to_owned());
        }
        clients.push(Client {
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
            backchannel_logout_uri: check_backchannel(c, &path, r),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            protections: crate::load::fapi::protections(c, &path, r),
        });
    }
    clients
}

/// A client's `allowed_origins`, checked; absent, a public client's default (the
/// origins of its `http(s)` redirect URIs) and a confidential client's (none).
fn check_origins(c: &crate::config::file::ClientEntry, path: &str, r: &mut Report) -> Vec<String> {
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

/// More secrets than this in one client's list draws a warning: a rotation needs two.
const ROTATION_SECRETS: usize = 2;

/// Resolves the secret source of a confidential client (one field, which for
/// `secret_hash` and `secret_file` may list several secrets, newest first); public
/// clients have none.
fn resolve_secret(
    c: &crate::config::file::ClientEntry,
    path: &str,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Vec<ClientSecret>> {
    let given: Vec<&str> = [
        c.secret_hash.as_ref().map(|_| "secret_hash"),
        c.secret.as_ref().map(|_| "secret"),
        c.secret_file.as_ref().map(|_| "secret_file"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if c.public {
        if let Some(field) = given.first() {
            r.error(
                format!("{path}.{field}"),
                "a public client has no secret; remove it or set public = false",
            );
        }
        return None;
    }
    match given.as_slice() {
        [] => {
            r.error(
                format!("{path}.secret_hash"),
                "a confidential client needs one of secret_hash, secret or secret_file (or set public = true)",
            );
            return None;
        }
        [_] => {}
        [_, second, ..] => {
            r.error(
                format!("{path}.{second}"),
                format!(
                    "give exactly one of secret_hash, secret, secret_file; found {}",
                    given.join(", ")
                ),
            );
            return None;
        }
    }
    let base_dir = c.base_dir.as_deref().unwrap_or(base_dir);
    let (field, secrets) = if let Some(hashes) = &c.secret_hash {
        let field = format!("{path}.secret_hash");
        let secrets = hashes.items.iter().enumerate().map(|(j, hash)| {
            check_phc(hash)
                .map(|()| ClientSecret::Hash(hash.clone()))
                .map_err(|e| r.error(hashes.item_path(&field, j), e))
                .ok()
        });
        let secrets: Vec<Option<ClientSecret>> = secrets.collect();
        (field, (hashes, secrets))
    } else if let Some(files) = &c.secret_file {
        let field = format!("{path}.secret_file");
        let mut secrets = Vec::new();
        for (j, name) in files.items.iter().enumerate() {
            let item = files.item_path(&field, j);
            secrets.push(read_secret_file(&base_dir.join(name), &item, sources, r));
        }
        (field, (files, secrets))
    } else {
        return env_or_literal_secret(c, path, sources, r).map(|s| vec![s]);
    };
    let (listed, secrets) = secrets;
    if listed.items.is_empty() {
        r.error(field, "list at least one secret");
        return None;
    }
    if listed.items.len() > ROTATION_SECRETS {
        r.warn(
            field.clone(),
            format!(
                "lists {} secrets: a rotation needs two (the new one first, then the old one); remove those no service uses any more",
                listed.items.len()
            ),
        );
    }
    let mut resolved: Vec<ClientSecret> = Vec::new();
    let mut complete = true;
    for (j, secret) in secrets.into_iter().enumerate() {
        match secret {
            Some(s) if resolved.contains(&s) => {
                r.error(
                    listed.item_path(&field, j),
                    "the same secret is listed twice",
                );
                complete = false;
            }
            Some(s) => resolved.push(s),
            None => complete = false,
        }
    }
    complete.then_some(resolved)
}

/// The secret in the file at `full`, trailing newline trimmed; errors are reported at
/// `field`.
fn read_secret_file(
    full: &Path,
    field: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<ClientSecret> {
    if sources.is_offline() {
        return Some(ClientSecret::plain(&crate::load::offline::value(
            &full.to_string_lossy(),
        )));
    }
    match sources.read(full) {
        Ok(text) => {
            let plain = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            plain_secret(plain, field, r)
        }
        Err(e) => {
            r.error(field, format!("cannot read {}: {e}", full.display()));
            None
        }
    }
}

/// The secret of `secret = "${env:NAME}"` (or a literal, warned about).
fn env_or_literal_secret(
    c: &crate::config::file::ClientEntry,
    path: &str,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<ClientSecret> {
    let value = c.secret.as_deref()?;
    let field = format!("{path}.secret");
    let plain = match parse_env_ref(value) {
        EnvRef::Name(name) => env_value(name, &field, sources, r)?,
        EnvRef::Malformed => {
            r.error(field, "malformed reference; write \"${env:NAME}\"");
            return None;
        }
        EnvRef::Literal => {
            r.warn(
                field.clone(),
                "a literal secret in the config file; store its hash (gatehouse hash-secret) or use \"${env:NAME}\"",
            );
            value.to_owned()
        }
    };
    plain_secret(&plain, &field, r)
}

/// Shortest secret kept as itself (`secret`, `secret_file`) that draws no warning. Such a
/// secret is stored as a fast SHA-256, and a fingerprint derived from it travels in the
/// client's access tokens (`cred`): only a random secret keeps it out of reach of
/// offline guessing. `gatehouse hash-secret --generate` makes 256-bit ones.
const MIN_PLAIN_SECRET_CHARS: usize = 32;

/// A secret kept as itself (from the environment or a file), or an error when empty and
/// a warning when too short to be a random one.
fn plain_secret(plain: &str, field: &str, r: &mut Report) -> Option<ClientSecret> {
    if plain.is_empty() {
        r.error(field, "the secret is empty");
        return None;
    }
    if plain.chars().count() < MIN_PLAIN_SECRET_CHARS {
        r.warn(
            field,
            format!(
                "a secret kept as itself should be random and at least {MIN_PLAIN_SECRET_CHARS} characters (`gatehouse hash-secret --generate` makes one), or use secret_hash"
            ),
        );
    }
    Some(ClientSecret::plain(plain))
}

/// The value of the environment variable `name` that `field` refers to (noted in the
/// config's fingerprint), or an error at `field` when it is not set.
fn env_value(name: &str, field: &str, sources: &mut Sources, r: &mut Report) -> Option<String> {
    if sources.is_offline() {
        return Some(crate::load::offline::value(name));
    }
    match std::env::var(name) {
        Ok(v) => {
            sources.note(name.as_bytes(), v.as_bytes());
            Some(v)
        }
        Err(_) => {
            r.error(field, format!("environment variable {name} is not set"));
            None
        }
    }
}

pub(super) enum EnvRef<'a> {
    Name(&'a str),
    Malformed,
    Literal,
}

pub(super) fn parse_env_ref(value: &str) -> EnvRef<'_> {
    let Some(rest) = value.strip_prefix("${") else {
        return EnvRef::Literal;
    };
    match rest.strip_prefix("env:").and_then(|r| r.strip_suffix('}')) {
        Some(name)
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            EnvRef::Name(name)
        }
        _ => EnvRef::Malformed,
    }
}

/// Checks that `hash` is an argon2 PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
pub fn check_phc(hash: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(hash).map_err(|e| {
        format!("not a PHC hash string ({e}); make one with `gatehouse hash-secret`")
    })?;
    let alg = parsed.algorithm.as_str();
    if !matches!(alg, "argon2id" | "argon2i" | "argon2d") {
        return Err(format!(
            "hash algorithm {alg:?} is not argon2; make one with `gatehouse hash-secret`"
        ));
    }
    argon2::Params::try_from(&parsed)
        .map_err(|e| format!("argon2 parameters are invalid ({e})"))?;
    Ok(())
}

fn check_users(file: &ConfigFile, r: &mut Report) -> Vec<User> {
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

/// A client's `backchannel_logout_uri`, checked (https, or http on a loopback host; no
/// fragment, no credentials), and `backchannel_logout_session_required` only with it.
fn check_backchannel(
    c: &crate::config::file::ClientEntry,
    path: &str,
    r: &mut Report,
) -> Option<String> {
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

/// A `tokens_not_before` as Unix seconds; an issue at `path` when it is not an RFC 3339
/// time in UTC.
fn check_not_before(value: Option<&str>, path: &str, r: &mut Report) -> Option<u64> {
    match parse_not_before(value?) {
        Ok(at) => Some(at),
        Err(e) => {
            r.error(path.to_owned(), e);
            None
        }
    }
}

/// Reads an RFC 3339 time in UTC (`2026-12-04T10:00:00Z`, fractions allowed) as
/// whole Unix seconds.
pub fn parse_not_before(value: &str) -> Result<u64, String> {
    let bad = || format!("{value:?} is not an RFC 3339 time in UTC, like \"2026-12-04T10:00:00Z\"");
    let at = humantime::parse_rfc3339(value).map_err(|_| bad())?;
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use crate::load::validate::*;

    #[test]
    fn tokens_not_before_is_an_rfc3339_utc_time() {
        assert_eq!(parse_not_before("2026-12-04T10:00:00Z"), Ok(1_796_378_400));
        assert_eq!(
            parse_not_before("2026-12-04T10:00:00.9Z"),
            Ok(1_796_378_400)
        );
        for bad in ["2026-12-04", "2026-12-04T10:00:00+01:00", "yesterday", ""] {
            assert!(parse_not_before(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_references() {
        assert!(matches!(
            parse_env_ref("${env:BILLING_SECRET}"),
            EnvRef::Name("BILLING_SECRET")
        ));
        assert!(matches!(parse_env_ref("${env:}"), EnvRef::Malformed));
        assert!(matches!(parse_env_ref("${BILLING}"), EnvRef::Malformed));
        assert!(matches!(parse_env_ref("${env:A-B}"), EnvRef::Malformed));
        assert!(matches!(parse_env_ref("plain-secret"), EnvRef::Literal));
    }

    #[test]
    fn scope_tokens() {
        assert!(is_scope_token("invoices:read"));
        assert!(!is_scope_token("two words"));
        assert!(!is_scope_token(""));
        assert!(!is_scope_token("quote\""));
    }

    #[test]
    fn phc_strings() {
        assert!(check_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0hBjGbGFQ1ZnTgiTvtFVmAyG5mPMVYVC0QPcXkmOqQc").is_ok());
        assert!(check_phc("$2b$12$abcdefghijklmnopqrstuv").is_err());
        assert!(check_phc("not a hash").is_err());
    }
}
