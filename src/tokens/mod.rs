//! Signing keys and the JWTs gatehouse issues.

pub mod access;
pub mod jwt;
pub mod keys;
