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
    let lineage = Lineage {
        user: Some(&session.identity.subject),
        client: None,
        sid: Some(&session.sid)
            .filter(|s| !s.is_empty())
            .map(String::as_str),
    };
    let vouched_at =
        (session.identity.upstream.as_ref()).map_or(session.auth_time, |f| f.checked_at);
    let began = session.created_at;
    if !standing::session(
        state,
        registry,
        &lineage,
        began,
        &session.identity,
        vouched_at,
    )
    .await?
    {
        return Ok(None);
    }
    Ok(Some(Current { key, session }))
}
