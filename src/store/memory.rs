//! The in-memory store: one concurrent map per kind of value, each entry with its
//! expiry; reads ignore expired entries and a periodic sweep frees them.

use super::{CodeGrant, IssuedIds, Key, Redeemed, RefreshGrant, Session, Store, StoreFuture};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use std::future::ready;
use std::time::{Duration, Instant};

struct Entry<T> {
    value: T,
    used: bool,
    expires: Instant,
}

impl<T> Entry<T> {
    fn new(value: T, ttl: Duration) -> Self {
        Self {
            value,
            used: false,
            expires: Instant::now() + ttl,
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.expires > now
    }
}

/// A refresh grant as the memory store keeps it: its strings (family, client id, user
/// id, space-joined scopes) in one allocation, the rest inline, the whole boxed so the
/// hash table's free slots stay small. Measured with a million live tokens
/// (`cargo bench --bench store_memory`): 645 bytes of RSS per token stored inline as
/// `RefreshGrant`, 520 boxed, and this layout below 300.
#[derive(Clone)]
struct PackedRefresh {
    text: Box<str>,
    /// Byte lengths of the family, client id and user id at the front of `text`.
    lens: [u32; 3],
    auth_time: u64,
    issued_at: u64,
    expires_at: u64,
    credential: Option<crate::store::CredentialId>,
}

impl PackedRefresh {
    fn pack(g: RefreshGrant) -> Self {
        let scopes = g.scopes.join(" ");
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        let lens = [len(&g.family), len(&g.client_id), len(&g.user_id)];
        let text = [g.family.as_str(), &g.client_id, &g.user_id, &scopes]
            .concat()
            .into_boxed_str();
        Self {
            text,
            lens,
            auth_time: g.auth_time,
            issued_at: g.issued_at,
            expires_at: g.expires_at,
            credential: g.credential,
        }
    }

    fn unpack(&self) -> RefreshGrant {
        let mut rest: &str = &self.text;
        let mut take = |n: u32| {
            let (head, tail) = rest.split_at((n as usize).min(rest.len()));
            rest = tail;
            head.to_owned()
        };
        let family = take(self.lens[0]);
        let client_id = take(self.lens[1]);
        let user_id = take(self.lens[2]);
        RefreshGrant {
            family,
            client_id,
            user_id,
            scopes: rest
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            auth_time: self.auth_time,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            credential: self.credential,
        }
    }
}

/// The default store: everything in this process's memory.
#[derive(Default)]
pub struct MemoryStore {
    codes: DashMap<Key, Entry<CodeGrant>>,
    /// Packed and boxed: refresh tokens are the store's bulk (see `PackedRefresh`).
    refresh: DashMap<Key, Entry<Box<PackedRefresh>>>,
    revoked_families: DashMap<String, Entry<()>>,
    denied_jtis: DashMap<String, Entry<()>>,
    sessions: DashMap<Key, Entry<Session>>,
    pending: DashMap<Key, Entry<String>>,
    failures: DashMap<String, Entry<u32>>,
}

fn done<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(ready(Ok(value)))
}

/// Uses a single-use entry: marks it used and says whether it was already.
fn redeem<K: Eq + std::hash::Hash, T: Clone>(
    map: &DashMap<K, Entry<T>>,
    key: K,
    on_first_use: impl FnOnce(&mut T),
) -> Redeemed<T> {
    match map.get_mut(&key) {
        Some(mut e) if e.live(Instant::now()) => {
            if e.used {
                Redeemed::Replayed(e.value.clone())
            } else {
                e.used = true;
                on_first_use(&mut e.value);
                Redeemed::Fresh(e.value.clone())
            }
        }
        _ => Redeemed::Unknown,
    }
}

fn get_live<K, Q, T>(map: &DashMap<K, Entry<T>>, key: &Q) -> Option<T>
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<Q>,
    Q: Eq + std::hash::Hash + ?Sized,
    T: Clone,
{
    map.get(key)
        .filter(|e| e.live(Instant::now()))
        .map(|e| e.value.clone())
}

