//! Recognising a token presented to introspection or revocation: one of our access
//! tokens (a JWT that verifies), one of our refresh tokens (found in the store), or
//! nothing we know. Access tokens are JWTs and refresh tokens never contain a dot, so
//! the shape decides and `token_type_hint` is not needed.

use super::error::OAuthError;
use crate::registry::Registry;
use crate::secret::sha256;
use crate::state::AppState;
use crate::store::{Key, Redeemed, RefreshGrant};
use crate::tokens::verify::{self, AccessClaims};

/// What a presented token turned out to be.
pub enum Identified {
    /// A live access token (signature, issuer and expiry checked).
    Access(AccessClaims),
    /// A refresh token in the store; `used` when it was rotated already.
    Refresh {
        key: Key,
        grant: RefreshGrant,
        used: bool,
    },
    /// Malformed, foreign, expired or unknown.
    Unknown,
}

/// Identifies `token`.
pub async fn identify(
    state: &AppState,
    registry: &Registry,
    token: &str,
) -> Result<Identified, OAuthError> {
    if token.contains('.') {
        return Ok(
            verify::access_token(registry, token).map_or(Identified::Unknown, Identified::Access)
        );
    }
    let key = sha256(token.as_bytes());
    Ok(
        match state
            .store
            .peek_refresh(key)
            .await
            .map_err(OAuthError::server)?
        {
            Redeemed::Fresh(grant) => Identified::Refresh {
                key,
                grant,
                used: false,
            },
            Redeemed::Replayed(grant) => Identified::Refresh {
                key,
                grant,
                used: true,
            },
            Redeemed::Unknown => Identified::Unknown,
        },
    )
}
