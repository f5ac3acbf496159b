//! The config file as written by an operator: plain serde types, unknown keys refused.
//!
//! Nothing here is checked beyond its shape; `validate` turns a [`ConfigFile`] into the
//! model a `Registry` is built from and reports every rule it breaks.

use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

/// The whole config file, TOML or YAML.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Files that add `[[clients]]`, `[[users]]` and `[[scopes]]` (and nothing else),
    /// TOML or YAML: paths or globs relative to this file's directory, wildcards in the
    /// file name only (`clients.d/*.toml`). A glob may match nothing; a plain path must
    /// exist. Included files include nothing.
    #[serde(default)]
    pub(crate) include: Vec<String>,
    /// The issuer identifier (`iss`): an absolute https URL, http only on loopback hosts.
    pub(crate) issuer: String,
    #[serde(default)]
    pub(crate) server: ServerSection,
    #[serde(default)]
    pub(crate) tokens: TokensSection,
    #[serde(default)]
    pub(crate) session: SessionSection,
    /// How users sign in on gatehouse's own pages: second factors, passkeys.
    #[serde(default)]
    pub(crate) login: LoginSection,
    #[serde(default)]
    pub(crate) ui: UiSection,
    #[serde(default)]
    pub(crate) limits: LimitsSection,
    #[serde(default)]
    pub(crate) store: StoreSection,
    #[serde(default)]
    pub(crate) keys: Vec<KeyEntry>,
    #[serde(default)]
    pub(crate) scopes: Vec<ScopeEntry>,
    /// The APIs (RFC 8707 resource indicators) tokens may be issued for.
    #[serde(default)]
    pub(crate) resources: Vec<ResourceEntry>,
    #[serde(default)]
    #[schemars(with = "Vec<ClientEntry>")]
    pub(crate) clients: ClientEntries,
    #[serde(default)]
    pub(crate) users: Vec<UserEntry>,
    /// Upstream identity providers users may sign in through (OpenID Connect, GitHub).
    #[serde(default)]
    pub(crate) providers: Vec<ProviderEntry>,
    #[serde(default)]
    pub(crate) federation: FederationSection,
    /// Workload platforms whose tokens clients may present instead of an assertion
    /// (`federated_credentials`): a Kubernetes cluster, GitHub Actions, ...
    #[serde(default)]
    pub(crate) trusted_issuers: Vec<TrustedIssuerEntry>,
    /// Client ID Metadata Documents: clients whose `client_id` is an https URL under one
    /// of these prefixes, registered by the document published at that URL.
    #[serde(default)]
    pub(crate) client_metadata_documents: Vec<ClientMetadataDocumentEntry>,
}

/// `[[clients]]` as read, in file order, kept in the pieces they were parsed in
/// (`config::pieces`: a few hundred each; a file parsed whole is one piece), so that
/// building the model can free each piece once its clients are made instead of all the
/// entries at the end. Reads and prints as the one list it is.
#[derive(Clone, Default)]
pub(crate) struct ClientEntries(Vec<Vec<ClientEntry>>);

impl ClientEntries {
    /// The most bytes of entries a piece holds: a block the allocator keeps among its
    /// medium sizes (a larger one gets pages of its own, rounded up to 64 KiB: 139 KB of
    /// 256 entries took 192 KiB).
    pub(crate) const PIECE: usize = 64 << 10;

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    /// True when there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    /// The entries, in file order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ClientEntry> {
        self.0.iter().flatten()
    }

    /// Appends entries that come next in file order, in pieces of at most
    /// [`ClientEntries::PIECE`] bytes, each in a block of its size.
    pub(crate) fn push_piece(&mut self, entries: Vec<ClientEntry>) {
        let per_piece = (Self::PIECE / size_of::<ClientEntry>()).max(1);
        if entries.len() <= per_piece && entries.capacity() == entries.len() {
            if !entries.is_empty() {
                self.0.push(entries);
            }
            return;
        }
        let mut entries = entries.into_iter();
        loop {
            let piece: Vec<ClientEntry> = entries.by_ref().take(per_piece).collect();
            if piece.is_empty() {
                break;
            }
            self.0.push(piece);
        }
    }

    /// The pieces, in file order.
    pub(crate) fn into_pieces(self) -> Vec<Vec<ClientEntry>> {
        self.0
    }
}

impl std::fmt::Debug for ClientEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'de> Deserialize<'de> for ClientEntries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut entries = Self::default();
        entries.push_piece(Vec::deserialize(deserializer)?);
        Ok(entries)
    }
}

