//! Pure protocol rules, with no I/O: PKCE, redirect-URI registration and matching,
//! scope narrowing. Unit- and property-tested, fuzzed.

pub mod pkce;
pub mod redirect_uri;
pub mod scope;
