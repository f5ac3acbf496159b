//! OAuth 2.1 / OpenID Connect protocol logic and its JSON endpoints: the token endpoint
//! and its grants, client authentication, introspection, revocation, userinfo,
//! discovery and JWKS, CORS for browser apps, and the checked authorization request
//! that the pages in `web` carry through login and consent.

pub mod assertion;
pub mod authorize_request;
pub mod backchannel;
pub mod client_auth;
pub mod client_document;
pub mod cors;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod federated;
pub mod grants;
pub mod identify;
pub mod interaction;
pub mod introspect;
pub mod jwks;
pub mod par;
pub mod revoke;
pub mod standing;
pub mod target;
pub mod token_endpoint;
pub mod userinfo;