/// `[[trusted_issuers]]`: a platform that signs its workloads' identity tokens.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrustedIssuerEntry {
    /// The name clients' `federated_credentials` use.
    pub(crate) id: String,
    /// The tokens' `iss`, exactly.
    pub(crate) issuer: String,
    /// Where its JWK Set is; without it and `jwks_file`, found by OIDC discovery at
    /// `issuer + "/.well-known/openid-configuration"`.
    pub(crate) jwks_uri: Option<String>,
    /// Its JWK Set in a file (relative to the config file): for an issuer that cannot
    /// be reached (`kubectl get --raw /openid/v1/jwks`).
    pub(crate) jwks_file: Option<String>,
    /// The `aud` the tokens must carry; gatehouse's `issuer` when absent.
    pub(crate) audience: Option<String>,
    /// The oldest token accepted (`now - iat`); 1h when absent.
    #[serde(default, deserialize_with = "humantime_serde::optional")]
    #[schemars(with = "Option<String>")]
    pub(crate) max_token_age: Option<Duration>,
    /// PEM CA certificates trusted (besides the system's) when fetching its keys.
    pub(crate) ca_file: Option<String>,
    /// A file holding a bearer token sent, only to the issuer's own origin, when
    /// fetching its discovery document and keys (read at each fetch: it may rotate).
    pub(crate) bearer_token_file: Option<String>,
}

/// A file named by the main file's `include`: the lists a team may own, nothing more
/// (everything else belongs to the main file; an unknown key here is an error).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncludedFile {
    #[serde(default)]
    pub(crate) scopes: Vec<ScopeEntry>,
    #[serde(default)]
    #[schemars(with = "Vec<ClientEntry>")]
    pub(crate) clients: ClientEntries,
    #[serde(default)]
    pub(crate) users: Vec<UserEntry>,
}

/// `[server]`: where the HTTP listener binds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// Socket address of the listener; read at start only.
    #[serde(default = "default_bind")]
    pub(crate) bind: String,
    /// A separate listener for /metrics, /healthz and /readyz; read at start only.
    pub(crate) admin_bind: Option<String>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<String>,
    /// A file holding the token `gatehouse revoke` presents to the admin listener
    /// (at least 32 characters; `gatehouse hash-secret --generate` makes one), relative
    /// to this file. Needs `admin_bind`; without it, no revocation is taken.
    pub(crate) admin_token_file: Option<String>,
    /// RFC 9126: every client's authorization requests must be pushed (`/par`) and
    /// `/authorize` takes them only by `request_uri`.
    #[serde(default)]
    pub(crate) require_pushed_authorization_requests: bool,
    /// RFC 9449 8 and 9: DPoP proofs must carry a nonce the server provided (answered
    /// `use_dpop_nonce` with a `DPoP-Nonce` header); nonces rotate and need no shared state.
    #[serde(default)]
    pub(crate) dpop_nonce: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            admin_bind: None,
            trusted_proxies: Vec::new(),
            admin_token_file: None,
            require_pushed_authorization_requests: false,
            dpop_nonce: false,
        }
    }
}

fn default_bind() -> String {
    "127.0.0.1:8080".to_owned()
}

/// `[store]`: where the runtime state (codes, sessions, refresh tokens, counters) is
/// kept. Read at start only: a change is logged and applies at the next restart.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreSection {
    /// `"memory"` (this process only: one replica, development), `"file:PATH"` (an
    /// embedded database file: one instance whose state survives restarts) or
    /// `"redis://[user:password@]host:port/db"` (`rediss://` for TLS), shared by every
    /// replica; `"${env:NAME}"` reads it from the environment, so a password need not
    /// sit in the file.
    #[serde(default = "default_store_url")]
    pub(crate) url: String,
    /// Put in front of every Redis key, so several deployments can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub(crate) key_prefix: String,
    /// The embedded store's file (one instance that keeps its state across restarts;
    /// relative to the config file's directory): the same as `url = "file:PATH"`.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// PEM file of the CA that signed the Redis server's certificate (`rediss://`
    /// only; relative to the config file's directory). Without it the system's roots
    /// are trusted.
    #[serde(default)]
    pub(crate) ca_file: Option<String>,
    /// PEM certificate gatehouse presents to Redis (mutual TLS, `rediss://` only);
    /// with `client_key_file`.
    #[serde(default)]
    pub(crate) client_cert_file: Option<String>,
    /// PEM private key of `client_cert_file`.
    #[serde(default)]
    pub(crate) client_key_file: Option<String>,
    /// Redis Sentinel: the Sentinels (`"host:26379"`) that name the master of
    /// `master_name`; the store follows that master across a failover. `url` then gives
    /// the scheme (`rediss://`: TLS to the master and to the Sentinels, with `ca_file`
    /// and the client certificate), the user, password and database; its host is not
    /// used (write the master's name there: `redis://mymaster/0`).
    #[serde(default)]
    pub(crate) sentinels: Vec<String>,
    /// With `sentinels`: the name the Sentinels monitor the master under.
    #[serde(default)]
    pub(crate) master_name: Option<String>,
    /// With `sentinels`: the Sentinels' own password (`requirepass` in their
    /// sentinel.conf), as `"${env:NAME}"`; never logged.
    #[serde(default)]
    pub(crate) sentinel_password: Option<String>,
    /// A file whose content is the Sentinels' password (trailing newline trimmed),
    /// instead of `sentinel_password`.
    #[serde(default)]
    pub(crate) sentinel_password_file: Option<String>,
    /// Redis: how long a security-relevant write (a code redeemed, a refresh token
    /// rotated, a revocation, a not-before, a logout, a single-use `jti`) waits for one
    /// replica to confirm it (`WAIT 1`), when the master has replicas, so that a
    /// failover cannot lose it. Past it the answer goes out anyway (logged and counted:
    /// `gatehouse_store_replica_wait_timeouts_total`); `"0s"`: never wait.
    #[serde(
        default = "default_wait_for_replica",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_wait_for_replica())))]
    pub(crate) wait_for_replica: Duration,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            url: default_store_url(),
            key_prefix: default_key_prefix(),
            path: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            sentinels: Vec::new(),
            master_name: None,
            sentinel_password: None,
            sentinel_password_file: None,
            wait_for_replica: default_wait_for_replica(),
        }
    }
}

