//! Back-channel logout (OIDC Back-Channel Logout 1.0): when a session ends, each
//! client given a code in it that declares a `backchannel_logout_uri` is sent a
//! logout token naming the user (`sub`) and the session (`sid`).
//!
//! Off the request path: the logout answers at once and each delivery runs as a task
//! of its own. At most once per client per session, across replicas: the delivery
//! first takes `Store::remember_once` on the session and client, so a second ending
//! of the same session (a double-submitted form, two replicas) sends nothing more.
//! A delivery that fails (transport error, timeout, an answer other than 2xx) is
//! tried [`ATTEMPTS`] times in all, waiting [`backoff`] between, then given up. Each
//! outcome is one audit line (`backchannel_logout`) and one count in
//! `gatehouse_backchannel_logouts_total{result}`; a delivery another ending already
//! took is counted `skipped`, without an audit line.
//!
//! A session is kept in the store under its cookie's hash, which the server cannot
//! recompute from a `sid`. So that `gatehouse revoke --session SID` can tell the
//! session's clients too, the session is also kept under [`sid_key`] once a client is
//! given a code in it ([`remember`]), and forgotten at logout ([`forget`]). Beside the
//! copy, its `sid` goes into the index of its user's sessions and of each of its
//! clients' (`fanout`), which is how an ending by user or client (`gatehouse revoke
//! --user`/`--client`, a `tokens_not_before` at a reload, a user removed) finds them.

use crate::crypto::{random_id, sha256};
use crate::jwt::logout_token::{self, LogoutToken};
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{Key, Session, StoreError};
use std::sync::Arc;
use std::time::Duration;

pub mod fanout;

/// Deliveries tried per client and session, the first included.
pub(crate) const ATTEMPTS: u32 = 3;

/// How long to wait after failed attempt `n` (0-based): 250 ms, then 1 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(250 * 4u64.saturating_pow(n))
}

/// One client to tell: its id and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recipient {
    /// The client (`aud` of its logout token).
    pub(crate) client_id: String,
    /// Its `backchannel_logout_uri`.
    pub(crate) uri: String,
}

/// The clients to tell that `session` ended: those given a code in it that still
/// declare a `backchannel_logout_uri` in `registry`.
pub(crate) fn recipients(registry: &Registry, session: &Session) -> Vec<Recipient> {
    session
        .clients
        .iter()
        .filter_map(|id| {
            let client = registry.client(id)?;
            let uri = client.backchannel_logout_uri.clone()?;
            Some(Recipient {
                client_id: client.id.clone(),
                uri,
            })
        })
        .collect()
}

/// Tells the clients of `session` that it ended, each in a task of its own; returns
/// at once, with the ids of the clients being told.
pub(crate) fn notify(
    state: &Arc<AppState>,
    registry: &Arc<Registry>,
    session: &Session,
) -> Vec<String> {
    notify_only(state, registry, session, None)
}

/// [`notify`], telling only the client `only` when one is named (its tokens ended,
/// the session goes on for the others).
pub(crate) fn notify_only(
    state: &Arc<AppState>,
    registry: &Arc<Registry>,
    session: &Session,
    only: Option<&str>,
) -> Vec<String> {
    if session.sid.is_empty() {
        return Vec::new();
    }
    let mut told = Vec::new();
    let chosen = recipients(registry, session)
        .into_iter()
        .filter(|r| only.is_none_or(|id| r.client_id == id));
    for recipient in chosen {
        told.push(recipient.client_id.clone());
        let (state, registry) = (state.clone(), registry.clone());
        let (sub, sid) = (session.identity.subject.clone(), session.sid.clone());
        tokio::spawn(async move { deliver(&state, &registry, &recipient, &sub, &sid).await });
    }
    told
}

/// The store key of the copy of the session `sid` kept for [`notify_sid`]: a hash
/// under a prefix no cookie id has, so it meets no cookie's key.
pub(crate) fn sid_key(sid: &str) -> Key {
    sha256(format!(" session by sid {sid}").as_bytes())
}

/// Keeps `session` under its `sid` for `ttl` (the session's own time left), so that
/// ending it by `sid` finds its user and clients, and puts the `sid` in the indexes of
/// its user and clients for as long (`fanout::index`). Nothing for a session without
/// one.
pub(crate) async fn remember(
    state: &AppState,
    session: &Session,
    ttl: Duration,
) -> Result<(), StoreError> {
    if session.sid.is_empty() {
        return Ok(());
    }
    let key = sid_key(&session.sid);
    let (kept, indexed) = tokio::join!(
        state.store.put_session(key, session.clone(), ttl),
        fanout::index(state, session, ttl),
    );
    kept.and(indexed)
}

