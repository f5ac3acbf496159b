//! The model the server works with, built from a validated config: clients and how they
//! authenticate, local users, and the identity snapshot that sessions, codes and tokens
//! carry. Plain data with small pure methods; nothing here knows HTTP or the store.

use crate::config::file::GrantType;
use crate::crypto::sha256;
use crate::protocol::client_metadata::{Registration, grantable_scopes};
use crate::protocol::jwk::PublicJwk;
use crate::protocol::origin;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Scopes every server knows without declaring them.
pub(crate) const BUILTIN_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// One secret a confidential client may present. Holds no plaintext: a PHC hash, or
/// the SHA-256 of a secret read from env or a file, with its fingerprint worked out
/// once at load (every token request and every standing check compares fingerprints).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret {
    kind: SecretKind,
    fingerprint: CredentialId,
}

/// What a [`ClientSecret`] keeps.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum SecretKind {
    /// An argon2 PHC string, verified (slowly) then cached.
    Hash(String),
    /// SHA-256 of the secret, compared in constant time.
    Digest([u8; 32]),
}

impl ClientSecret {
    /// A listed argon2 PHC string.
    pub(crate) fn hash(phc: String) -> Self {
        let fingerprint = short(&sha256(phc.as_bytes()));
        Self {
            kind: SecretKind::Hash(phc),
            fingerprint,
        }
    }

    /// Keeps only the digest of a plaintext secret.
    pub(crate) fn plain(secret: &str) -> Self {
        let digest = sha256(secret.as_bytes());
        Self {
            fingerprint: short(&sha256(&digest)),
            kind: SecretKind::Digest(digest),
        }
    }

    /// The PHC hash or the digest.
    pub(crate) fn kind(&self) -> &SecretKind {
        &self.kind
    }

    /// The fingerprint of this secret (never the secret): what a token issued under it
    /// records, so that it stands exactly while the client still lists this secret.
    /// For a PHC hash it is derived from the whole string, whose salt nobody outside
    /// the config knows; for a digest, from the digest (so a secret kept in env or a
    /// file must be a random one, as `gatehouse hash-secret` makes).
    pub(crate) fn fingerprint(&self) -> CredentialId {
        self.fingerprint
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            SecretKind::Hash(_) => "ClientSecret::Hash(<redacted>)",
            SecretKind::Digest(_) => "ClientSecret::Digest(<redacted>)",
        })
    }
}

/// A token-endpoint authentication method (RFC 7591 2 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    /// HTTP Basic with the client id and a shared secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `client_id` alone: a public client.
    None,
    /// A JWT the client signs with its private key (RFC 7523 2.2, OIDC Core 9), or a
    /// platform's token for a client with federated credentials.
    PrivateKeyJwt,
}

impl AuthMethod {
    /// Every method the server implements, in the order discovery lists them.
    pub(crate) const ALL: [AuthMethod; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
    ];

    /// The registered name (`client_secret_basic`, ...).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// How a client proves who it is. Adding a method (`private_key_jwt`) is one more
/// variant here, its `methods`, and its check in `oauth::client_auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// A public client (SPA, CLI): its id alone, no secret.
    None,
    /// A confidential client with shared secrets, newest first (never empty): during a
    /// rotation the old secret and the new one are both listed, and either
    /// authenticates.
    SharedSecret(Vec<ClientSecret>),
    /// A confidential client that signs assertions with its private key
    /// (`private_key_jwt`): the config holds its public keys, or where to fetch them.
    /// Or, with federated credentials, a workload whose platform's tokens stand in
    /// for an assertion (`Federated`).
    Keys(ClientKeys),
}

/// Where a `private_key_jwt` client's public keys come from, or which platform tokens
/// a federated client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// Listed in the config (`jwks`, `jwks_file`).
    Listed(Vec<PublicJwk>),
    /// Fetched from the client's `jwks_uri`.
    Uri(String),
    /// Platform tokens from trusted issuers (`federated_credentials`), none of them
    /// empty.
    Federated(Vec<FederatedCredential>),
}