fn default_wait_for_replica() -> Duration {
    Duration::from_millis(100)
}

fn default_store_url() -> String {
    "memory".to_owned()
}

fn default_key_prefix() -> String {
    "gatehouse:".to_owned()
}

/// `[tokens]`: lifetimes of what the server issues, as human durations ("60s", "10m", "30d").
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokensSection {
    #[serde(
        default = "default_access_ttl",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_access_ttl())))]
    pub access_token_ttl: Duration,
    #[serde(
        default = "default_access_ttl",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_access_ttl())))]
    pub id_token_ttl: Duration,
    #[serde(
        default = "default_refresh_ttl",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_refresh_ttl())))]
    pub refresh_token_ttl: Duration,
    #[serde(
        default = "default_code_ttl",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_code_ttl())))]
    pub authorization_code_ttl: Duration,
    /// How long a device code (RFC 8628) waits for its user to approve it.
    #[serde(
        default = "default_device_code_ttl",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_device_code_ttl())))]
    pub device_code_ttl: Duration,
}

impl Default for TokensSection {
    fn default() -> Self {
        Self {
            access_token_ttl: default_access_ttl(),
            id_token_ttl: default_access_ttl(),
            refresh_token_ttl: default_refresh_ttl(),
            authorization_code_ttl: default_code_ttl(),
            device_code_ttl: default_device_code_ttl(),
        }
    }
}

fn default_access_ttl() -> Duration {
    Duration::from_secs(600)
}
fn default_refresh_ttl() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_code_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_device_code_ttl() -> Duration {
    Duration::from_secs(600)
}

/// `[session]`: browser login sessions.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    /// How long a login lasts before the password is asked again.
    #[serde(
        default = "default_session_ttl",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_session_ttl())))]
    pub ttl: Duration,
    /// How long an authorization request waits for the user to log in and consent
    /// before it expires (and its memory is freed).
    #[serde(
        default = "default_pending_ttl",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_pending_ttl())))]
    pub pending_ttl: Duration,
}

impl Default for SessionSection {
    fn default() -> Self {
        Self {
            ttl: default_session_ttl(),
            pending_ttl: default_pending_ttl(),
        }
    }
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}

fn default_pending_ttl() -> Duration {
    Duration::from_secs(10 * 60)
}

/// `[login]`: how users prove who they are.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginSection {
    /// Whether a password login needs a second factor (`totp_secret` of the user):
    /// `off` (never asked), `optional` (asked of every user who has one) or `required`
    /// (every password login needs one: a user without one is refused).
    #[serde(default)]
    pub second_factor: SecondFactorMode,
    /// The WebAuthn relying party id passkeys are bound to: the issuer's host, or a
    /// registrable suffix of it (`example.com` for `https://login.example.com`); the
    /// issuer's host when absent. Changing it makes every enrolled passkey unusable.
    pub rp_id: Option<String>,
}

/// `[login] second_factor`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactorMode {
    /// No second factor is asked after a password (a client's
    /// `require_second_factor` or `acr_values` may still ask for one).
    Off,
    /// Users who have a second factor must use it after their password.
    #[default]
    Optional,
    /// Every password login needs a second factor; a user without one is refused.
    Required,
}

