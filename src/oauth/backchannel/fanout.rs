//! Endings that reach sessions by user or by client: `gatehouse revoke --user` and
//! `--client`, a `tokens_not_before` of a user or client that appears or moves later at
//! a reload, and a user removed from the config at a reload. Each finds the sessions it
//! ends through an index in the store and tells their clients with the one delivery
//! machinery of [`super`] (once per client and session, across replicas: two replicas
//! reloading the same config find the same sessions, and `remember_once` lets one send).
//!
//! The indexes (`Store::index_session`), written beside the session's copy under its
//! `sid` when a client is given a code in it ([`super::remember`]), each member
//! living as long as the session, taken out at logout ([`super::forget`]):
//! - the sessions of a user ([`user_index`]): at most [`USER_SESSIONS`], the newest
//!   (those that expire last); an older one past the cap is not told, though its
//!   tokens end all the same;
//! - the sessions of a client ([`client_index`]): bounded by the sessions that exist
//!   (there is one only after a login, and it expires), and capped at
//!   [`CLIENT_SESSIONS`] all the same.

use super::{notify_only, sid_key};
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{Session, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The most sessions of one user an ending by user tells: the newest.
pub(crate) const USER_SESSIONS: usize = 64;

/// The most sessions of one client an ending by client tells: the newest.
pub(crate) const CLIENT_SESSIONS: usize = 100_000;

/// The store name of the index of the sessions of the user `sub`. A leading space: no
/// client id or other name meets it.
pub(crate) fn user_index(sub: &str) -> String {
    format!(" sessions of user {sub}")
}

/// The store name of the index of the sessions in which the client `id` got a code.
pub(crate) fn client_index(id: &str) -> String {
    format!(" sessions of client {id}")
}

/// What ended, reaching sessions through an index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ending {
    /// The sessions of the user `sub` begun at or before `cut` (`None`: all of them,
    /// the user is gone): every client of each is told.
    User { sub: String, cut: Option<u64> },
    /// The tokens of the client `id` from sessions begun at or before `cut`: that
    /// client alone is told, the session goes on for the others.
    Client { id: String, cut: Option<u64> },
}

impl Ending {
    /// The index of the sessions it reaches.
    fn index(&self) -> String {
        match self {
            Ending::User { sub, .. } => user_index(sub),
            Ending::Client { id, .. } => client_index(id),
        }
    }

    /// The one client to tell, for an ending by client.
    fn only(&self) -> Option<&str> {
        match self {
            Ending::User { .. } => None,
            Ending::Client { id, .. } => Some(id.as_str()),
        }
    }
}

/// Whether `ending` ends `session`: its user's (or one its client got a code in),
/// begun at or before the cut (whole seconds, as `standing::falls` counts).
pub(crate) fn reaches(ending: &Ending, session: &Session) -> bool {
    let (named, cut) = match ending {
        Ending::User { sub, cut } => (session.identity.subject == *sub, cut),
        Ending::Client { id, cut } => (session.clients.contains(id), cut),
    };
    named && cut.is_none_or(|at| session.created_at <= at)
}

/// `now` when it moved later than `before` (or appeared).
fn moved_later(before: Option<u64>, now: Option<u64>) -> Option<u64> {
    let now = now?;
    before.is_none_or(|b| now > b).then_some(now)
}

/// What a reload from `old` to `new` ends by user or client: users removed, and
/// `tokens_not_before` of users and clients that appeared or moved later. Sorted, so
/// every replica reloading the same change walks the same list.
pub(crate) fn reload_endings(old: &Registry, new: &Registry) -> Vec<Ending> {
    let removed = old
        .users()
        .filter(|u| new.user_by_id(&u.id).is_none())
        .map(|u| Ending::User {
            sub: u.id.clone(),
            cut: None,
        });
    let users = new.users().filter_map(|u| {
        let before = old.user_by_id(&u.id).and_then(|o| o.tokens_not_before);
        let cut = moved_later(before, u.tokens_not_before)?;
        Some(Ending::User {
            sub: u.id.clone(),
            cut: Some(cut),
        })
    });
    let clients = new.clients().iter().filter_map(|c| {
        let before = old.client(&c.id).and_then(|o| o.tokens_not_before);
        let cut = moved_later(before, c.tokens_not_before)?;
        Some(Ending::Client {
            id: c.id.clone(),
            cut: Some(cut),
        })
    });
    let mut endings: Vec<Ending> = removed.chain(users).chain(clients).collect();
    endings.sort();
    endings
}

