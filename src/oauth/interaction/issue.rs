//! The end of an interaction: the code issued to the user of the session (carrying the
//! upstream token the request kept for it), a pushed request used up, and the note in
//! the session that the client was given a code in it.

use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::grants::authorization_code;
use crate::oauth::par;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{Key, Session, StoreError};

/// Why no code was issued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotIssued {
    /// The request was pushed (PAR) and its one code was issued already.
    #[error("the pushed authorization request was used already")]
    PushedUsed,
    /// The store (or the random source) failed.
    #[error("{0}")]
    Unavailable(String),
}

/// Issues the code for `request` to the user of `session` and returns the client's
/// redirect URI carrying it. The upstream token of the login that made this request
/// (`upstream_token`) goes to this code alone (and from it to one refresh family); a
/// pushed request gives one code, whichever login page reload got there.
pub(crate) async fn code(
    state: &AppState,
    registry: &Registry,
    request: &AuthRequest,
    session: &Session,
    upstream_token: Option<&String>,
) -> Result<String, NotIssued> {
    let mut identity = session.identity.clone();
    if let (Some(federation), Some(token)) = (identity.upstream.as_mut(), upstream_token) {
        federation.token = Some(token.clone());
    }
    if !par::use_up(state, registry, request)
        .await
        .map_err(|e| NotIssued::Unavailable(e.to_string()))?
    {
        return Err(NotIssued::PushedUsed);
    }
    authorization_code::issue_code(
        state,
        registry,
        request,
        &identity,
        session.auth_time,
        session.origin(),
    )
    .await
    .map_err(|e| NotIssued::Unavailable(e.to_string()))
}

/// Records in the session stored under `key` that `client_id` was given a code in it
/// (once), so that its end names and tells that client.
pub(crate) async fn note_client(
    state: &AppState,
    registry: &Registry,
    key: Key,
    session: &Session,
    client_id: &str,
) -> Result<(), StoreError> {
    if session.clients.contains(client_id) {
        return Ok(());
    }
    let mut session = session.clone();
    session.clients.insert(client_id.to_owned());
    let began = session.created_at.max(session.auth_time);
    let left = (began + registry.session.ttl.as_secs())
        .saturating_sub(state.clock.now())
        .max(1);
    let left = std::time::Duration::from_secs(left);
    // Also under its sid, so that `gatehouse revoke --session` can tell its clients.
    let (kept, copy) = tokio::join!(
        state.store.put_session(key, session.clone(), left),
        crate::oauth::backchannel::remember(state, &session, left),
    );
    kept.and(copy)
}