impl SecondFactorMode {
    /// The name the config uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// `[ui]`: what the login, consent and error pages look like.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UiSection {
    /// The product name shown on every page.
    #[serde(default = "default_product_name")]
    pub(crate) product_name: String,
    /// A directory whose templates replace the built-in ones of the same name.
    pub(crate) templates_dir: Option<String>,
}

impl Default for UiSection {
    fn default() -> Self {
        Self {
            product_name: default_product_name(),
            templates_dir: None,
        }
    }
}

fn default_product_name() -> String {
    "gatehouse".to_owned()
}

/// `[limits]`: how hard the server pushes back on guessing and flooding.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Failed logins from one address before its further attempts are refused with 429
    /// until the window ends. A username (or an address) with half as many starts
    /// being slowed down; a username is never refused.
    #[serde(default = "default_login_max_failures")]
    pub login_max_failures: u32,
    /// The window in which failed logins are counted, from the first failure.
    #[serde(
        default = "default_failure_window",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_failure_window())))]
    pub login_failure_window: Duration,
    /// Failed client authentications (token, introspection, revocation) from one
    /// address before its further attempts are refused with 429 until the window ends,
    /// before the secret is hashed. A client id past half of it is slowed down, never
    /// refused.
    #[serde(default = "default_token_max_failures")]
    pub token_max_failures: u32,
    /// The window in which failed client authentications are counted.
    #[serde(
        default = "default_failure_window",
        deserialize_with = "humantime_serde::deserialize"
    )]
    #[schemars(with = "String", extend("default" = human(default_failure_window())))]
    pub token_failure_window: Duration,
    /// Requests per second one address may make to the HTML endpoints (authorize,
    /// login, consent, logout), with bursts up to `pages_burst`. Read at start only.
    #[serde(default = "default_pages_per_second")]
    pub pages_per_second: u32,
    #[serde(default = "default_pages_burst")]
    pub pages_burst: u32,
    /// Authorization requests one address may have waiting for a login or consent at
    /// once (within `[session] pending_ttl`); past it, 429.
    #[serde(default = "default_pending_per_address")]
    pub pending_per_address: u32,
    /// Authorization requests all addresses together may start within one
    /// `[session] pending_ttl`; past it, `temporarily_unavailable`.
    #[serde(default = "default_pending_total")]
    pub pending_total: u32,
    /// The IPv4 network every per-address limit counts together: addresses that share
    /// their first `ipv4_prefix` bits are one address for every limit (8 to 32).
    #[serde(default = "default_ipv4_prefix")]
    pub ipv4_prefix: u8,
    /// The same for IPv6 (16 to 128): a /64 is what one subscriber is routed.
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// Wrong user codes typed at `/device` from all networks together within
    /// `login_failure_window`; past it, every entry is refused (429) until the window
    /// ends, so many networks together cannot guess more than this.
    #[serde(default = "default_user_code_max_failures_total")]
    pub user_code_max_failures_total: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            login_max_failures: default_login_max_failures(),
            login_failure_window: default_failure_window(),
            token_max_failures: default_token_max_failures(),
            token_failure_window: default_failure_window(),
            pages_per_second: default_pages_per_second(),
            pages_burst: default_pages_burst(),
            pending_per_address: default_pending_per_address(),
            pending_total: default_pending_total(),
            ipv4_prefix: default_ipv4_prefix(),
            ipv6_prefix: default_ipv6_prefix(),
            user_code_max_failures_total: default_user_code_max_failures_total(),
        }
    }
}

fn default_login_max_failures() -> u32 {
    10
}

fn default_token_max_failures() -> u32 {
    20
}

fn default_failure_window() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_pages_per_second() -> u32 {
    10
}

fn default_pages_burst() -> u32 {
    30
}

fn default_pending_per_address() -> u32 {
    100
}

fn default_pending_total() -> u32 {
    20_000
}

fn default_ipv4_prefix() -> u8 {
    24
}

fn default_ipv6_prefix() -> u8 {
    64
}

fn default_user_code_max_failures_total() -> u32 {
    1_000
}

/// A default duration as the file writes it, for the schema.
fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde glue for human-readable durations, through the `humantime` parser.
mod humantime_serde {
    use serde::{Deserialize, Deserializer, de::Error};
    use std::time::Duration;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            D::Error::custom(format!(
                "invalid duration {text:?} ({e}); write it like \"60s\", \"10m\" or \"30d\""
            ))
        })
    }

    /// An optional duration: absent is `None`.
    pub(crate) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        deserialize(d).map(Some)
    }
}

/// Signature algorithms gatehouse signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, JsonSchema)]
pub enum Algorithm {
    #[default]
    ES256,
    EdDSA,
    RS256,
}

impl Algorithm {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}

