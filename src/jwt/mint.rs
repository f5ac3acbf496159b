//! JWT minting (JWS compact serialization) with a held, pre-parsed key pair.

use super::keys::{SignError, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;

pub use super::keys::ACCESS_TOKEN_TYP;

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("the header or the claims do not serialize: {0}")]
    Claims(#[from] serde_json::Error),
}

/// Signs `claims` with `key` under a header naming `typ` and the key's `kid`.
pub fn mint(key: &SigningKey, typ: &str, claims: &impl Serialize) -> Result<String, MintError> {
    let header = key.header(typ)?;
    let claims = serde_json::to_vec(claims)?;
    let mut token = String::with_capacity(header.len() + claims.len() * 4 / 3 + 120);
    token.push_str(&header);
    token.push('.');
    B64.encode_string(&claims, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    B64.encode_string(&signature, &mut token);
    Ok(token)
}