fn remaining(expires: Instant, now: Instant) -> Duration {
    expires.saturating_duration_since(now)
}

impl MemoryStore {
    /// Frees expired entries; run it periodically.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.codes.retain(|_, e| e.live(now));
        self.refresh.retain(|_, e| e.live(now));
        self.revoked_families.retain(|_, e| e.live(now));
        self.denied_jtis.retain(|_, e| e.live(now));
        self.sessions.retain(|_, e| e.live(now));
        self.pending.retain(|_, e| e.live(now));
        self.failures.retain(|_, e| e.live(now));
    }
}

impl Store for MemoryStore {
    fn put_code(&self, key: Key, grant: CodeGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        self.codes.insert(key, Entry::new(grant, ttl));
        done(())
    }

    fn redeem_code(&self, key: Key, issued: IssuedIds) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        done(redeem(&self.codes, key, |grant| {
            grant.issued = Some(issued)
        }))
    }

    fn put_refresh(&self, key: Key, grant: RefreshGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        self.refresh
            .insert(key, Entry::new(Box::new(PackedRefresh::pack(grant)), ttl));
        done(())
    }

    fn peek_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        let seen = match self.refresh.get(&key) {
            Some(e) if e.live(Instant::now()) && e.used => Redeemed::Replayed(e.value.unpack()),
            Some(e) if e.live(Instant::now()) => Redeemed::Fresh(e.value.unpack()),
            _ => Redeemed::Unknown,
        };
        done(seen)
    }

    fn use_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        done(match redeem(&self.refresh, key, |_| {}) {
            Redeemed::Fresh(g) => Redeemed::Fresh(g.unpack()),
            Redeemed::Replayed(g) => Redeemed::Replayed(g.unpack()),
            Redeemed::Unknown => Redeemed::Unknown,
        })
    }

    fn revoke_family(&self, family: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        self.revoked_families
            .insert(family.to_owned(), Entry::new((), ttl));
        done(())
    }

    fn family_revoked(&self, family: &str) -> StoreFuture<'_, bool> {
        done(get_live(&self.revoked_families, family).is_some())
    }

    fn deny_jti(&self, jti: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        self.denied_jtis.insert(jti.to_owned(), Entry::new((), ttl));
        done(())
    }

    fn jti_denied(&self, jti: &str) -> StoreFuture<'_, bool> {
        done(get_live(&self.denied_jtis, jti).is_some())
    }

    fn put_session(&self, key: Key, session: Session, ttl: Duration) -> StoreFuture<'_, ()> {
        self.sessions.insert(key, Entry::new(session, ttl));
        done(())
    }

    fn get_session(&self, key: Key) -> StoreFuture<'_, Option<Session>> {
        done(get_live(&self.sessions, &key))
    }

    fn delete_session(&self, key: Key) -> StoreFuture<'_, ()> {
        self.sessions.remove(&key);
        done(())
    }

    fn put_pending(&self, key: Key, request: String, ttl: Duration) -> StoreFuture<'_, ()> {
        self.pending.insert(key, Entry::new(request, ttl));
        done(())
    }

    fn get_pending(&self, key: Key) -> StoreFuture<'_, Option<String>> {
        done(get_live(&self.pending, &key))
    }

    fn delete_pending(&self, key: Key) -> StoreFuture<'_, ()> {
        self.pending.remove(&key);
        done(())
    }

    fn add_failure(&self, name: &str, window: Duration) -> StoreFuture<'_, (u32, Duration)> {
        let now = Instant::now();
        let result = match self.failures.entry(name.to_owned()) {
            MapEntry::Occupied(mut e) if e.get().live(now) => {
                let entry = e.get_mut();
                entry.value = entry.value.saturating_add(1);
                (entry.value, remaining(entry.expires, now))
            }
            MapEntry::Occupied(mut e) => {
                e.insert(Entry::new(1, window));
                (1, window)
            }
            MapEntry::Vacant(e) => {
                e.insert(Entry::new(1, window));
                (1, window)
            }
        };
        done(result)
    }

    fn failures(&self, name: &str) -> StoreFuture<'_, (u32, Duration)> {
        let now = Instant::now();
        let result = self
            .failures
            .get(name)
            .filter(|e| e.live(now))
            .map_or((0, Duration::ZERO), |e| {
                (e.value, remaining(e.expires, now))
            });
        done(result)
    }

    fn sizes(&self) -> StoreFuture<'_, Vec<(&'static str, usize)>> {
        done(vec![
            ("codes", self.codes.len()),
            ("refresh_tokens", self.refresh.len()),
            ("revoked_families", self.revoked_families.len()),
            ("denied_jtis", self.denied_jtis.len()),
            ("sessions", self.sessions.len()),
            ("pending_logins", self.pending.len()),
            ("failure_counters", self.failures.len()),
        ])
    }

    fn clear_failures(&self, name: &str) -> StoreFuture<'_, ()> {
        self.failures.remove(name);
        done(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: None,
            code_challenge: "x".into(),
            scopes: vec![],
            nonce: None,
            user_id: "u".into(),
            auth_time: 0,
            issued: None,
        }
    }

    fn ids(jti: &str) -> IssuedIds {
        IssuedIds {
            access_jti: jti.into(),
            access_exp: 0,
            refresh_family: Some("f".into()),
        }
    }

    #[tokio::test]
    async fn a_code_is_single_use_and_remembers_what_it_issued() {
        let store = MemoryStore::default();
        store
            .put_code([1; 32], grant(), Duration::from_secs(60))
            .await
            .expect("put");
        assert!(matches!(
            store.redeem_code([1; 32], ids("first")).await,
            Ok(Redeemed::Fresh(_))
        ));
        match store.redeem_code([1; 32], ids("second")).await {
            Ok(Redeemed::Replayed(g)) => {
                assert_eq!(g.issued.map(|i| i.access_jti).as_deref(), Some("first"))
            }
            other => panic!("expected a replay, got {other:?}"),
        }
        assert!(matches!(
            store.redeem_code([2; 32], ids("x")).await,
            Ok(Redeemed::Unknown)
        ));
    }

    #[tokio::test]
    async fn a_refresh_grant_survives_packing() {
        let store = MemoryStore::default();
        let grant = RefreshGrant {
            family: "fam-1".into(),
            client_id: "ç-client".into(),
            user_id: "u 1".into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            auth_time: 1,
            issued_at: 2,
            expires_at: 3,
            credential: Some([7; 16]),
        };
        store
            .put_refresh([9; 32], grant.clone(), Duration::from_secs(60))
            .await
            .expect("put");
        match store.use_refresh([9; 32]).await {
            Ok(Redeemed::Fresh(back)) => {
                assert_eq!(
                    (
                        back.family,
                        back.client_id,
                        back.user_id,
                        back.scopes,
                        back.auth_time,
                        back.issued_at,
                        back.expires_at,
                        back.credential
                    ),
                    (
                        grant.family,
                        grant.client_id,
                        grant.user_id,
                        grant.scopes,
                        1,
                        2,
                        3,
                        Some([7; 16])
                    )
                );
            }
            other => panic!("expected the grant back, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn expired_entries_are_gone() {
        let store = MemoryStore::default();
        store
            .put_code([1; 32], grant(), Duration::ZERO)
            .await
            .expect("put");
        assert!(matches!(
            store.redeem_code([1; 32], ids("a")).await,
            Ok(Redeemed::Unknown)
        ));
        store.sweep();
        assert!(store.codes.is_empty());
    }

    #[tokio::test]
    async fn failures_count_within_a_window() {
        let store = MemoryStore::default();
        assert_eq!(
            store
                .add_failure("u", Duration::from_secs(60))
                .await
                .expect("add")
                .0,
            1
        );
        assert_eq!(
            store
                .add_failure("u", Duration::from_secs(60))
                .await
                .expect("add")
                .0,
            2
        );
        assert_eq!(store.failures("u").await.expect("get").0, 2);
        store.clear_failures("u").await.expect("clear");
        assert_eq!(store.failures("u").await.expect("get").0, 0);
    }
}