/// `[[keys]]`: a signing key in a PKCS#8 PEM file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyEntry {
    /// The JWK `kid`; the RFC 7638 thumbprint of the public key when absent.
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) algorithm: Algorithm,
    /// Path of the PEM file, relative to the config file's directory.
    pub(crate) private_key_file: String,
    /// Signs new tokens. At most one key is active; without one, the first listed is.
    #[serde(default)]
    pub(crate) active: bool,
}

/// `[[scopes]]`: a custom scope a client may be allowed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeEntry {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
}

/// `[[resources]]`: an API tokens may be issued for (RFC 8707): a client names it in
/// `resource`, and the token's `aud` is its `id` and its scopes are the ones listed here.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceEntry {
    /// The resource indicator: an absolute URI without a fragment, compared as an exact
    /// string (`https://x` and `https://x/` are two resources); the token's `aud`.
    pub(crate) id: String,
    /// Shown on the consent page; the id when absent.
    pub(crate) name: Option<String>,
    /// The scopes that belong to this resource (declared in `[[scopes]]`, each in one
    /// resource at most): a token for another resource does not carry them.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// The lifetime of access tokens for this resource: the shorter of this and the
    /// client's (or `[tokens]`) applies. Absent: the client's.
    #[serde(default, deserialize_with = "humantime_serde::optional")]
    #[schemars(with = "Option<String>")]
    pub(crate) access_token_ttl: Option<Duration>,
}

/// OAuth grant types a client may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// The device authorization grant (RFC 8628), by its URN.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    /// Every grant type, in the order discovery lists them.
    pub(crate) const ALL: [GrantType; 4] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::DeviceCode,
    ];

    /// The grant type's name on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// The grant type a `grant_type` parameter names, if gatehouse implements it.
    pub(crate) fn from_param(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

fn default_grant_types() -> Box<[GrantType]> {
    Box::new([GrantType::AuthorizationCode, GrantType::RefreshToken])
}

/// `[[clients]]`: one OAuth client.
// (Not in the schema's description:) its strings and lists are boxed (`Box<str>`,
// `Box<[T]>`: no capacity word), as a big file's entries all exist at once while they
// are checked (376 bytes a client, 544 as `String`s and `Vec`s); each becomes the
// `Client`'s `String` or `Vec` in the same heap block.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientEntry {
    pub(crate) id: Box<str>,
    /// Display name, shown on consent pages; the id when absent.
    pub(crate) name: Option<Box<str>>,
    #[serde(default)]
    pub(crate) public: bool,
    /// argon2 PHC string of the secret, or a list of them, newest first: during a
    /// rotation the new hash and the old one, either of which authenticates.
    pub(crate) secret_hash: Option<OneOrMany>,
    /// The secret itself: `${env:NAME}` or a literal (warned about).
    pub(crate) secret: Option<Box<str>>,
    /// A file whose content is the secret (trailing newline trimmed), or a list of
    /// them, newest first (a rotation).
    pub(crate) secret_file: Option<OneOrMany>,
    #[serde(default = "default_grant_types")]
    pub(crate) grant_types: Box<[GrantType]>,
    #[serde(default)]
    pub(crate) scopes: Box<[String]>,
    #[serde(default)]
    pub(crate) audience: Box<[String]>,
    #[serde(default)]
    pub(crate) first_party: bool,
    #[serde(default)]
    pub(crate) redirect_uris: Box<[String]>,
    /// May introspect every token, not only those issued to it or naming it in `aud`.
    #[serde(default)]
    pub(crate) introspect: bool,
    /// Where RP-initiated logout may send the browser back to.
    #[serde(default)]
    pub(crate) post_logout_redirect_uris: Box<[String]>,
    /// Web origins (`scheme://host[:port]`) whose pages may call the token, userinfo
    /// and revocation endpoints for this client (CORS). Absent: a public client gets the
    /// origins of its `http(s)` redirect URIs, a confidential client none; `[]` is none.
    pub(crate) allowed_origins: Option<Box<[String]>>,
    /// The `[[providers]]` (by id) its users may sign in through. Absent: every
    /// provider; `[]`: none (passwords only).
    pub(crate) providers: Option<Box<[String]>>,
    /// The `[[resources]]` (by id) this client may ask tokens for (`resource`).
    #[serde(default)]
    pub(crate) resources: Box<[String]>,
    /// The lifetime of its access tokens, instead of `[tokens] access_token_ttl`.
    #[serde(default, deserialize_with = "humantime_serde::optional")]
    #[schemars(with = "Option<String>")]
    pub(crate) access_token_ttl: Option<Duration>,
    /// The lifetime of its refresh tokens, instead of `[tokens] refresh_token_ttl`.
    #[serde(default, deserialize_with = "humantime_serde::optional")]
    #[schemars(with = "Option<String>")]
    pub(crate) refresh_token_ttl: Option<Duration>,
    /// Its public keys, written in the config: a JWK Set (`{ keys = [ ... ] }`) of EC
    /// (P-256, P-384), OKP (Ed25519) or RSA public keys. The client authenticates with
    /// `private_key_jwt`. Never a private key: a private member (`d`, ...) is an error.
    pub(crate) jwks: Option<Box<JwkSet>>,
    /// A JSON file holding its JWK Set of public keys, relative to the file naming it.
    pub(crate) jwks_file: Option<Box<str>>,
    /// Where its JWK Set is published (https, or http on a loopback host): fetched
    /// when needed, cached, fetched again for a key it does not know (once a minute).
    pub(crate) jwks_uri: Option<Box<str>>,
    /// How it authenticates at the token endpoint. Implied by the other fields
    /// (`private_key_jwt` by `jwks*` or `federated_credentials`, `none` by `public`,
    /// a secret otherwise); when written, it must agree with them.
    pub(crate) token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Platform tokens accepted instead of a client assertion (workload identity
    /// federation): tokens of a `[[trusted_issuers]]` entry for a workload `subject`,
    /// with the listed `claims` equal.
    #[serde(default)]
    pub(crate) federated_credentials: Box<[FederatedCredentialEntry]>,
    /// An RFC 3339 time in UTC (`2026-12-04T10:00:00Z`): every code, refresh token and
    /// access token issued to this client at or before it stops working, on every
    /// replica and after any restart. Removing it (or moving it earlier) revives them.
    pub(crate) tokens_not_before: Option<Box<str>>,
    /// Where gatehouse POSTs a logout token (OIDC Back-Channel Logout 1.0) when a
    /// session this client got tokens in ends: https, or http on a loopback host; no
    /// fragment.
    pub(crate) backchannel_logout_uri: Option<Box<str>>,
    /// The client needs `sid` in its logout tokens (gatehouse always sends it for a
    /// session's end). Needs `backchannel_logout_uri`.
    #[serde(default)]
    pub(crate) backchannel_logout_session_required: bool,
    /// RFC 9126: its authorization requests must be pushed (`/par`); `/authorize`
    /// takes them only by `request_uri`.
    #[serde(default)]
    pub(crate) require_pushed_authorization_requests: bool,
    /// RFC 9449: it gets no token without a DPoP proof (every token it gets is bound to
    /// the proof's key). Any client that sends a proof gets bound tokens.
    #[serde(default)]
    pub(crate) dpop_bound_access_tokens: bool,
    /// Its logins need two factors: after a password, a second factor (the user's
    /// `totp_secret`), whatever `[login] second_factor` says; a user without one is
    /// refused for this client.
    #[serde(default)]
    pub(crate) require_second_factor: bool,
    /// A security profile the client follows, checked at load and enforced at run
    /// time: `fapi2` (FAPI 2.0 Security Profile; mTLS is not offered, DPoP is).
    pub(crate) profile: Option<ClientProfile>,
    /// The directory its relative `secret_file` paths start from, when it is not the
    /// main file's: that of the included file it is written in. Set by the loader.
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) base_dir: Option<std::sync::Arc<std::path::Path>>,
}