/// Puts `session` (which has a `sid`) in the index of its user and of each client
/// given a code in it, for `ttl` (its time left).
pub(crate) async fn index(
    state: &AppState,
    session: &Session,
    ttl: Duration,
) -> Result<(), StoreError> {
    let until = state.clock.now().saturating_add(ttl.as_secs().max(1));
    let sid = &session.sid;
    let user = user_index(&session.identity.subject);
    state
        .store
        .index_session(&user, sid, until, USER_SESSIONS)
        .await?;
    for client in &session.clients {
        let name = client_index(client);
        state
            .store
            .index_session(&name, sid, until, CLIENT_SESSIONS)
            .await?;
    }
    Ok(())
}

/// Takes `session` out of the indexes [`index`] put it in (it ended).
pub(crate) async fn unindex(state: &AppState, session: &Session) -> Result<(), StoreError> {
    let sid = &session.sid;
    let user = user_index(&session.identity.subject);
    state.store.unindex_session(&user, sid).await?;
    for client in &session.clients {
        state
            .store
            .unindex_session(&client_index(client), sid)
            .await?;
    }
    Ok(())
}

/// How many session copies are read at once.
const READS_AT_ONCE: usize = 32;

/// What an ending told.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Told {
    /// The sessions it reached that had a client to tell.
    pub(crate) sessions: usize,
    /// The clients being told, each once, sorted.
    pub(crate) clients: Vec<String>,
}

/// Tells the clients of the sessions `ending` reaches, each delivery in a task of its
/// own. The sessions' copies are read [`READS_AT_ONCE`] at a time.
pub(crate) async fn tell(
    state: &Arc<AppState>,
    registry: &Arc<Registry>,
    ending: &Ending,
) -> Result<Told, StoreError> {
    let sids = state.store.indexed_sessions(&ending.index()).await?;
    let (mut sessions, mut clients) = (0, BTreeSet::new());
    for chunk in sids.chunks(READS_AT_ONCE) {
        let mut reads = tokio::task::JoinSet::new();
        for sid in chunk {
            let (state, sid) = (state.clone(), sid.clone());
            reads.spawn(async move {
                let copy = state.store.get_session(sid_key(&sid)).await;
                copy.map(|s| s.filter(|s| s.sid == sid))
            });
        }
        while let Some(read) = reads.join_next().await {
            let copy = read.map_err(|e| StoreError(format!("reading a session: {e}")))??;
            let Some(session) = copy.filter(|s| reaches(ending, s)) else {
                continue;
            };
            let told = notify_only(state, registry, &session, ending.only());
            sessions += usize::from(!told.is_empty());
            clients.extend(told);
        }
    }
    Ok(Told {
        sessions,
        clients: clients.into_iter().collect(),
    })
}

