//! The grants of the token endpoint, one module each, behind one seam (Dex's
//! `server/grants`, fosite's `TokenEndpointHandler`): the endpoint parses the request,
//! authenticates the client and checks that it may use the grant, then hands the grant
//! a typed [`TokenRequest`]; the grant answers [`Granted`] or an `OAuthError`, and the
//! endpoint logs, counts and writes the response. A grant never sees `HttpRequest` or
//! builds an `HttpResponse`.
//!
//! Adding a grant: a `GrantType` variant, a module here with an `exchange` function,
//! and its line in [`exchange`].

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod federated;
pub mod refresh_token;
pub(crate) mod rotation;
pub mod token_set;

use crate::config::file::GrantType;
use crate::error::OAuthError;
use crate::http::form::Form;
use crate::model::{Client, CredentialId};
use crate::registry::Registry;
use crate::state::AppState;
use serde::Serialize;
use std::net::IpAddr;

/// A token request whose client is authenticated and allowed the grant.
pub(crate) struct TokenRequest<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) registry: &'a Registry,
    pub(crate) client: &'a Client,
    /// The fingerprint of the secret the client authenticated with (`None`: a public
    /// client): what the tokens issued record, so that they end when it is removed.
    pub(crate) credential: Option<CredentialId>,
    /// The request's parameters.
    pub(crate) form: &'a Form,
    /// Where the request came from, for the audit events a grant logs itself.
    pub(crate) remote: IpAddr,
    /// The thumbprint of the key of the request's DPoP proof (RFC 9449): the access
    /// token is bound to it (`cnf.jkt`), and so is a public client's refresh token.
    pub(crate) dpop_jkt: Option<String>,
}

/// What a grant issued, for the endpoint to answer with and log.
pub(crate) struct Granted {
    pub(crate) response: TokenResponse,
    /// The audit event (`token_issued`, `refresh_rotated`).
    pub(crate) event: &'static str,
    /// The user the tokens are for; `None` for a client's own token.
    pub(crate) user_id: Option<String>,
}

/// A successful token response (RFC 6749 5.1).
#[derive(Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    pub(crate) scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
}

/// Runs `grant` for `request`: the table of grants.
pub(crate) async fn exchange(
    grant: GrantType,
    request: &TokenRequest<'_>,
) -> Result<Granted, OAuthError> {
    match grant {
        GrantType::AuthorizationCode => authorization_code::exchange(request).await,
        GrantType::RefreshToken => refresh_token::exchange(request).await,
        GrantType::ClientCredentials => client_credentials::exchange(request).await,
        GrantType::DeviceCode => device_code::exchange(request).await,
    }
}
