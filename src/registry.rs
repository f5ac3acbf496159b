//! The validated, indexed, immutable view of one config generation. Every request takes
//! one `Arc<Registry>` snapshot and uses only it, so a reload never mixes two configs.

use crate::config::Validated;
use crate::config::model::{GrantType, LimitsSection, TokensSection};
use crate::secret::VerifiedSecrets;
use crate::tokens::keys::SigningKey;
use crate::web::templates::Templates;
use actix_web::web::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// Scopes every server knows without declaring them.
pub const BUILTIN_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// How a confidential client proves itself. Holds no plaintext: a PHC hash, or the
/// SHA-256 of a secret read from env or a file.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// An argon2 PHC string, verified (slowly) then cached.
    Hash(String),
    /// SHA-256 of the secret, compared in constant time.
    Digest([u8; 32]),
}

impl ClientSecret {
    /// Keeps only the digest of a plaintext secret.
    pub fn plain(secret: &str) -> Self {
        Self::Digest(crate::secret::sha256(secret.as_bytes()))
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hash(_) => "ClientSecret::Hash(<redacted>)",
            Self::Digest(_) => "ClientSecret::Digest(<redacted>)",
        })
    }
}

/// A registered client, as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub public: bool,
    /// `None` exactly when the client is public.
    pub secret: Option<ClientSecret>,
    pub grant_types: Vec<GrantType>,
    /// The scopes the config lists: granted by client credentials when none are asked for.
    pub default_scopes: Vec<String>,
    /// The scopes the client may ask for (the listed ones, plus openid for login clients).
    pub allowed_scopes: Vec<String>,
    pub audience: Vec<String>,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// May introspect any token (a resource server), not only its own.
    pub introspect: bool,
}

impl Client {
    /// A fingerprint of the client's secret, `None` for public clients.
    pub fn credential_id(&self) -> Option<crate::store::CredentialId> {
        let digest = match self.secret.as_ref()? {
            ClientSecret::Hash(phc) => crate::secret::sha256(phc.as_bytes()),
            ClientSecret::Digest(d) => crate::secret::sha256(d),
        };
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        Some(id)
    }

    /// True when the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// A user who can log in.
#[derive(Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// One config generation, indexed for lookups and with its public documents pre-rendered.
pub struct Registry {
    pub issuer: String,
    pub bind: SocketAddr,
    /// The admin listener (read at start only).
    pub admin_bind: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::client_ip::Cidr>,
    pub tokens: TokensSection,
    /// How long a browser login lasts.
    pub session_ttl: std::time::Duration,
    pub limits: LimitsSection,
    pub product_name: String,
    pub templates: Templates,
    /// Which load this is (1 for the first), and when it was made.
    pub generation: u64,
    pub loaded_at: SystemTime,
    /// Signing keys; the first signs, all are published.
    pub keys: Vec<Arc<SigningKey>>,
    pub scopes: BTreeMap<String, String>,
    clients: HashMap<String, Client>,
    users: HashMap<String, User>,
    /// Username by user id (`sub`).
    user_ids: HashMap<String, String>,
    /// Verification keys by kid, for tokens this server issued.
    verifiers: HashMap<String, (jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>,
    /// When each client's secret last changed while this process ran (Unix seconds):
    /// access tokens issued to it before then are no longer active.
    pub secrets_rotated_at: HashMap<String, u64>,
    /// Client secrets verified under this generation (cleared by a reload).
    pub verified: VerifiedSecrets,
    /// The JWKS document, rendered once.
    pub jwks_json: Bytes,
    /// The RFC 8414 / OIDC discovery document, rendered once.
    pub discovery_json: Bytes,
}

impl Registry {
    /// Indexes a validated config. `fallback_key` signs when the config lists no keys.
    pub fn new(config: Validated, generation: u64, fallback_key: Option<Arc<SigningKey>>) -> Self {
        let mut keys: Vec<Arc<SigningKey>> = config.keys.into_iter().map(Arc::new).collect();
        if keys.is_empty() {
            keys.extend(fallback_key);
        }
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()
        });
        let discovery = crate::oauth::discovery::document(&config.issuer, &config.scopes, &keys);
        let verifiers = keys
            .iter()
            .filter_map(|k| verifier_of(k).map(|v| (k.kid().to_owned(), v)))
            .collect();
        Self {
            jwks_json: Bytes::from(jwks.to_string()),
            discovery_json: Bytes::from(discovery.to_string()),
            issuer: config.issuer,
            bind: config.bind,
            admin_bind: config.admin_bind,
            trusted_proxies: config.trusted_proxies,
            tokens: config.tokens,
            session_ttl: config.session.ttl,
            limits: config.limits,
            product_name: config.product_name,
            templates: config.templates,
            generation,
            loaded_at: SystemTime::now(),
            keys,
            scopes: config.scopes,
            clients: config
                .clients
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect(),
            user_ids: config
                .users
                .iter()
                .map(|u| (u.id.clone(), u.username.clone()))
                .collect(),
            users: config
                .users
                .into_iter()
                .map(|u| (u.username.clone(), u))
                .collect(),
            verifiers,
            secrets_rotated_at: HashMap::new(),
            verified: VerifiedSecrets::default(),
        }
    }

