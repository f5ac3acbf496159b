//! What a token is for (RFC 8707 resource indicators), from a request's `resource`
//! parameters, the client and what its grant authorized: the thin layer between the
//! registry and the pure rules of `protocol::resource`.

use crate::error::OAuthError;
use crate::http::form::Form;
use crate::model::Client;
use crate::protocol::resource;
use crate::registry::Registry;
use std::time::Duration;

/// The `resource` parameters of `form`, checked as indicators and against the
/// resources `client` may ask for: `invalid_target` otherwise (RFC 8707 2).
pub(crate) fn admitted(form: &Form, client: &Client) -> Result<Vec<String>, OAuthError> {
    let requested =
        resource::requested(form.all("resource")).map_err(OAuthError::invalid_target)?;
    resource::admit(&requested, &client.resources).map_err(OAuthError::invalid_target)?;
    Ok(requested)
}

/// The entry of a session's consents that holds the resources the user allowed
/// `client_id` (beside the one, under the client id, holding its scopes). Client ids
/// hold no whitespace, so it is never a client's.
pub(crate) fn consent_key(client_id: &str) -> String {
    format!("{client_id} resources")
}

/// An access token's audience, scopes and lifetime.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    /// The `aud` claim.
    pub(crate) audience: Vec<String>,
    /// The `scope` claim (and the token response's).
    pub(crate) scopes: Vec<String>,
    /// How long the token lives.
    pub(crate) lifetime: Duration,
}

/// The target of a token `client` gets from a grant that named the resources `named`
/// (none: the defaults) and `granted` the scopes, when this token request asks for
/// `requested` (a subset of what the grant authorized; none: all of it).
pub(crate) fn for_token(
    registry: &Registry,
    client: &Client,
    named: &[String],
    requested: &[String],
    granted: &[String],
) -> Result<Target, OAuthError> {
    let owner = |s: &str| registry.scope_owner(s);
    let authorized = resource::authorized(named, &client.resources, granted, owner);
    if !named.is_empty() && authorized.is_empty() {
        return Err(OAuthError::invalid_target(
            "the resources this grant was for are no longer allowed for this client",
        ));
    }
    let target = resource::narrow(requested, &authorized).map_err(OAuthError::invalid_target)?;
    let named = !named.is_empty() || !requested.is_empty();
    let base = client
        .access_token_ttl
        .unwrap_or(registry.tokens.access_token_ttl);
    let ttls = target
        .iter()
        .map(|id| registry.resource(id).and_then(|r| r.access_token_ttl));
    Ok(Target {
        audience: resource::audience(&target, named, &client.audience, &client.id),
        scopes: resource::scopes_for(&target, granted, owner),
        lifetime: resource::lifetime(base, ttls),
    })
}

/// The longest an access token of `client` can live: what a replayed code's token is
/// denied for.
pub(crate) fn longest_access(registry: &Registry, client: &Client) -> Duration {
    client
        .access_token_ttl
        .unwrap_or(registry.tokens.access_token_ttl)
}

/// The lifetime of `client`'s refresh tokens.
pub(crate) fn refresh_lifetime(registry: &Registry, client: &Client) -> Duration {
    client
        .refresh_token_ttl
        .unwrap_or(registry.tokens.refresh_token_ttl)
}
