//! RFC 9068 JWT access tokens.

use super::jwt::{self, ACCESS_TOKEN_TYP, MintError};
use crate::registry::Registry;
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

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
}

/// `aud` is a string for one audience and an array for several (RFC 7519 4.1.3).
#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// A freshly minted access token and its lifetime in seconds.
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
}

/// Why no token could be issued: a server-side fault, never the client's.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no signing key is configured")]
    NoKey,
    #[error(transparent)]
    Mint(#[from] MintError),
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mints an access token for `sub`, issued to `client_id`, valid for the registry's
/// `access_token_ttl`, with the token id `jti`.
pub fn issue(
    registry: &Registry,
    sub: &str,
    client_id: &str,
    audience: &[String],
    scope: &str,
    jti: String,
) -> Result<Issued, IssueError> {
    let key = registry.signing_key().ok_or(IssueError::NoKey)?;
    let iat = now();
    let expires_in = registry.tokens.access_token_ttl.as_secs();
    let aud = match audience {
        [one] => Audience::One(one),
        many => Audience::Many(many),
    };
    let claims = Claims {
        iss: &registry.issuer,
        sub,
        client_id,
        aud,
        exp: iat + expires_in,
        iat,
        jti,
        scope,
    };
    Ok(Issued {
        token: jwt::mint(key, ACCESS_TOKEN_TYP, &claims)?,
        expires_in,
    })
}