    /// Carries over from the generation before what still holds: for a client whose
    /// secret is unchanged, its verified-secret cache entry (so a reload causes no rush of
    /// argon2 hashing) and its last rotation time; for one whose secret changed, records
    /// `now` as its rotation time.
    pub fn carry_over(&mut self, previous: &Registry, now: u64) {
        for (id, client) in &self.clients {
            match previous.client(id) {
                Some(before) if before.credential_id() != client.credential_id() => {
                    self.secrets_rotated_at.insert(id.clone(), now);
                }
                Some(_) => {
                    self.verified.carry_from(&previous.verified, id);
                    if let Some(at) = previous.secrets_rotated_at.get(id) {
                        self.secrets_rotated_at.insert(id.clone(), *at);
                    }
                }
                None => {}
            }
        }
    }

    /// True when `client_id`'s tokens issued at `iat` still stand: the client exists
    /// and its secret has not been rotated since. Times are whole seconds, so a token
    /// issued in the second of a rotation counts as older than it.
    pub fn client_tokens_stand(&self, client_id: &str, iat: u64) -> bool {
        self.client(client_id).is_some()
            && self
                .secrets_rotated_at
                .get(client_id)
                .is_none_or(|at| iat > *at)
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.keys.first().map(Arc::as_ref)
    }

    /// The client registered as `id`.
    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    /// All clients, by id.
    pub fn clients(&self) -> &HashMap<String, Client> {
        &self.clients
    }

    /// The user with login name `username`.
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.get(username)
    }

    /// The user whose stable id (`sub`) is `id`.
    pub fn user_by_id(&self, id: &str) -> Option<&User> {
        self.user_ids.get(id).and_then(|name| self.users.get(name))
    }

    /// The key that verifies tokens signed under `kid`, with its algorithm.
    pub fn verifier(
        &self,
        kid: &str,
    ) -> Option<&(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)> {
        self.verifiers.get(kid)
    }

    /// The number of users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The address `req` comes from, believing `X-Forwarded-For` only from trusted proxies.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> std::net::IpAddr {
        let peer = req
            .peer_addr()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        crate::client_ip::resolve(peer, forwarded, &self.trusted_proxies)
    }

    /// The URL of an endpoint served at `path` under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        endpoint(&self.issuer, path)
    }
}

/// A jsonwebtoken verification key for one of our signing keys.
fn verifier_of(key: &SigningKey) -> Option<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)> {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk().clone()).ok()?;
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
    let alg = match key.algorithm() {
        crate::config::model::Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        crate::config::model::Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        crate::config::model::Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
    };
    Some((decoding, alg))
}

/// The URL of an endpoint at `path` (starting with `/`) under `issuer`.
pub fn endpoint(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}
