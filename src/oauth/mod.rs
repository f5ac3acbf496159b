//! OAuth 2.1 / OpenID Connect endpoints, one module per endpoint or grant, and the
//! protocol rules they share.

pub mod authorization_code;
pub mod authorize;
pub mod client_auth;
pub mod client_credentials;
pub mod discovery;
pub mod error;
pub mod form;
pub mod inspect;
pub mod introspect;
pub mod jwks;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh_token;
pub mod revoke;
pub mod scope;
pub mod token;
pub mod user_tokens;
pub mod userinfo;
