//! Recognising a token presented to introspection or revocation: one of our access
//! tokens (a JWT that verifies), one of our refresh tokens (found in the store), or
//! nothing we know. Access tokens are JWTs and refresh tokens never contain a dot, so
//! the shape decides and `token_type_hint` is not needed.

use crate::crypto::sha256;
use crate::jwt::verify::AccessClaims;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{Redeemed, RefreshGrant, StoreError};

/// What a presented token turned out to be.
pub(crate) enum Identified {
    /// A live access token (signature, issuer and expiry checked).
    Access(AccessClaims),
    /// A refresh token in the store; `used` when it was rotated already.
    Refresh { grant: RefreshGrant, used: bool },
    /// Malformed, foreign, expired or unknown.
    Unknown,
}

/// Identifies `token`.
pub(crate) async fn identify(
    state: &AppState,
    registry: &Registry,
    token: &str,
) -> Result<Identified, StoreError> {
    if token.contains('.') {
        return Ok(state
            .verified_tokens
            .access_token(&registry.jwt(), token, state.clock.now())
            .map_or(Identified::Unknown, Identified::Access));
    }
    Ok(
        match state.store.peek_refresh(sha256(token.as_bytes())).await? {
            Redeemed::Fresh(grant) => Identified::Refresh { grant, used: false },
            Redeemed::Replayed(grant) => Identified::Refresh { grant, used: true },
            Redeemed::Unknown => Identified::Unknown,
        },
    )
}