/// A `[[trusted_issuers]]` entry, validated: a workload platform whose tokens stand in
/// for client assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    pub id: String,
    /// The tokens' `iss`.
    pub issuer: String,
    pub keys: IssuerKeys,
    /// The `aud` its tokens must carry.
    pub audience: String,
    /// The oldest token accepted, in seconds since its `iat`.
    pub max_token_age: u64,
    /// PEM CA certificates for its https, besides the system's.
    pub ca_pem: Option<std::sync::Arc<Vec<u8>>>,
    /// The file whose content is sent as a bearer token to the issuer's origin.
    pub bearer_token_file: Option<std::path::PathBuf>,
}

/// Where a trusted issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerKeys {
    /// Listed in a file of the config.
    Listed(Vec<PublicJwk>),
    /// At this URL.
    Uri(String),
    /// At the `jwks_uri` of the issuer's OIDC discovery document.
    Discovery,
}

/// One `federated_credentials` entry: tokens of the trusted issuer `issuer` (by its
/// id) for the workload `subject`, with these claims equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    /// The `[[trusted_issuers]]` id.
    pub issuer: String,
    pub subject: String,
    /// Claim names and the values they must have, sorted by name.
    pub claims: Vec<(String, serde_json::Value)>,
}

impl FederatedCredential {
    /// The credential a token issued under it records.
    pub(crate) fn fingerprint(&self) -> CredentialId {
        let canonical = serde_json::json!([self.issuer, self.subject, self.claims]).to_string();
        short(&sha256(canonical.as_bytes()))
    }
}

fn short(digest: &[u8; 32]) -> CredentialId {
    let mut id = [0; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The credential a token issued under the key with RFC 7638 `thumbprint` records.
pub(crate) fn key_fingerprint(thumbprint: &str) -> CredentialId {
    short(&sha256(format!("jwk:{thumbprint}").as_bytes()))
}

/// The credential a token of a client whose keys are at `uri` records (the keys there
/// change without the config: the address is what the config vouches for).
pub(crate) fn uri_fingerprint(uri: &str) -> CredentialId {
    short(&sha256(format!("jwks_uri:{uri}").as_bytes()))
}

impl ClientKeys {
    /// The credentials tokens of such a client may stand under.
    pub(crate) fn credentials(&self) -> Vec<CredentialId> {
        match self {
            Self::Listed(keys) => keys
                .iter()
                .map(|k| key_fingerprint(&k.thumbprint))
                .collect(),
            Self::Uri(uri) => vec![uri_fingerprint(uri)],
            Self::Federated(creds) => creds.iter().map(FederatedCredential::fingerprint).collect(),
        }
    }
}

impl ClientAuth {
    /// The token-endpoint methods a client authenticating this way may use.
    #[cfg(test)]
    pub(crate) fn methods(&self) -> &'static [AuthMethod] {
        match self {
            Self::None => &[AuthMethod::None],
            Self::SharedSecret(_) => &[AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost],
            Self::Keys(_) => &[AuthMethod::PrivateKeyJwt],
        }
    }

    /// The methods of confidential clients: what introspection accepts.
    pub(crate) fn confidential_methods() -> &'static [AuthMethod] {
        &[
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::PrivateKeyJwt,
        ]
    }
}

/// A short fingerprint of one of a client's secrets (never the secret): which secret a
/// token was issued under, so that removing that secret ends the token and adding
/// another one does not.
pub(crate) type CredentialId = [u8; 16];

/// A registered client, as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub auth: ClientAuth,
    pub grant_types: Vec<GrantType>,
    /// The scopes the config lists: granted by client credentials when none are asked for.
    pub default_scopes: Vec<String>,
    /// The scopes the client may ask for (the listed ones, plus openid for login clients).
    pub allowed_scopes: Vec<String>,
    /// The configured `aud` of its tokens; empty means the client itself.
    pub audience: Vec<String>,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The web origins whose pages may call the token, userinfo and revocation
    /// endpoints for this client (CORS), as browsers write them; defaults resolved.
    pub allowed_origins: Vec<String>,
    /// May introspect any token (a resource server), not only its own.
    pub introspect: bool,
    /// The upstream providers its users may sign in through; `None`: all of them.
    pub providers: Option<Vec<String>>,
    /// The resources (RFC 8707, by id) it may ask tokens for.
    pub resources: Vec<String>,
    /// Its access tokens' lifetime, when it has its own.
    pub access_token_ttl: Option<Duration>,
    /// Its refresh tokens' lifetime, when it has its own.
    pub refresh_token_ttl: Option<Duration>,
    /// For a client registered by a Client ID Metadata Document: the host that
    /// published it (the consent page names it). `None` for a configured client.
    pub document_host: Option<String>,
    /// `tokens_not_before` (Unix seconds): its codes, refresh families and access
    /// tokens issued at or before it no longer stand.
    pub tokens_not_before: Option<u64>,
    /// Where its logout tokens go when a session it got tokens in ends.
    pub backchannel_logout_uri: Option<String>,
    /// It needs `sid` in its logout tokens.
    pub backchannel_logout_session_required: bool,
    /// PAR, DPoP and the FAPI 2.0 profile, as the client's entry asks.
    pub protections: Protections,
}

