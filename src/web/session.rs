//! Login sessions: a random id in a cookie, the session itself in the store under the
//! id's SHA-256.

use super::cookies::{self, Kind};
use crate::crypto::sha256;
use crate::identity;
use crate::oauth::standing::{self, Lineage};
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{Key, Session, StoreError};
use actix_web::HttpRequest;

/// The browser's live session, with its store key.
pub(crate) struct Current {
    pub(crate) key: Key,
    pub(crate) session: Session,
}

/// The session of the browser making `req`, if it has a live one whose user still
/// exists in the config, not ended (`gatehouse revoke --session`) nor begun before a
/// `tokens_not_before` of its user, and, if a provider's rules let them in, whose
/// rules were not narrowed since (`standing::session`).
pub(crate) async fn current(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
) -> Result<Option<Current>, StoreError> {
    match stored(req, state, registry).await? {
        Some(stored) => standing(state, registry, stored).await,
        None => Ok(None),
    }
}

/// A session the browser named and the store had, its user still in the config,
/// whose standing is not read yet: nothing may be shown or given for it before
/// [`stands`] says yes. [`standing`] or [`Stored::stood`] makes it a [`Current`].
pub(crate) struct Stored(Current);

impl Stored {
    /// The stored session.
    pub(crate) fn session(&self) -> &Session {
        &self.0.session
    }

    /// The session as current, given what [`stands`] said of it: none when it does not
    /// stand.
    pub(crate) fn stood(self, stands: bool) -> Option<Current> {
        stands.then_some(self.0)
    }
}

/// The session the browser making `req` names, if the store has it and its user still
/// exists in the config: [`current`] before its standing is read, for a step that
/// reads the standing beside a store write of its own.
pub(crate) async fn stored(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
) -> Result<Option<Stored>, StoreError> {
    let Some(id) = cookies::read(req, registry, Kind::Session) else {
        return Ok(None);
    };
    let key = sha256(id.as_bytes());
    let Some(session) = state.store.get_session(key).await? else {
        return Ok(None);
    };
    if identity::current(registry, &session.identity).is_none() {
        return Ok(None);
    }
    Ok(Some(Stored(Current { key, session })))
}

/// The [`stored`] session as current, if it stands ([`stands`]).
pub(crate) async fn standing(
    state: &AppState,
    registry: &Registry,
    stored: Stored,
) -> Result<Option<Current>, StoreError> {
    let stands = stands(state, registry, &stored).await?;
    Ok(stored.stood(stands))
}

/// Whether the [`stored`] session still stands: not ended, not begun before a
/// not-before of its user, and admitted under its provider's rules of now
/// (`standing::session`, one read of the store).
pub(crate) async fn stands(
    state: &AppState,
    registry: &Registry,
    stored: &Stored,
) -> Result<bool, StoreError> {
    let session = stored.session();
    let lineage = Lineage {
        user: Some(&session.identity.subject),
        client: None,
        sid: Some(&session.sid)
            .filter(|s| !s.is_empty())
            .map(String::as_str),
    };
    let vouched_at =
        (session.identity.upstream.as_ref()).map_or(session.auth_time, |f| f.checked_at);
    standing::session(
        state,
        registry,
        &lineage,
        session.created_at,
        &session.identity,
        vouched_at,
    )
    .await
}