/// A JWK Set (RFC 7517 5) of public keys.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub(crate) struct JwkSet {
    /// The keys: objects with `kty` and its public members (`crv`, `x`, `y`; `n`, `e`),
    /// and optionally `kid`, `alg`, `use = "sig"`.
    pub(crate) keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A client's `profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClientProfile {
    /// FAPI 2.0 Security Profile: PAR, PKCE S256, DPoP, `private_key_jwt` for a
    /// confidential client, codes of at most 60 s, https redirect URIs.
    Fapi2,
}

/// `token_endpoint_auth_method` (RFC 7591 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

/// One `federated_credentials` entry of a client.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FederatedCredentialEntry {
    /// The `[[trusted_issuers]]` id whose tokens are accepted.
    pub(crate) issuer: String,
    /// The tokens' `sub`: the workload's identity at that issuer.
    pub(crate) subject: String,
    /// Further claims the tokens must carry with exactly these values.
    #[serde(default)]
    pub(crate) claims: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A string, or a list of strings: `secret_hash` and `secret_file`, which list two
/// secrets while one replaces the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OneOrMany {
    /// The values, in the order written.
    pub(crate) items: Box<[String]>,
    /// True when written as a list (diagnostics then name `field[i]`).
    pub(crate) listed: bool,
}

