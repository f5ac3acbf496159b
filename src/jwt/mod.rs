//! Signing keys and the JWTs gatehouse issues and verifies: RFC 9068 access tokens,
//! OpenID ID tokens, logout tokens, and the claims each scope releases.

pub mod access;
pub mod assertion;
pub mod claims;
pub mod id_token;
pub mod keys;
pub mod logout_token;
pub mod mint;
pub mod verify;

use std::time::Duration;

/// What signs and checks gatehouse's tokens in one config generation: the issuer
/// identifier, the keys, the ID token's lifetime and the generation (an access token carries
/// its own lifetime). The registry hands one out
/// (`Registry::jwt`), so minting and verifying never read the registry itself.
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    /// The `iss` of every token, and the one a verified token must carry.
    pub issuer: &'a str,
    /// The signing key and every key whose tokens still verify.
    pub keys: &'a keys::KeySet,
    pub id_token_ttl: Duration,
    /// The config generation: a signature verified under it is remembered for it.
    pub generation: u64,
}
