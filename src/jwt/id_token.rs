//! OpenID Connect ID tokens (OIDC Core 2), issued when `openid` was granted.

use super::Issuer;
use super::access::IssueError;
use super::claims;
use super::mint;
use crate::config::file::Algorithm;
use crate::model::Identity;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// What an ID token is minted from.
pub(crate) struct IdTokenInput<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) user: &'a Identity,
    pub(crate) scopes: &'a [String],
    pub(crate) nonce: Option<&'a str>,
    pub(crate) auth_time: u64,
    /// The access token issued with it, for `at_hash`.
    pub(crate) access_token: &'a str,
    /// The login session (`sid`, OIDC Back-Channel Logout 2.1), if any.
    pub(crate) sid: Option<&'a str>,
    /// How the user authenticated (RFC 8176), where known.
    pub(crate) amr: &'a [String],
}

/// `at_hash`: the left half of the hash of the access token, with the hash that the
/// signing algorithm uses (SHA-256 for ES256 and RS256, SHA-512 for Ed25519).
pub(crate) fn at_hash(algorithm: Algorithm, access_token: &str) -> String {
    let alg = match algorithm {
        Algorithm::EdDSA => &digest::SHA512,
        Algorithm::ES256 | Algorithm::RS256 => &digest::SHA256,
    };
    let hash = digest::digest(alg, access_token.as_bytes());
    let bytes = hash.as_ref();
    B64.encode(&bytes[..bytes.len() / 2])
}

/// Mints an ID token at `iat` (Unix seconds).
pub(crate) fn issue(
    issuer: &Issuer<'_>,
    input: &IdTokenInput<'_>,
    iat: u64,
) -> Result<String, IssueError> {
    let key = issuer.keys.signing().ok_or(IssueError::NoKey)?;
    let mut claims = claims::for_scopes(input.user, input.scopes);
    let mut set = |k: &str, v: Value| {
        claims.insert(k.to_owned(), v);
    };
    set("iss", json!(issuer.issuer));
    set("sub", json!(input.user.subject));
    set("aud", json!(input.client_id));
    set("exp", json!(iat + issuer.id_token_ttl.as_secs()));
    set("iat", json!(iat));
    set("auth_time", json!(input.auth_time));
    set(
        "at_hash",
        json!(at_hash(key.algorithm(), input.access_token)),
    );
    if let Some(nonce) = input.nonce {
        set("nonce", json!(nonce));
    }
    if let Some(sid) = input.sid {
        set("sid", json!(sid));
    }
    if !input.amr.is_empty() {
        set("amr", json!(input.amr));
    }
    if let Some(acr) = crate::protocol::acr::acr_of(input.amr) {
        set("acr", json!(acr));
    }
    Ok(mint::mint(key, "JWT", &claims)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_example() {
        // OIDC Core A.3: the access token of the example and its at_hash (RS256).
        assert_eq!(
            at_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
