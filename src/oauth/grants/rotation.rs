//! What a refresh token's use found: fresh goes on; unknown or expired is
//! `invalid_grant`; used already (rotated before) means someone holds a copy, so its
//! whole family is revoked. Shared by the refresh grant's look before its checks and
//! the rotation that uses the token as its successor is kept (`token_set`).

use super::TokenRequest;
use crate::error::OAuthError;
use crate::oauth::standing;
use crate::store::{Redeemed, RefreshGrant};

/// The grant of a token looked at or used: refused when unknown or expired, and when
/// already rotated (which revokes its family).
pub(crate) async fn fresh(
    request: &TokenRequest<'_>,
    redeemed: Redeemed<RefreshGrant>,
) -> Result<RefreshGrant, OAuthError> {
    match redeemed {
        Redeemed::Fresh(grant) => Ok(grant),
        Redeemed::Unknown => Err(OAuthError::invalid_grant(
            "the refresh token is invalid or has expired",
        )),
        Redeemed::Replayed(grant) => Err(reuse_detected(request, grant).await),
    }
}

/// A rotated token came back: someone holds a copy. Revoke the family.
async fn reuse_detected(request: &TokenRequest<'_>, grant: RefreshGrant) -> OAuthError {
    tracing::warn!(event = "refresh_reuse_detected", remote = %request.remote, client_id = %grant.client_id, user_id = %grant.subject);
    match standing::revoke_family(request.state, request.registry, &grant.family).await {
        Ok(()) => {
            OAuthError::invalid_grant("the refresh token was already used; its family is revoked")
        }
        Err(e) => e.into(),
    }
}
