//! Logout tokens (OIDC Back-Channel Logout 1.0, 2.4): a JWT of `typ` `logout+jwt`
//! telling one client that a session ended, signed with the key that signs ID tokens.
//! It carries `iss`, `aud`, `iat`, `exp`, `jti`, the back-channel logout event, `sub`
//! and `sid`, and never a `nonce` (2.4: a token with one is refused).

use super::Issuer;
use super::access::IssueError;
use super::mint;
use serde::Serialize;
use serde_json::{Value, json};

/// The `typ` of a logout token (2.4, and RFC 8725 3.11's explicit typing).
pub(crate) const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// The member of `events` that makes a JWT a logout token.
pub(crate) const BACKCHANNEL_LOGOUT_EVENT: &str =
    "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid: two minutes (2.4 recommends a short lifetime).
pub(crate) const LIFETIME_SECS: u64 = 120;

/// What a logout token says.
pub(crate) struct LogoutToken<'a> {
    /// The client told (`aud`).
    pub(crate) client_id: &'a str,
    /// The user whose session ended.
    pub(crate) sub: &'a str,
    /// The session that ended.
    pub(crate) sid: Option<&'a str>,
    /// The token's id.
    pub(crate) jti: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
    events: Value,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

/// Mints `token` at `iat` (Unix seconds).
pub(crate) fn issue(
    issuer: &Issuer<'_>,
    token: &LogoutToken<'_>,
    iat: u64,
) -> Result<String, IssueError> {
    let key = issuer.keys.signing().ok_or(IssueError::NoKey)?;
    let claims = Claims {
        iss: issuer.issuer,
        aud: token.client_id,
        iat,
        exp: iat + LIFETIME_SECS,
        jti: token.jti,
        events: json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
        sub: token.sub,
        sid: token.sid,
    };
    Ok(mint::mint(key, LOGOUT_TOKEN_TYP, &claims)?)
}