impl OneOrMany {
    /// The field path of item `i` of the field at `path`.
    pub(crate) fn item_path(&self, path: &str, i: usize) -> String {
        if self.listed {
            format!("{path}[{i}]")
        } else {
            path.to_owned()
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany {
                    items: Box::new([v.to_owned()]),
                    listed: false,
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany {
                    items: items.into_boxed_slice(),
                    listed: true,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One string, or a list of strings (newest first).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrManyShape {
    One(String),
    Many(Vec<String>),
}

impl JsonSchema for OneOrMany {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OneOrMany".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        OneOrManyShape::json_schema(generator)
    }
}

/// `[[users]]`: an end user who can log in.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserEntry {
    /// The stable subject (`sub`); the username when absent.
    pub(crate) id: Option<String>,
    pub(crate) username: String,
    /// argon2 PHC string of the password; may be left out for a user with `links`,
    /// who then signs in only through those providers, or with `passkeys`.
    pub(crate) password_hash: Option<String>,
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) email_verified: bool,
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// Upstream identities that sign in as this user: linking is a commit.
    #[serde(default)]
    pub(crate) links: Vec<LinkEntry>,
    /// An RFC 3339 time in UTC (`2026-12-04T10:00:00Z`): every session of this user
    /// begun at or before it ends, and every code, refresh token and access token
    /// issued from one stops working, on every replica and after any restart.
    pub(crate) tokens_not_before: Option<String>,
    /// The user's TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s), base32 (RFC 4648,
    /// case-insensitive, padding optional), at least 128 bits: `${env:NAME}`,
    /// `${file:PATH}` (relative to the main config file's directory), or the secret
    /// itself (warned about). `gatehouse totp new --user NAME` makes one.
    pub(crate) totp_secret: Option<String>,
    /// The user's passkeys (WebAuthn credentials), as `/account/passkeys` prints them
    /// for enrolment: public values, reviewed like any other change.
    #[serde(default)]
    pub(crate) passkeys: Vec<PasskeyEntry>,
}

/// One passkey of a `[[users]]` entry. Nothing here is secret.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasskeyEntry {
    /// A label for people (`"YubiKey 5C"`), shown in logs.
    pub(crate) name: String,
    /// The credential id, base64url without padding (1 to 1023 bytes); unique across
    /// all users.
    pub(crate) credential_id: String,
    /// The credential's public key as a COSE_Key (ES256, EdDSA or RS256), base64url
    /// without padding.
    pub(crate) public_key: String,
    /// The user handle the passkey was created with (`user.id`), base64url without
    /// padding (1 to 64 bytes): a passkey login must present it.
    pub(crate) user_handle: String,
}

/// One upstream identity linked to a `[[users]]` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkEntry {
    /// The `[[providers]]` id.
    pub(crate) provider: String,
    /// The subject the provider gives the user (`sub`; GitHub: the numeric user id).
    pub(crate) subject: String,
}

/// The kinds of upstream provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProviderKind {
    /// An OpenID Connect provider, found by discovery from its issuer.
    Oidc,
    /// GitHub (or GitHub Enterprise): OAuth 2 and its REST API.
    Github,
}

/// Who a provider lets in. No default: an open sign-up is never an accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Accept {
    /// Only upstream identities linked to a `[[users]]` entry (`links`).
    Linked,
    /// Linked identities, and anyone else the provider's rules accept, as
    /// `"<provider id>:<upstream subject>"`.
    Rules,
}

/// Which upstream claims give the user's attributes (OIDC providers).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimsEntry {
    #[serde(default = "claim_sub")]
    pub(crate) subject: String,
    #[serde(default = "claim_username")]
    pub(crate) username: String,
    #[serde(default = "claim_name")]
    pub(crate) name: String,
    #[serde(default = "claim_email")]
    pub(crate) email: String,
    #[serde(default = "claim_email_verified")]
    pub(crate) email_verified: String,
    #[serde(default = "claim_groups")]
    pub(crate) groups: String,
    /// The claim holding the URL of the user's picture (default `picture`), released
    /// with the `profile` scope as `picture` (OIDC Core 5.4) for a user the provider's
    /// rules let in.
    #[serde(default = "claim_picture")]
    pub(crate) picture: String,
}

impl Default for ClaimsEntry {
    fn default() -> Self {
        Self {
            subject: claim_sub(),
            username: claim_username(),
            name: claim_name(),
            email: claim_email(),
            email_verified: claim_email_verified(),
            groups: claim_groups(),
            picture: claim_picture(),
        }
    }
}

fn claim_sub() -> String {
    "sub".to_owned()
}
fn claim_username() -> String {
    "preferred_username".to_owned()
}
fn claim_name() -> String {
    "name".to_owned()
}
fn claim_email() -> String {
    "email".to_owned()
}
fn claim_email_verified() -> String {
    "email_verified".to_owned()
}
fn claim_groups() -> String {
    "groups".to_owned()
}
fn claim_picture() -> String {
    "picture".to_owned()
}

