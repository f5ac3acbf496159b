//! The client-credentials grant (RFC 6749 4.4): a confidential client gets an access
//! token for itself.

use super::token_set::{Holder, access_token};
use super::{Granted, TokenRequest, TokenResponse};
use crate::crypto::random_id;
use crate::error::OAuthError;
use crate::oauth::target;
use crate::protocol::scope;

/// Runs the grant.
pub(crate) async fn exchange(request: &TokenRequest<'_>) -> Result<Granted, OAuthError> {
    let client = request.client;
    let requested = target::admitted(request.form, client)?;
    let scopes: Vec<&str> = match request.form.get("scope") {
        Some(requested) => scope::narrow(requested, &client.allowed_scopes).map_err(|bad| {
            OAuthError::invalid_scope(format!("scope {bad:?} is not allowed for this client"))
        })?,
        None => client.default_scopes.iter().map(String::as_str).collect(),
    };
    let scopes: Vec<String> = scopes.into_iter().map(str::to_owned).collect();
    let target = target::for_token(request.registry, client, &requested, &requested, &scopes)?;
    let scope = target.scopes.join(" ");
    let jti = random_id().map_err(OAuthError::server)?;
    let now = request.state.clock.now();
    let access = access_token(request, Holder::Client, &target, jti, now)?;
    Ok(Granted {
        response: TokenResponse::bearer(access, scope).bound_if(request.dpop_jkt.as_deref()),
        event: "token_issued",
        user_id: None,
    })
}
