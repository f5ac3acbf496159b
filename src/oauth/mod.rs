//! OAuth 2.1 endpoints, one module per endpoint, and the protocol rules they share.

pub mod client_auth;
pub mod client_credentials;
pub mod discovery;
pub mod error;
pub mod form;
pub mod jwks;
pub mod redirect_uri;
pub mod scope;
pub mod token;