/// How upstream groups become gatehouse groups.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupsEntry {
    /// Put before every upstream group; `"<provider id>:"` when absent. Empty passes
    /// upstream names through as they are (`check` warns: dex#918).
    pub(crate) prefix: Option<String>,
    /// Only upstream groups matching this regular expression (whole name) are kept.
    pub(crate) filter: Option<String>,
    /// Groups every user of this provider gets, as written (no prefix).
    #[serde(default)]
    pub(crate) add: Vec<String>,
}

/// How a federated user's refresh tokens are bounded by the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RefreshMode {
    /// No upstream token is kept; a refresh family ends `max_age` after the upstream login.
    #[default]
    Cap,
    /// The upstream refresh token is kept (encrypted) and the upstream asked again at
    /// a refresh once `every` has passed since it last was.
    Revalidate,
}

/// `refresh = { mode = "cap", max_age = "12h" }` or `{ mode = "revalidate", every = "1h" }`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshEntry {
    #[serde(default)]
    pub(crate) mode: RefreshMode,
    /// `cap`: how long after the upstream login a refresh family lives ("12h").
    pub(crate) max_age: Option<String>,
    /// `revalidate`: how often a refresh asks the upstream again ("1h").
    pub(crate) every: Option<String>,
}

/// `[[providers]]`: an upstream identity provider users may sign in through.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderEntry {
    /// `[a-z0-9-]`: in the callback path (`/login/callback/<id>`) and in subjects.
    pub(crate) id: String,
    /// The button's label ("Sign in with <name>"); the id when absent.
    pub(crate) name: Option<String>,
    pub(crate) kind: ProviderKind,
    /// `oidc`: the issuer, https (http only on loopback hosts).
    pub(crate) issuer: Option<String>,
    pub(crate) client_id: String,
    /// `${env:NAME}` (a literal is warned about).
    pub(crate) client_secret: Option<String>,
    /// A file whose content is the secret (trailing newline trimmed).
    pub(crate) client_secret_file: Option<String>,
    /// Scopes asked for; `oidc`: openid, email, profile when absent; `github`:
    /// read:user, user:email, read:org.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// Who may come in: `linked` or `rules` (required).
    pub(crate) accept: Accept,
    /// `rules`: the email's domain must be one of these; the email counts only when
    /// the upstream says it is verified, unless `trust_email`.
    #[serde(default)]
    pub(crate) allowed_email_domains: Vec<String>,
    /// Believe the upstream's emails even without `email_verified`.
    #[serde(default)]
    pub(crate) trust_email: bool,
    /// `rules`: the user must be in one of these upstream groups (names as the upstream
    /// gives them, before the prefix).
    #[serde(default)]
    pub(crate) allowed_groups: Vec<String>,
    /// `rules`: claims that must have exactly these values (an Entra `tid`, say).
    #[serde(default)]
    pub(crate) required_claims: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) claims: ClaimsEntry,
    #[serde(default)]
    pub(crate) groups: GroupsEntry,
    /// The ID token signature algorithms accepted; RS256, PS256, ES256, EdDSA when
    /// absent. Never `none` or HS*.
    pub(crate) id_token_algorithms: Option<Vec<String>>,
    /// `github`: the REST API base (GitHub Enterprise: `https://HOST/api/v3`).
    pub(crate) api_url: Option<String>,
    /// `github`: the web base for authorize and access_token (`https://HOST`).
    pub(crate) web_url: Option<String>,
    #[serde(default)]
    pub(crate) refresh: RefreshEntry,
}

/// `[federation]`: settings shared by all providers.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FederationSection {
    /// The AES-256-GCM key (32 bytes, base64) upstream tokens are kept encrypted with:
    /// `${env:NAME}`. Needed when a provider has `refresh.mode = "revalidate"`.
    pub(crate) token_key: Option<String>,
}

/// `[[client_metadata_documents]]`: clients that register themselves by publishing a
/// Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document): a
/// `client_id` starting with `url_prefix` is the https URL of the document, fetched and
/// turned into a public client (PKCE, consent always shown) with at most these scopes
/// and resources.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientMetadataDocumentEntry {
    /// The URL prefix a `client_id` must start with (character for character): https
    /// with a host, ending in `/`; http only for a loopback host (127.0.0.1, [::1],
    /// localhost), where documents may also be fetched from loopback addresses.
    pub(crate) url_prefix: String,
    /// The most such clients may get: their document's `scope` is cut to these
    /// (`[[scopes]]` or built-in). Empty: `openid` alone.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// The resources (RFC 8707, declared in `[[resources]]`) such clients may ask for.
    #[serde(default)]
    pub(crate) resources: Vec<String>,
    /// A PEM file of extra certificate authorities trusted for these documents besides
    /// the system's: for tests and private PKI.
    pub(crate) ca_file: Option<String>,
}
