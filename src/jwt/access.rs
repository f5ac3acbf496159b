//! RFC 9068 JWT access tokens.

use super::Issuer;
use super::mint::{self, ACCESS_TOKEN_TYP, MintError};
use crate::model::CredentialId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;

/// The claims of an access token.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    aud: Audience<'a>,
    exp: u64,
    iat: u64,
    jti: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'a str>,
    /// The fingerprint of the client secret the token was issued under (base64url), so
    /// that removing that secret ends the token; absent for a public client.
    #[serde(skip_serializing_if = "Option::is_none")]
    cred: Option<String>,
    /// The login session it was issued in: ending the session ends the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    /// A federated user's claims as the ID token states them (RFC 9068 2.2.3.1), so
    /// `/userinfo` and introspection state the same.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    profile: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The DPoP key the token is bound to (RFC 9449 6.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation<'a>>,
}

/// `cnf` (RFC 7800) with the JWK SHA-256 thumbprint of a DPoP key.
#[derive(Serialize)]
struct Confirmation<'a> {
    jkt: &'a str,
}

/// `aud` is a string for one audience and an array for several (RFC 7519 4.1.3).
#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// A freshly minted access token and its lifetime in seconds.
pub(crate) struct Issued {
    pub(crate) token: String,
    pub(crate) expires_in: u64,
}

/// Why no token could be issued: a server-side fault, never the client's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IssueError {
    #[error("no signing key is configured")]
    NoKey,
    #[error(transparent)]
    Mint(#[from] MintError),
}

/// What an access token says.
pub(crate) struct AccessToken<'a> {
    /// The user's subject, or the client's id for client credentials.
    pub(crate) sub: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) audience: &'a [String],
    pub(crate) scope: &'a str,
    /// The token's id, chosen by the caller (a code redemption records it first).
    pub(crate) jti: String,
    /// When the user logged in (RFC 9068 2.2.1): present exactly in a user's tokens,
    /// which is how `/userinfo` and introspection tell them from a client's own.
    pub(crate) auth_time: Option<u64>,
    /// The refresh-token family issued beside it: revoking the family ends this token.
    pub(crate) family: Option<&'a str>,
    /// The secret the client authenticated with (`None`: a public client).
    pub(crate) credential: Option<CredentialId>,
    /// How long it lives: the client's, the resource's or `[tokens]`'s lifetime.
    pub(crate) lifetime: std::time::Duration,
    /// The login session it is issued in (`sid`), if it ends with one.
    pub(crate) sid: Option<&'a str>,
    /// The user's claims, for a user the config does not describe (one a provider's
    /// rules let in): the snapshot the ID token was made from, as the scopes allow.
    pub(crate) profile: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The thumbprint of the DPoP key it is bound to, if any.
    pub(crate) jkt: Option<&'a str>,
}

/// Mints `token` at `iat` (Unix seconds), valid for its `lifetime`.
pub(crate) fn issue(
    issuer: &Issuer<'_>,
    token: AccessToken<'_>,
    iat: u64,
) -> Result<Issued, IssueError> {
    let key = issuer.keys.signing().ok_or(IssueError::NoKey)?;
    let expires_in = token.lifetime.as_secs();
    let aud = match token.audience {
        [one] => Audience::One(one),
        many => Audience::Many(many),
    };
    let claims = Claims {
        iss: issuer.issuer,
        sub: token.sub,
        client_id: token.client_id,
        aud,
        exp: iat + expires_in,
        iat,
        jti: token.jti,
        scope: token.scope,
        auth_time: token.auth_time,
        family: token.family,
        cred: token.credential.map(|c| B64.encode(c)),
        sid: token.sid,
        profile: token.profile,
        cnf: token.jkt.map(|jkt| Confirmation { jkt }),
    };
    Ok(Issued {
        token: mint::mint(key, ACCESS_TOKEN_TYP, &claims)?,
        expires_in,
    })
}
