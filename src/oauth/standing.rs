//! Whether an issued token still stands, and how tokens are ended: denied access-token
//! ids, revoked refresh families, clients removed or whose secret changed (recorded in
//! the store as the client's "not before" time, so re-adding the client or rotating
//! back to an old secret revives nothing), and users removed from the config. The one
//! home of these rules: the refresh grant, introspection, revocation and userinfo all
//! ask here.

use crate::identity;
use crate::jwt::verify::AccessClaims;
use crate::model::Identity;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{RefreshGrant, StoreError};
use std::time::Duration;

/// Why an issued token no longer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fallen {
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Its client is not in the serving config.
    #[error("the token's client is no longer registered")]
    ClientGone,
    /// Its client was removed or re-keyed after it was issued.
    #[error("the client was removed or its secret changed since the token was issued")]
    ClientReset,
    /// Its user is not in the serving config.
    #[error("the token's user no longer exists")]
    UserGone,
    /// Its id was denied or its refresh family revoked.
    #[error("the token has been revoked")]
    Revoked,
}

/// Who an access token that still stands was issued for.
#[derive(Debug)]
pub enum Holder {
    /// The client itself (client credentials): no user, no `auth_time`.
    Client,
    /// A user, as the config describes them now.
    User(Identity),
}

/// Whether a token stands: what it stands for, or why it fell.
pub type Standing<T> = Result<T, Fallen>;

/// Denies the access token `jti` until it would have expired anyway (`exp`).
pub async fn deny_access(state: &AppState, jti: &str, exp: u64) -> Result<(), StoreError> {
    let left = Duration::from_secs(exp.saturating_sub(state.clock.now()).max(1));
    state.store.deny_jti(jti, left).await
}

/// Revokes a whole refresh family, for as long as any member could live. The access
/// tokens issued with the family (they carry its id) fall with it.
pub async fn revoke_family(
    state: &AppState,
    registry: &Registry,
    family: &str,
) -> Result<(), StoreError> {
    state
        .store
        .revoke_family(family, registry.tokens.refresh_token_ttl)
        .await
}

/// Ends every token issued to `client_id` until now: the client was removed or its
/// credential changed (the reloader calls this). Kept for `ttl`, the longest a token of
/// either generation lives.
pub async fn reset_client(
    state: &AppState,
    client_id: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    state
        .store
        .set_not_before(client_id, state.clock.now(), ttl)
        .await
}

/// True when a token issued to `client_id` at `issued_at` predates the client's last
/// removal or secret change. Times are whole seconds, so a token issued in the very
/// second of a change counts as older than it.
async fn predates_reset(
    state: &AppState,
    client_id: &str,
    issued_at: u64,
) -> Result<bool, StoreError> {
    Ok(state
        .store
        .not_before(client_id)
        .await?
        .is_some_and(|at| issued_at <= at))
}

/// Whether a verified access token still stands: its client registered and not reset
/// since `iat`, its id not denied; for a user's token (one with `auth_time`), the user
/// still in the config and the token's refresh family not revoked.
pub async fn access(
    state: &AppState,
    registry: &Registry,
    claims: &AccessClaims,
) -> Result<Standing<Holder>, StoreError> {
    if registry.client(&claims.client_id).is_none() {
        return Ok(Err(Fallen::ClientGone));
    }
    if predates_reset(state, &claims.client_id, claims.iat).await? {
        return Ok(Err(Fallen::ClientReset));
    }
    if state.store.jti_denied(&claims.jti).await? {
        return Ok(Err(Fallen::Revoked));
    }
    if claims.auth_time.is_none() {
        return Ok(Ok(Holder::Client));
    }
    let Some(user) = identity::by_token_subject(registry, &claims.sub) else {
        return Ok(Err(Fallen::UserGone));
    };
    if let Some(family) = &claims.family
        && state.store.family_revoked(family).await?
    {
        return Ok(Err(Fallen::Revoked));
    }
    Ok(Ok(Holder::User(user)))
}

/// Whether a refresh grant that was not used yet still stands: not expired, its client
/// registered with the credential it had at issue and not reset since, its family not
/// revoked, its user still in the config (whom it gives back).
pub async fn refresh(
    state: &AppState,
    registry: &Registry,
    grant: &RefreshGrant,
) -> Result<Standing<Identity>, StoreError> {
    if grant.expires_at <= state.clock.now() {
        return Ok(Err(Fallen::Expired));
    }
    match registry.client(&grant.client_id) {
        None => return Ok(Err(Fallen::ClientGone)),
        Some(c) if c.credential_id() != grant.credential => return Ok(Err(Fallen::ClientReset)),
        Some(_) => {}
    }
    if predates_reset(state, &grant.client_id, grant.issued_at).await? {
        return Ok(Err(Fallen::ClientReset));
    }
    if state.store.family_revoked(&grant.family).await? {
        return Ok(Err(Fallen::Revoked));
    }
    let user = match &grant.federated {
        Some(snapshot) => identity::current(registry, snapshot),
        None => identity::by_subject(registry, grant.source, &grant.subject),
    };
    Ok(user.ok_or(Fallen::UserGone))
}
