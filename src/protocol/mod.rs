//! Pure protocol rules, with no I/O: PKCE, redirect-URI registration and matching,
//! web origins (CORS), scope narrowing. Unit- and property-tested, fuzzed.

pub mod origin;
pub mod pkce;
pub mod redirect_uri;
pub mod scope;