/// What a client demands of its own requests and tokens beyond the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protections {
    /// RFC 9126: `/authorize` only with a pushed request.
    pub require_par: bool,
    /// RFC 9449: no token without a DPoP proof.
    pub dpop_bound: bool,
    /// The FAPI 2.0 Security Profile (checked at load, enforced at run time).
    pub fapi2: bool,
    /// `require_second_factor`: its logins need two factors.
    pub second_factor: bool,
}

impl Client {
    /// The client a Client ID Metadata Document registers under `source`: public
    /// (PKCE), never first-party, the authorization-code and refresh grants, its scopes
    /// those of its document the entry allows, the entry's resources.
    pub(crate) fn from_document(doc: &Registration, source: &DocumentSource) -> Self {
        let mut scopes = grantable_scopes(doc.scopes.as_deref(), &source.scopes);
        if !scopes.iter().any(|s| s == "openid") {
            scopes.push("openid".to_owned());
        }
        Self {
            id: doc.client_id.clone(),
            name: doc.name.clone().unwrap_or_else(|| doc.host.clone()),
            auth: ClientAuth::None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            default_scopes: Vec::new(),
            allowed_scopes: scopes,
            audience: Vec::new(),
            first_party: false,
            redirect_uris: doc.redirect_uris.clone(),
            post_logout_redirect_uris: Vec::new(),
            allowed_origins: Vec::new(),
            introspect: false,
            providers: None,
            resources: source.resources.clone(),
            access_token_ttl: None,
            refresh_token_ttl: None,
            document_host: Some(doc.host.clone()),
            tokens_not_before: None,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            protections: Protections::default(),
        }
    }

    /// True for a public client (no credential).
    pub(crate) fn is_public(&self) -> bool {
        self.auth == ClientAuth::None
    }

    /// The secrets the client authenticates with, newest first; none for a public
    /// client.
    pub(crate) fn secrets(&self) -> &[ClientSecret] {
        match &self.auth {
            ClientAuth::None | ClientAuth::Keys(_) => &[],
            ClientAuth::SharedSecret(secrets) => secrets,
        }
    }

    /// The credentials a token of this client may have been issued under: `None` (no
    /// secret) for a public client, each listed secret's fingerprint for a
    /// confidential one. A token stands only while its credential is among these.
    pub(crate) fn credentials(&self) -> Vec<Option<CredentialId>> {
        match &self.auth {
            ClientAuth::None => vec![None],
            ClientAuth::SharedSecret(secrets) => {
                secrets.iter().map(|s| Some(s.fingerprint())).collect()
            }
            ClientAuth::Keys(keys) => keys.credentials().into_iter().map(Some).collect(),
        }
    }

    /// True when a token issued under `credential` (see [`Client::credentials`]) may
    /// still stand for this client.
    pub(crate) fn accepts_credential(&self, credential: Option<&CredentialId>) -> bool {
        match (&self.auth, credential) {
            (ClientAuth::None, None) => true,
            (ClientAuth::SharedSecret(secrets), Some(id)) => {
                secrets.iter().any(|s| s.fingerprint() == *id)
            }
            (ClientAuth::Keys(keys), Some(id)) => keys.credentials().contains(id),
            _ => false,
        }
    }