/// [`tell`] for each of `endings`, in a task of its own (a reload does not wait for
/// it); a store that fails is logged.
pub(crate) fn tell_in_background(
    state: &Arc<AppState>,
    registry: &Arc<Registry>,
    endings: Vec<Ending>,
) {
    if endings.is_empty() {
        return;
    }
    let (state, registry) = (state.clone(), registry.clone());
    tokio::spawn(async move {
        for ending in &endings {
            if let Err(e) = tell(&state, &registry, ending).await {
                tracing::warn!(error = %e, ending = ?ending, "finding the sessions an ending reaches");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Identity, IdentitySource};

    fn session(sub: &str, created_at: u64, clients: &[&str]) -> Session {
        Session {
            identity: Identity {
                source: IdentitySource::Local,
                subject: sub.into(),
                username: sub.into(),
                name: None,
                email: None,
                email_verified: false,
                groups: vec![],
                upstream: None,
                picture: None,
            },
            auth_time: created_at,
            consents: Default::default(),
            sid: "s".into(),
            created_at,
            amr: vec![],
            clients: clients.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn user(sub: &str, cut: Option<u64>) -> Ending {
        Ending::User {
            sub: sub.into(),
            cut,
        }
    }

    fn client(id: &str, cut: Option<u64>) -> Ending {
        Ending::Client { id: id.into(), cut }
    }

    #[test]
    fn an_ending_reaches_its_users_or_clients_sessions_begun_until_the_cut() {
        let alices = session("alice", 100, &["web"]);
        let cases = [
            (user("alice", None), true),
            (user("alice", Some(100)), true),
            (user("alice", Some(99)), false),
            (user("bob", None), false),
            (client("web", Some(100)), true),
            (client("web", Some(99)), false),
            (client("web", None), true),
            (client("app", None), false),
        ];
        for (ending, expected) in cases {
            assert_eq!(reaches(&ending, &alices), expected, "{ending:?}");
        }
    }

    #[test]
    fn a_cut_off_counts_when_it_appears_or_moves_later() {
        assert_eq!(moved_later(None, Some(5)), Some(5));
        assert_eq!(moved_later(Some(4), Some(5)), Some(5));
        assert_eq!(moved_later(Some(5), Some(5)), None);
        assert_eq!(
            moved_later(Some(6), Some(5)),
            None,
            "earlier revives, tells none"
        );
        assert_eq!(moved_later(Some(6), None), None);
        assert_eq!(moved_later(None, None), None);
    }

    /// A registry of `users` (`(id, tokens_not_before)`) and a client `web` with
    /// `web_cut`.
    fn registry(users: &[(&str, Option<&str>)], web_cut: Option<&str>) -> Registry {
        let cut = |at: Option<&str>| {
            at.map(|at| format!("tokens_not_before = \"{at}\"\n"))
                .unwrap_or_default()
        };
        let mut text = format!(
            "issuer = \"http://127.0.0.1:9\"\n[[clients]]\nid = \"web\"\npublic = true\nredirect_uris = [\"https://web.example.com/cb\"]\n{}",
            cut(web_cut)
        );
        for (id, at) in users {
            text.push_str(&format!(
                "[[users]]\nid = \"{id}\"\nusername = \"{id}\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0hBjGbGFQ1ZnTgiTvtFVmAyG5mPMVYVC0QPcXkmOqQc\"\n{}",
                cut(*at)
            ));
        }
        let loaded = crate::load::check_text(std::path::Path::new("/nonexistent/g.toml"), &text)
            .unwrap_or_else(|r| panic!("{r}"));
        Registry::new(loaded.config, 1, std::time::SystemTime::now(), None)
    }

    #[test]
    fn a_reload_ends_removed_users_and_cut_offs_that_appear_or_move_later() {
        const T1: &str = "2026-12-04T10:00:00Z";
        const T2: &str = "2026-12-05T10:00:00Z";
        let (t1, t2) = (1_796_378_400, 1_796_464_800);
        let old = registry(&[("ann", None), ("bob", Some(T2)), ("cy", None)], Some(T1));
        let new = registry(
            &[("ann", Some(T1)), ("bob", Some(T1)), ("dee", Some(T1))],
            Some(T2),
        );
        assert_eq!(
            reload_endings(&old, &new),
            [
                user("ann", Some(t1)),
                user("cy", None),
                user("dee", Some(t1)),
                client("web", Some(t2)),
            ],
            "ann's cut appeared, bob's moved earlier (nothing to tell), cy removed"
        );
        assert!(
            reload_endings(&new, &new).is_empty(),
            "no change, no ending"
        );
    }

    #[test]
    fn index_names_are_apart() {
        assert_ne!(user_index("x"), client_index("x"));
        assert!(user_index("x").starts_with(' ') && client_index("x").starts_with(' '));
    }
}