/// Forgets the copy [`remember`] kept of `session` and takes it out of the indexes
/// (it ended by logout).
pub(crate) async fn forget(state: &AppState, session: &Session) -> Result<(), StoreError> {
    if session.sid.is_empty() {
        return Ok(());
    }
    let (deleted, unindexed) = tokio::join!(
        state.store.delete_session(sid_key(&session.sid)),
        fanout::unindex(state, session),
    );
    deleted.and(unindexed)
}

/// Tells the clients of the session `sid` that it ended (`gatehouse revoke
/// --session`), when the store still keeps its copy: the ids of the clients being
/// told. The copy stays: another replica ending the same session at once finds it
/// too, and `remember_once` sends each client one token all the same.
pub(crate) async fn notify_sid(
    state: &Arc<AppState>,
    registry: &Arc<Registry>,
    sid: &str,
) -> Result<Vec<String>, StoreError> {
    match state.store.get_session(sid_key(sid)).await? {
        Some(session) if session.sid == sid => Ok(notify(state, registry, &session)),
        _ => Ok(Vec::new()),
    }
}

/// The store name that makes one delivery per client and session.
fn once_key(sid: &str, client_id: &str) -> String {
    format!(" logout {sid} {client_id}")
}

/// Delivers one logout token, once across replicas, retrying; logs and counts the
/// outcome.
async fn deliver(state: &AppState, registry: &Registry, to: &Recipient, sub: &str, sid: &str) {
    let until = state.clock.now() + registry.session.ttl.as_secs().max(3600);
    match state
        .store
        .remember_once(&once_key(sid, &to.client_id), until)
        .await
    {
        Ok(true) => {}
        Ok(false) => return skipped(to),
        Err(e) => return outcome(to, "failed", 0, &e.to_string()),
    }
    let token = random_id().map_err(|e| e.to_string()).and_then(|jti| {
        let token = LogoutToken {
            client_id: &to.client_id,
            sub,
            sid: Some(sid),
            jti: &jti,
        };
        logout_token::issue(&registry.jwt(), &token, state.clock.now()).map_err(|e| e.to_string())
    });
    let token = match token {
        Ok(t) => t,
        Err(e) => return outcome(to, "failed", 0, &e),
    };
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        match state.logouts.post(&to.uri, &token).await {
            Ok(status) if (200..300).contains(&status) => {
                return outcome(to, "ok", attempt + 1, "");
            }
            Ok(status) => last = format!("answered {status}"),
            Err(e) => last = e.to_string(),
        }
        if attempt + 1 < ATTEMPTS {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    outcome(to, "failed", ATTEMPTS, &last);
}

/// Counts a delivery another ending of the session took first.
fn skipped(to: &Recipient) {
    metrics::counter!("gatehouse_backchannel_logouts_total", "client_id" => to.client_id.clone(), "result" => "skipped")
        .increment(1);
}

fn outcome(to: &Recipient, result: &'static str, attempts: u32, error: &str) {
    if result == "ok" {
        tracing::info!(event = "backchannel_logout", client_id = %to.client_id, result, attempts);
    } else {
        tracing::warn!(event = "backchannel_logout", client_id = %to.client_id, result, attempts, error = %error);
    }
    metrics::counter!("gatehouse_backchannel_logouts_total", "client_id" => to.client_id.clone(), "result" => result)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_attempts_are_few() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_secs(1));
        let waited: Duration = (0..ATTEMPTS - 1).map(backoff).sum();
        assert!(waited < Duration::from_secs(5), "given up within seconds");
    }

    #[test]
    fn one_delivery_name_per_session_and_client() {
        assert_ne!(once_key("s1", "a"), once_key("s1", "b"));
        assert_ne!(once_key("s1", "a"), once_key("s2", "a"));
        assert!(once_key("s", "a").starts_with(' '), "never a client's name");
    }

    #[test]
    fn a_sessions_copy_is_keyed_by_its_sid_alone() {
        assert_eq!(sid_key("s1"), sid_key("s1"));
        assert_ne!(sid_key("s1"), sid_key("s2"));
        assert_ne!(sid_key("s1"), sha256(b"s1"), "never a cookie id's key");
    }
}
