//! The device grant's polls at the token endpoint (RFC 8628 3.4-3.5): the device code
//! is the client's (another client's is unknown to it), polled no faster than its
//! interval (`slow_down` grows it by 5 s), answered `authorization_pending`,
//! `access_denied` or `expired_token` until the user approves, then with the tokens
//! exactly once.

use super::token_set::{self, Refresh, UserGrant};
use super::{Granted, TokenRequest};
use crate::config::file::GrantType;
use crate::crypto::{random_id, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::identity;
use crate::oauth::device::SLOW_DOWN_STEP;
use crate::oauth::target;
use crate::store::{DeviceDecision, Origin, Polled};

/// Answers a poll with a device code.
pub(crate) async fn exchange(request: &TokenRequest<'_>) -> Result<Granted, OAuthError> {
    let TokenRequest {
        state,
        registry,
        client,
        form,
        ..
    } = *request;
    let code = form
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
    let requested = target::admitted(form, client)?;
    let now = state.clock.now();
    let polled = state
        .store
        .poll_device(sha256(code.as_bytes()), &client.id, now, SLOW_DOWN_STEP)
        .await?;
    let expired = || OAuthError::new(ErrorCode::ExpiredToken, "the device code has expired");
    let grant = match polled {
        Polled::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the device code is invalid or was issued to another client",
            ));
        }
        Polled::Replayed(_) => {
            return Err(OAuthError::invalid_grant(
                "the device code was already used",
            ));
        }
        Polled::TooFast(g) if now >= g.expires_at => return Err(expired()),
        Polled::Waiting(g) if now >= g.expires_at => return Err(expired()),
        Polled::Fresh(g) if now >= g.expires_at => return Err(expired()),
        Polled::TooFast(g) => {
            return Err(OAuthError::new(
                ErrorCode::SlowDown,
                format!(
                    "polling too fast; wait {} seconds between polls",
                    g.interval
                ),
            ));
        }
        Polled::Waiting(g) => {
            return Err(match g.decision {
                DeviceDecision::Denied => {
                    OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")
                }
                _ => OAuthError::new(
                    ErrorCode::AuthorizationPending,
                    "the user has not approved the request yet",
                ),
            });
        }
        Polled::Fresh(g) => g,
    };
    let DeviceDecision::Approved {
        identity: approver,
        auth_time,
    } = &grant.decision
    else {
        return Err(OAuthError::server("a fresh device grant was not approved"));
    };
    let user = identity::current(registry, approver)
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let family = if client.allows_grant(GrantType::RefreshToken) {
        Some(random_id().map_err(OAuthError::server)?)
    } else {
        None
    };
    let response = token_set::issue(
        request,
        UserGrant {
            identity: &user,
            scopes: &grant.scopes,
            refresh_scopes: &grant.scopes,
            resources: &grant.resources,
            requested: &requested,
            auth_time: *auth_time,
            nonce: None,
            jti: random_id().map_err(OAuthError::server)?,
            family,
            // No browser session: the family begins with the approval.
            origin: &Origin {
                sid: None,
                since: *auth_time,
                amr: Vec::new(),
            },
            outlives_session: true,
            refresh: Refresh::New,
        },
    )
    .await?;
    Ok(Granted {
        response,
        event: "token_issued",
        user_id: Some(user.subject),
    })
}
