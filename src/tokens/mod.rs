//! Signing keys and the JWTs gatehouse issues and verifies.

pub mod access;
pub mod claims;
pub mod id_token;
pub mod jwt;
pub mod keys;
pub mod verify;
