//! The rules that define a valid config, applied all at once so that every problem is
//! reported together: `validate` runs the checks of each table (`server`, `limits`,
//! `signing_keys`, `scopes`, `clients`, `secrets`, `users`, and `[store]` here) and
//! produces the resolved pieces a `Registry` is built from.

use super::clients::{Resolutions, check_clients};
use super::limits::{check_session_and_limits, check_ttls};
use super::report::Report;
use super::scopes::{check_client_resources, check_resources, check_scopes};
use super::secrets::{EnvRef, env_value, parse_env_ref};
use super::server::{admin_token, load_templates};
use super::signing_keys::load_keys;
use super::trusted_issuers;
use super::users::check_users;
use crate::config::file::{ConfigFile, LimitsSection, LoginSection, SessionSection, TokensSection};
use crate::config::report::{Issue, Sources};
use crate::jwt::keys::SigningKey;
use crate::model::{Client, Resource, User};
use crate::protocol::redirect_uri::check_issuer;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub(crate) use super::server::{ServerSettings, UiSettings};

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
    pub(crate) fn redacted(&self) -> String {
        match self {
            Self::Memory => "memory".to_owned(),
            Self::Redis(url) => redact_url(url),
            Self::File(path) => format!("file:{}", path.display()),
        }
    }

    /// True for a store replicas share.
    pub(crate) fn is_shared(&self) -> bool {
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

/// Everything a registry needs, resolved and checked.
pub struct Validated {
    pub issuer: String,
    pub server: ServerSettings,
    pub tokens: TokensSection,
    pub session: SessionSection,
    /// `[login]`: the second-factor policy.
    pub login: LoginSection,
    pub limits: LimitsSection,
    pub store: StoreSettings,
    pub ui: UiSettings,
    /// WebAuthn: the RP ID and the origin passkeys are checked against.
    pub passkeys: super::passkeys::PasskeySettings,
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
/// resolved config when there is no error (its `clients` empty: `clients::build` makes
/// them from the file's entries and what their checks resolved, returned beside it,
/// once the rest of the config is checked too), and every issue found either way.
pub(super) fn validate(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
) -> (Option<Validated>, Resolutions, Vec<Issue>) {
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
    let users = check_users(file, base_dir, sources, &mut r);
    let passkeys = super::passkeys::settings(file, &mut r);

    let has_error = r.0.iter().any(Issue::is_error);
    let validated = match (bind, templates, store, passkeys) {
        (Ok(bind), Some(templates), Some(store), Some(passkeys)) if !has_error => Some(Validated {
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
            login: file.login.clone(),
            limits: file.limits.clone(),
            store,
            ui: UiSettings {
                product_name: file.ui.product_name.clone(),
                templates,
                templates_dir: file.ui.templates_dir.clone(),
            },
            passkeys,
            keys,
            scopes,
            resources,
            // Built by `clients::build` once the whole config is valid.
            clients: Vec::new(),
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
    (validated, clients, r.0)
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
