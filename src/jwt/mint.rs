//! JWT minting (JWS compact serialization) with a held, pre-parsed key pair.

use super::keys::{SignError, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;

/// The `typ` of an RFC 9068 access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("claims do not serialize: {0}")]
    Claims(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `claims` with `key` under a header naming `typ` and the key's `kid`.
pub fn mint(key: &SigningKey, typ: &str, claims: &impl Serialize) -> Result<String, MintError> {
    let header = serde_json::to_vec(&Header {
        alg: key.algorithm().as_str(),
        typ,
        kid: key.kid(),
    })?;
    let claims = serde_json::to_vec(claims)?;
    let mut token = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 120);
    B64.encode_string(&header, &mut token);
    token.push('.');
    B64.encode_string(&claims, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    B64.encode_string(&signature, &mut token);
    Ok(token)
}