    /// True when the client's users may sign in through the provider `id`.
    pub(crate) fn allows_provider(&self, id: &str) -> bool {
        self.providers
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| p == id))
    }

    /// True when `identity` may be used for this client: a password login always, a
    /// login through an upstream provider only when the client allows that provider
    /// (`providers`). Checked wherever a session is reused (a code, a device grant),
    /// not only when the buttons are drawn.
    pub(crate) fn allows_identity(&self, identity: &Identity) -> bool {
        identity
            .upstream
            .as_ref()
            .is_none_or(|f| self.allows_provider(&f.provider))
    }

    /// True when the client may use `grant`.
    pub(crate) fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// True when a page on `origin` (a request's `Origin` header) may call the token,
    /// userinfo and revocation endpoints for this client.
    pub(crate) fn allows_origin(&self, origin: &str) -> bool {
        origin::is_allowed(origin, &self.allowed_origins)
    }

    /// The `aud` of the client's tokens: its configured audience, or itself.
    pub(crate) fn audience(&self) -> &[String] {
        if self.audience.is_empty() {
            std::slice::from_ref(&self.id)
        } else {
            &self.audience
        }
    }
}

/// An API tokens may be issued for (`[[resources]]`, RFC 8707), as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The resource indicator: an absolute URI without a fragment; the token's `aud`.
    pub id: String,
    /// What the consent page calls it: its `name`, else its id.
    pub name: String,
    /// The scopes that belong to it (each scope to one resource at most).
    pub scopes: Vec<String>,
    /// Its access tokens' lifetime, when shorter ones are wanted for it.
    pub access_token_ttl: Option<Duration>,
}

/// `[[client_metadata_documents]]`, validated: the `client_id`s under `url_prefix` are
/// documents to fetch, registering clients with at most these scopes and resources.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSource {
    pub url_prefix: String,
    /// The prefix's host is a loopback one: its documents may come from loopback
    /// addresses (and over http).
    pub loopback: bool,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    /// Extra trusted certificate authorities (PEM), for tests and private PKI.
    pub ca_pem: Option<Vec<u8>>,
}

/// A user declared in `[[users]]`, who logs in with a password or through a linked
/// upstream identity.
#[derive(Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub username: String,
    /// `None` for a user who signs in only through `links`.
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// Linked upstream identities: (provider id, upstream subject).
    pub links: Vec<(String, String)>,
    /// `tokens_not_before` (Unix seconds): the sessions begun, and the tokens issued,
    /// at or before it no longer stand.
    pub tokens_not_before: Option<u64>,
    /// The TOTP secret (`totp_secret`), resolved and decoded.
    pub totp: Option<crate::protocol::totp::Secret>,
    /// The user's passkeys (WebAuthn credentials), checked.
    pub passkeys: Vec<Passkey>,
}

/// One of a user's passkeys: a WebAuthn credential whose public key is in the config.
#[derive(Debug, Clone)]
pub struct Passkey {
    /// The operator's label for it.
    pub name: String,
    /// The credential id (raw bytes).
    pub credential_id: Vec<u8>,
    /// The COSE_Key bytes as configured (what `gatehouse diff` compares).
    pub public_key: Vec<u8>,
    /// The key, parsed.
    pub key: crate::protocol::webauthn::CoseKey,
    /// The user handle it was created with (raw bytes).
    pub user_handle: Vec<u8>,
}

impl PartialEq for Passkey {
    /// The configured values (the parsed key follows from `public_key`).
    fn eq(&self, other: &Self) -> bool {
        (
            &self.name,
            &self.credential_id,
            &self.public_key,
            &self.user_handle,
        ) == (
            &other.name,
            &other.credential_id,
            &other.public_key,
            &other.user_handle,
        )
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A second factor a user can prove after their password; the second-factor page
/// offers each the user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Factor {
    /// A one-time code from an authenticator app (`totp_secret`).
    Totp,
    /// One of the user's passkeys (`passkeys`), asked for by credential id.
    Passkey,
}

impl Factor {
    /// Its name in the second-factor page's form (`factor`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }
}

impl User {
    /// The second factors this user has, in the order the page offers them.
    pub(crate) fn second_factors(&self) -> Vec<Factor> {
        let totp = self.totp.is_some().then_some(Factor::Totp);
        let passkey = (!self.passkeys.is_empty()).then_some(Factor::Passkey);
        totp.into_iter().chain(passkey).collect()
    }

    /// The identity this user logs in as.
    pub(crate) fn identity(&self) -> Identity {
        Identity {
            source: IdentitySource::Local,
            subject: self.id.clone(),
            username: self.username.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            groups: self.groups.clone(),
            upstream: None,
            picture: None,
        }
    }
}

/// Where an identity comes from. Adding a source is one more variant here and its arm
/// in `identity::current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentitySource {
    /// A `[[users]]` entry of the config (also when signed in through a linked
    /// upstream identity: it becomes the static user).
    Local,
    /// Someone an upstream provider's `accept = "rules"` let in, not in `[[users]]`:
    /// the subject is `"<provider id>:<upstream subject>"` and the claims are the
    /// snapshot taken at the upstream login (or its last revalidation).
    Upstream,
}

