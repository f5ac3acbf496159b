//! Whether an issued token still stands, and how tokens are ended: denied access-token
//! ids, revoked refresh families, clients removed or whose secret rotated. The one home
//! of these rules, shared by the grants, introspection, revocation and userinfo.

use crate::jwt::verify::AccessClaims;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{RefreshGrant, StoreError};
use std::time::Duration;

/// Denies the access token `jti` until it would have expired anyway (`exp`).
pub async fn deny_access(state: &AppState, jti: &str, exp: u64) -> Result<(), StoreError> {
    let left = Duration::from_secs(exp.saturating_sub(state.clock.now()).max(1));
    state.store.deny_jti(jti, left).await
}

/// Revokes a whole refresh family, for as long as any member could live.
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

/// True when a verified access token still stands: not denied, and its client still
/// registered with the credential it had when the token was issued.
pub async fn access_stands(
    state: &AppState,
    registry: &Registry,
    claims: &AccessClaims,
) -> Result<bool, StoreError> {
    Ok(state
        .rotations
        .tokens_stand(registry, &claims.client_id, claims.iat)
        && !state.store.jti_denied(&claims.jti).await?)
}

/// True when a refresh grant that was not used yet still stands: not expired, its
/// client registered with the same credential, its family not revoked.
pub async fn refresh_stands(
    state: &AppState,
    registry: &Registry,
    grant: &RefreshGrant,
) -> Result<bool, StoreError> {
    Ok(grant.expires_at > state.clock.now()
        && registry
            .client(&grant.client_id)
            .is_some_and(|c| c.credential_id() == grant.credential)
        && !state.store.family_revoked(&grant.family).await?)
}
