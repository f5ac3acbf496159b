//! Signing keys and the JWTs gatehouse issues and verifies: RFC 9068 access tokens,
//! OpenID ID tokens, and the claims each scope releases.

pub mod access;
pub mod claims;
pub mod id_token;
pub mod keys;
pub mod mint;
pub mod verify;