/// How an identity was vouched for by an upstream provider: which, as whom, when, and
/// (refresh `mode = "revalidate"`) the upstream token to ask again with, sealed.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Federation {
    /// The `[[providers]]` id.
    pub provider: String,
    /// The subject at the upstream.
    pub subject: String,
    /// When the upstream login happened (Unix seconds): `cap` counts from here.
    pub login_at: u64,
    /// When the upstream last vouched for the user (the login or a revalidation).
    pub checked_at: u64,
    /// The upstream refresh token (GitHub: access token), AES-GCM sealed under
    /// `[federation] token_key`; held by one session until its first code, then by
    /// exactly one refresh family, moving with each rotation.
    // Last, `default`, always written: stores encode records by position.
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("provider", &self.provider)
            .field("subject", &self.subject)
            .field("login_at", &self.login_at)
            .field("checked_at", &self.checked_at)
            .field("token", &self.token.as_ref().map(|_| "<sealed>"))
            .finish()
    }
}

/// Who logged in: the subject and the claims about them, as of the login. Sessions and
/// codes carry this snapshot; `identity::current` brings it up to date with the config
/// (and ends it when the user was removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub source: IdentitySource,
    /// The stable subject: the `sub` of every token.
    pub subject: String,
    pub username: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
    /// Set when the user signed in through an upstream provider.
    // Last, `default`, always written: stores encode records by position.
    #[serde(default)]
    pub upstream: Option<Box<Federation>>,
    /// The URL of the user's picture (`picture`, scope `profile`): what a provider's
    /// `claims.picture` gave a user its rules let in; none for a `[[users]]` entry.
    // Last, `default`, always written: stores encode records by position.
    #[serde(default)]
    pub picture: Option<String>,
}

impl Identity {
    /// An identity known by its subject and a username alone, without profile claims:
    /// a user admitted by a provider's rules, or what a used code keeps.
    pub(crate) fn bare(source: IdentitySource, subject: String, username: String) -> Self {
        Self {
            source,
            subject,
            username,
            name: None,
            email: None,
            email_verified: false,
            groups: Vec::new(),
            upstream: None,
            picture: None,
        }
    }

    /// The name to greet the user by.
    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(auth: ClientAuth) -> Client {
        Client {
            id: "c".into(),
            name: "c".into(),
            auth,
            grant_types: vec![GrantType::AuthorizationCode],
            default_scopes: vec![],
            allowed_scopes: vec![],
            audience: vec![],
            first_party: false,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            allowed_origins: vec!["https://app.example.com".into()],
            introspect: false,
            providers: None,
            resources: vec![],
            access_token_ttl: None,
            refresh_token_ttl: None,
            document_host: None,
            tokens_not_before: None,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            protections: Protections::default(),
        }
    }

    #[test]
    fn credentials_and_audience() {
        let public = client(ClientAuth::None);
        assert!(public.is_public() && public.credentials() == [None]);
        assert!(public.accepts_credential(None));
        assert_eq!(public.audience(), ["c".to_owned()]);
        let (a, b) = (ClientSecret::plain("a"), ClientSecret::plain("b"));
        assert_ne!(a.fingerprint(), b.fingerprint());
        let one = client(ClientAuth::SharedSecret(vec![a.clone()]));
        let both = client(ClientAuth::SharedSecret(vec![b.clone(), a.clone()]));
        assert!(!one.is_public());
        assert_eq!(one.auth.methods().len(), 2);
        assert_eq!(
            both.credentials(),
            [Some(b.fingerprint()), Some(a.fingerprint())]
        );
        assert!(both.accepts_credential(Some(&a.fingerprint())));
        assert!(!one.accepts_credential(Some(&b.fingerprint())));
        assert!(!one.accepts_credential(None));
        assert!(!public.accepts_credential(Some(&a.fingerprint())));
    }

    #[test]
    fn origins() {
        let c = client(ClientAuth::None);
        assert!(c.allows_origin("https://app.example.com"));
        assert!(!c.allows_origin("https://app.example.com:8443"));
        assert!(!c.allows_origin("null"));
    }
}
