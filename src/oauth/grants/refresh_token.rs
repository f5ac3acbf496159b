//! The refresh-token grant (OAuth 2.1 4.3): only the client the token was issued to may
//! use it, it may narrow the scope, and it is rotated on every use. Using a rotated
//! token again revokes its whole family. A FAPI 2.0 client's token is not rotated.

use super::rotation::fresh;
use super::token_set::{self, Refresh, UserGrant};
use super::{Granted, TokenRequest};
use crate::crypto::{random_id, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::{standing, target};
use crate::protocol::scope;
use crate::store::RefreshGrant;

/// Runs the grant.
pub(crate) async fn exchange(request: &TokenRequest<'_>) -> Result<Granted, OAuthError> {
    let TokenRequest {
        state,
        registry,
        client,
        form,
        ..
    } = *request;
    let token = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let key = sha256(token.as_bytes());
    let requested = target::admitted(form, client)?;

    // Every check runs before the token is used, so a refused request (a wider scope,
    // say) leaves it valid for a corrected retry.
    let grant = fresh(request, state.store.peek_refresh(key).await?).await?;
    check_holder(request, &grant).await?;
    let (scopes, still_allowed) = narrowed_scopes(request, &grant)?;
    // RFC 8707 2.2: a subset of the resources the grant authorized, never more.
    target::for_token(registry, client, &grant.resources, &requested, &scopes)?;

    let user = standing::refresh(state, registry, &grant)
        .await?
        .map_err(|fallen| OAuthError::invalid_grant(fallen.to_string()))?;
    // A federated user's family answers to the upstream first (cap or revalidation);
    // a 503 here leaves the token unused.
    let user = super::federated::check(state, registry, &grant.family, user).await?;
    // Rotate: the atomic use (with the successor kept in the same step, `token_set`)
    // decides between two racing requests with the same token. A FAPI 2.0 client's
    // token is not rotated (FAPI 2.0 5.3.2.1): it stays usable, bound to the client's
    // authentication (or its DPoP key).
    let refresh = if client.protections.fapi2 {
        Refresh::Kept
    } else {
        Refresh::Replaces(key)
    };
    let response = token_set::issue(
        request,
        UserGrant {
            identity: &user,
            scopes: &scopes,
            refresh_scopes: &still_allowed,
            resources: &grant.resources,
            requested: &requested,
            auth_time: grant.auth_time,
            nonce: None,
            jti: random_id().map_err(OAuthError::server)?,
            family: Some(grant.family.clone()),
            refresh,
            origin: &grant.origin,
            outlives_session: grant.offline(),
        },
    )
    .await?;
    Ok(Granted {
        response,
        event: "refresh_rotated",
        user_id: Some(user.subject),
    })
}

/// Only the client the token was issued to may use it (another's attempt revokes the
/// family), and a token bound to a DPoP key only with a proof by that key.
async fn check_holder(request: &TokenRequest<'_>, grant: &RefreshGrant) -> Result<(), OAuthError> {
    let client = request.client;
    if grant.client_id != client.id {
        tracing::warn!(event = "refresh_wrong_client", remote = %request.remote, client_id = %client.id, owner = %grant.client_id);
        standing::revoke_family(request.state, request.registry, &grant.family).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // A public client's token is bound to the DPoP key it was issued with (RFC 9449 5).
    if grant.dpop_jkt.is_some() && grant.dpop_jkt != request.dpop_jkt {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "the refresh token is bound to a DPoP key: send a proof by that key",
        ));
    }
    Ok(())
}

/// The scopes of the new tokens (those asked for, each granted before) and those the
/// grant still allows: never more than the client has now, after a reload.
fn narrowed_scopes(
    request: &TokenRequest<'_>,
    grant: &RefreshGrant,
) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let still_allowed: Vec<String> = grant
        .scopes
        .iter()
        .filter(|s| request.client.allowed_scopes.contains(s))
        .cloned()
        .collect();
    let scopes: Vec<String> = match request.form.get("scope") {
        Some(requested) => scope::narrow(requested, &still_allowed)
            .map_err(|bad| OAuthError::invalid_scope(format!("scope {bad:?} was not granted")))?
            .into_iter()
            .map(str::to_owned)
            .collect(),
        None => still_allowed.clone(),
    };
    Ok((scopes, still_allowed))
}
