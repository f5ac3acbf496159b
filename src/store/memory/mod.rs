//! The in-memory store: one concurrent map per kind of value, each entry with its
//! expiry on the server's clock; reads ignore expired entries and a periodic sweep
//! frees them.

use super::{
    CodeGrant, DeviceDecision, DeviceGrant, IssuedIds, Key, Polled, Redeemed, RefreshGrant,
    Session, Store, StoreError, StoreFuture,
};
use crate::clock::Clock;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use std::collections::BTreeMap;
use std::future::ready;
use std::sync::{Arc, Weak};
use std::time::Duration;

mod entry;
mod packed;
mod records;

pub(crate) use entry::Millis;
use entry::{Entry, get_live, redeem, redeem_with, remaining};
use packed::PackedRefresh;
pub(crate) use records::{Kind, NEVER, Record, index_member_id};
use records::{decode, encode, export_from, import_into, index_member_of, key_of, name_of};

/// A refresh token's key in its table: the first 16 bytes of its [`Key`] (the token's
/// SHA-256). Finding a token whose hash begins with a stored token's 128 bits is as far
/// out of reach as finding one with its whole hash (2^128 tries; two issued tokens
/// sharing them, some 2^64 tokens), and the 16 bytes saved in every slot, with the
/// table under half full after it doubles, are some 34 bytes a token (issue 28).
type RefreshKey = [u8; 16];

fn refresh_key(key: &Key) -> RefreshKey {
    let mut short = [0; 16];
    short.copy_from_slice(&key[..16]);
    short
}

/// One session index: each member's sid to its expiry.
type SessionIndex = BTreeMap<String, Millis>;

/// How often used and expired codes are freed. A code is single-use and short-lived
/// and one comes with every login, so at a busy server's rate the used codes waiting
/// for the general sweep were a good part of its memory (issue 28): they go within a
/// second of expiring.
const SWEEP_CODES_EVERY: Duration = Duration::from_secs(1);

/// How often every other expired entry is freed, in sweeps of the codes.
const SWEEP_ALL_EVERY: u32 = 30;

/// The default store: everything in this process's memory.
pub struct MemoryStore {
    clock: Clock,
    /// Boxed: a used code stays until it expires, and its slot in the table should
    /// cost a pointer, not a whole grant (see `CodeGrant::replay_record`).
    codes: DashMap<Key, Entry<Box<CodeGrant>>>,
    /// Packed: refresh tokens are the store's bulk (see `PackedRefresh`).
    refresh: DashMap<RefreshKey, Entry<PackedRefresh>>,
    revoked_families: DashMap<String, Entry<()>>,
    denied_jtis: DashMap<String, Entry<()>>,
    /// Names remembered once (`Store::remember_once`): client assertion ids.
    remembered: DashMap<String, Entry<()>>,
    not_before: DashMap<String, Entry<u64>>,
    sessions: DashMap<Key, Entry<Session>>,
    /// Session indexes (`Store::index_session`): each a name's members, a sid to its
    /// expiry; an index lives while a member does.
    session_index: DashMap<String, SessionIndex>,
    pending: DashMap<Key, Entry<String>>,
    failures: DashMap<String, Entry<u32>>,
    /// Device codes (RFC 8628); `used` once the approved tokens were handed out.
    devices: DashMap<Key, Entry<DeviceGrant>>,
    /// User codes, each naming its device code.
    user_codes: DashMap<Key, Entry<Key>>,
    /// Secrets shared by whoever uses this store (`Store::shared_secret`).
    secrets: DashMap<String, [u8; 32]>,
}

fn done<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(ready(Ok(value)))
}

/// A refresh grant found in the table, decoded.
fn unpacked(found: Redeemed<PackedRefresh>) -> Result<Redeemed<RefreshGrant>, StoreError> {
    Ok(match found {
        Redeemed::Fresh(p) => Redeemed::Fresh(p.unpack()?),
        Redeemed::Replayed(p) => Redeemed::Replayed(p.unpack()?),
        Redeemed::Unknown => Redeemed::Unknown,
    })
}

/// Frees `store`'s expired codes every second and its other expired entries every
/// 30 s, for as long as it exists.
pub(crate) fn spawn_sweeper(store: &Arc<MemoryStore>) {
    let store: Weak<MemoryStore> = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_CODES_EVERY);
        let mut ticks = 0u32;
        loop {
            tick.tick().await;
            let Some(store) = store.upgrade() else { return };
            ticks = (ticks + 1) % SWEEP_ALL_EVERY;
            if ticks == 0 {
                store.sweep();
            } else {
                store.sweep_codes();
            }
        }
    });
}

impl MemoryStore {
    /// An empty store whose entries expire on `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            codes: DashMap::new(),
            refresh: DashMap::new(),
            revoked_families: DashMap::new(),
            denied_jtis: DashMap::new(),
            remembered: DashMap::new(),
            not_before: DashMap::new(),
            sessions: DashMap::new(),
            session_index: DashMap::new(),
            pending: DashMap::new(),
            failures: DashMap::new(),
            devices: DashMap::new(),
            user_codes: DashMap::new(),
            secrets: DashMap::new(),
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Frees expired codes (used or not).
    pub(crate) fn sweep_codes(&self) {
        let now = self.now();
        self.codes.retain(|_, e| e.live(now));
        // Codes come and go in bursts: a table grown for a burst's used codes is
        // given back once they expired (one rehash of the few still live).
        if self.codes.capacity() > 4 * self.codes.len().max(1024) {
            self.codes.shrink_to_fit();
        }
    }

    /// Frees every expired entry; run it periodically.
    pub(crate) fn sweep(&self) {
        self.sweep_codes();
        let now = self.now();
        self.refresh.retain(|_, e| e.live(now));
        self.revoked_families.retain(|_, e| e.live(now));
        self.denied_jtis.retain(|_, e| e.live(now));
        self.remembered.retain(|_, e| e.live(now));
        self.not_before.retain(|_, e| e.live(now));
        self.sessions.retain(|_, e| e.live(now));
        self.session_index.retain(|_, members| {
            members.retain(|_, expires| *expires > now);
            !members.is_empty()
        });
        self.pending.retain(|_, e| e.live(now));
        self.failures.retain(|_, e| e.live(now));
        self.devices.retain(|_, e| e.live(now));
        self.user_codes.retain(|_, e| e.live(now));
    }
}

impl Store for MemoryStore {
    fn put_code(&self, key: Key, grant: CodeGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        self.codes
            .insert(key, Entry::new(Box::new(grant), self.now(), ttl));
        done(())
    }

    fn redeem_code(&self, key: Key, issued: IssuedIds) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        // The used code stays until it expires, as what a replay needs and no more.
        let redeemed = redeem_with(&self.codes, key, self.now(), |grant| {
            grant.issued = Some(issued);
            let kept = Box::new(grant.replay_record());
            std::mem::replace(grant, kept)
        });
        done(redeemed.map(|grant| *grant))
    }

    fn peek_code(&self, key: Key) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        let now = self.now();
        done(match self.codes.get(&key) {
            Some(e) if e.live(now) && e.used() => Redeemed::Replayed((*e.value).clone()),
            Some(e) if e.live(now) => Redeemed::Fresh((*e.value).clone()),
            _ => Redeemed::Unknown,
        })
    }

    fn put_refresh(&self, key: Key, grant: RefreshGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        let stored = PackedRefresh::pack(&grant).map(|packed| {
            self.refresh
                .insert(refresh_key(&key), Entry::new(packed, self.now(), ttl));
        });
        Box::pin(ready(stored))
    }

    fn peek_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        let now = self.now();
        let seen = match self.refresh.get(&refresh_key(&key)) {
            Some(e) if e.live(now) && e.used() => e.value.unpack().map(Redeemed::Replayed),
            Some(e) if e.live(now) => e.value.unpack().map(Redeemed::Fresh),
            _ => Ok(Redeemed::Unknown),
        };
        Box::pin(ready(seen))
    }

    fn use_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        let used = redeem(&self.refresh, refresh_key(&key), self.now(), |_| {});
        Box::pin(ready(unpacked(used)))
    }

    fn revoke_family(&self, family: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        self.revoked_families
            .insert(family.to_owned(), Entry::new((), self.now(), ttl));
        done(())
    }

    fn family_revoked(&self, family: &str) -> StoreFuture<'_, bool> {
        done(get_live(&self.revoked_families, family, self.now()).is_some())
    }

    fn set_not_before(&self, client_id: &str, at: u64, ttl: Duration) -> StoreFuture<'_, ()> {
        let now = self.now();
        let fresh = Entry::new(at, now, ttl);
        match self.not_before.entry(client_id.to_owned()) {
            MapEntry::Occupied(mut e) if e.get().live(now) => {
                let held = e.get_mut();
                held.value = held.value.max(at);
                held.extend_to(fresh.expires());
            }
            MapEntry::Occupied(mut e) => {
                e.insert(fresh);
            }
            MapEntry::Vacant(e) => {
                e.insert(fresh);
            }
        }
        done(())
    }

    fn not_before(&self, client_id: &str) -> StoreFuture<'_, Option<u64>> {
        done(get_live(&self.not_before, client_id, self.now()))
    }

    fn deny_jti(&self, jti: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        self.denied_jtis
            .insert(jti.to_owned(), Entry::new((), self.now(), ttl));
        done(())
    }

    fn jti_denied(&self, jti: &str) -> StoreFuture<'_, bool> {
        done(get_live(&self.denied_jtis, jti, self.now()).is_some())
    }

    fn remember_once(&self, key: &str, until: u64) -> StoreFuture<'_, bool> {
        let now = self.now();
        let expires = until.saturating_mul(1000);
        let held = Entry::at((), expires, false);
        let first = match self.remembered.entry(key.to_owned()) {
            MapEntry::Occupied(e) if e.get().live(now) => false,
            MapEntry::Occupied(mut e) => {
                e.insert(held);
                true
            }
            MapEntry::Vacant(e) => {
                e.insert(held);
                true
            }
        };
        done(first)
    }

    fn put_session(&self, key: Key, session: Session, ttl: Duration) -> StoreFuture<'_, ()> {
        self.sessions
            .insert(key, Entry::new(session, self.now(), ttl));
        done(())
    }

    fn get_session(&self, key: Key) -> StoreFuture<'_, Option<Session>> {
        done(get_live(&self.sessions, &key, self.now()))
    }

    fn delete_session(&self, key: Key) -> StoreFuture<'_, ()> {
        self.sessions.remove(&key);
        done(())
    }

    fn index_session(&self, name: &str, sid: &str, until: u64, cap: usize) -> StoreFuture<'_, ()> {
        self.add_to_index(name, sid, until, cap);
        done(())
    }

    fn indexed_sessions(&self, name: &str) -> StoreFuture<'_, Vec<String>> {
        let now = self.now();
        let members = self.session_index.get(name).map_or_else(Vec::new, |m| {
            m.iter()
                .filter(|(_, expires)| **expires > now)
                .map(|(sid, _)| sid.clone())
                .collect()
        });
        done(members)
    }

    fn unindex_session(&self, name: &str, sid: &str) -> StoreFuture<'_, ()> {
        self.session_index.remove_if_mut(name, |_, members| {
            members.remove(sid);
            members.is_empty()
        });
        done(())
    }

    fn put_pending(&self, key: Key, request: String, ttl: Duration) -> StoreFuture<'_, ()> {
        self.pending
            .insert(key, Entry::new(request, self.now(), ttl));
        done(())
    }

    fn get_pending(&self, key: Key) -> StoreFuture<'_, Option<String>> {
        done(get_live(&self.pending, &key, self.now()))
    }

    fn delete_pending(&self, key: Key) -> StoreFuture<'_, bool> {
        let now = self.now();
        done(self.pending.remove(&key).is_some_and(|(_, e)| e.live(now)))
    }

    fn put_device(
        &self,
        device: Key,
        user: Key,
        grant: DeviceGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, bool> {
        let now = self.now();
        let stored = match self.user_codes.entry(user) {
            MapEntry::Occupied(e) if e.get().live(now) => false,
            MapEntry::Occupied(mut e) => {
                e.insert(Entry::new(device, now, ttl));
                true
            }
            MapEntry::Vacant(e) => {
                e.insert(Entry::new(device, now, ttl));
                true
            }
        };
        if stored {
            self.devices.insert(device, Entry::new(grant, now, ttl));
        }
        done(stored)
    }

    fn device_by_user_code(&self, user: Key) -> StoreFuture<'_, Option<DeviceGrant>> {
        let now = self.now();
        let grant = get_live(&self.user_codes, &user, now)
            .and_then(|device| get_live(&self.devices, &device, now));
        done(grant)
    }

    fn decide_device(
        &self,
        user: Key,
        decision: DeviceDecision,
    ) -> StoreFuture<'_, Option<DeviceGrant>> {
        let now = self.now();
        let decided = get_live(&self.user_codes, &user, now).and_then(|device| {
            let mut e = self.devices.get_mut(&device).filter(|e| e.live(now))?;
            if !matches!(e.value.decision, DeviceDecision::Pending) {
                return None;
            }
            e.value.decision = decision;
            Some(e.value.clone())
        });
        done(decided)
    }

    fn poll_device(
        &self,
        device: Key,
        client_id: &str,
        now: u64,
        step: u64,
    ) -> StoreFuture<'_, Polled> {
        let polled = match self.devices.get_mut(&device) {
            Some(mut e) if e.live(self.now()) && e.value.client_id == client_id => {
                if e.used() {
                    Polled::Replayed(e.value.clone())
                } else if matches!(e.value.decision, DeviceDecision::Approved { .. }) {
                    e.mark_used();
                    Polled::Fresh(e.value.clone())
                } else {
                    let grant = &mut e.value;
                    let too_fast = grant
                        .last_poll
                        .is_some_and(|last| now < last.saturating_add(grant.interval));
                    grant.last_poll = Some(now);
                    if too_fast {
                        grant.interval = grant.interval.saturating_add(step);
                        Polled::TooFast(grant.clone())
                    } else {
                        Polled::Waiting(grant.clone())
                    }
                }
            }
            _ => Polled::Unknown,
        };
        done(polled)
    }

    fn add_failure(&self, name: &str, window: Duration) -> StoreFuture<'_, (u32, Duration)> {
        let now = self.now();
        let result = match self.failures.entry(name.to_owned()) {
            MapEntry::Occupied(mut e) if e.get().live(now) => {
                let entry = e.get_mut();
                entry.value = entry.value.saturating_add(1);
                (entry.value, remaining(entry.expires(), now))
            }
            MapEntry::Occupied(mut e) => {
                e.insert(Entry::new(1, now, window));
                (1, window)
            }
            MapEntry::Vacant(e) => {
                e.insert(Entry::new(1, now, window));
                (1, window)
            }
        };
        done(result)
    }

    fn take_back_failure(&self, name: &str) -> StoreFuture<'_, ()> {
        let now = self.now();
        if let Some(mut e) = self.failures.get_mut(name)
            && e.live(now)
        {
            e.value = e.value.saturating_sub(1);
        }
        done(())
    }

    fn failures(&self, name: &str) -> StoreFuture<'_, (u32, Duration)> {
        let now = self.now();
        let result = self
            .failures
            .get(name)
            .filter(|e| e.live(now))
            .map_or((0, Duration::ZERO), |e| {
                (e.value, remaining(e.expires(), now))
            });
        done(result)
    }

    fn sizes(&self) -> StoreFuture<'_, Vec<(&'static str, usize)>> {
        done(vec![
            ("codes", self.codes.len()),
            ("refresh_tokens", self.refresh.len()),
            ("revoked_families", self.revoked_families.len()),
            ("denied_jtis", self.denied_jtis.len()),
            ("client_not_before", self.not_before.len()),
            ("sessions", self.sessions.len()),
            ("pending_logins", self.pending.len()),
            ("failure_counters", self.failures.len()),
            ("device_codes", self.devices.len()),
        ])
    }

    fn clear_failures(&self, name: &str) -> StoreFuture<'_, ()> {
        self.failures.remove(name);
        done(())
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        done(())
    }

    fn shared_secret(&self, name: &str, fresh: [u8; 32]) -> StoreFuture<'_, [u8; 32]> {
        done(*self.secrets.entry(name.to_owned()).or_insert(fresh))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

impl MemoryStore {
    /// The entry `id` of `kind` as a [`Record`], `None` when there is none: what the
    /// file store writes after a change (and deletes when there is none).
    pub(crate) fn export(&self, kind: Kind, id: &[u8]) -> Result<Option<Record>, StoreError> {
        let unit = |_: &()| Ok(Vec::new());
        match kind {
            Kind::Code => export_from(&self.codes, &key_of(id)?, encode),
            Kind::Refresh => export_from(&self.refresh, &refresh_key(&key_of(id)?), |p| {
                Ok(p.bytes().to_vec())
            }),
            Kind::Family => export_from(&self.revoked_families, &name_of(id)?, unit),
            Kind::Jti => export_from(&self.denied_jtis, &name_of(id)?, unit),
            Kind::Remembered => export_from(&self.remembered, &name_of(id)?, unit),
            Kind::NotBefore => export_from(&self.not_before, &name_of(id)?, encode),
            Kind::Session => export_from(&self.sessions, &key_of(id)?, encode),
            Kind::Pending => {
                export_from(&self.pending, &key_of(id)?, |p| Ok(p.as_bytes().to_vec()))
            }
            Kind::Failure => export_from(&self.failures, &name_of(id)?, encode),
            Kind::Device => export_from(&self.devices, &key_of(id)?, encode),
            Kind::UserCode => export_from(&self.user_codes, &key_of(id)?, |k| Ok(k.to_vec())),
            Kind::IndexMember => {
                let (name, sid) = index_member_of(id)?;
                let expires = self
                    .session_index
                    .get(&name)
                    .and_then(|m| m.get(&sid).copied());
                Ok(expires.map(|expires| Record {
                    expires,
                    used: false,
                    payload: Vec::new(),
                }))
            }
            Kind::Secret => Ok(self.secrets.get(&name_of(id)?).map(|s| Record {
                expires: NEVER,
                used: false,
                payload: s.to_vec(),
            })),
        }
    }

    /// [`Store::index_session`]; the members it took out past the cap (which the
    /// file store forgets too).
    pub(crate) fn add_to_index(
        &self,
        name: &str,
        sid: &str,
        until: u64,
        cap: usize,
    ) -> Vec<String> {
        let now = self.now();
        let until = until.saturating_mul(1000);
        if until <= now {
            return Vec::new();
        }
        let mut members = self.session_index.entry(name.to_owned()).or_default();
        let held = members.entry(sid.to_owned()).or_insert(until);
        *held = (*held).max(until);
        if members.len() <= cap.max(1) {
            return Vec::new();
        }
        members.retain(|_, expires| *expires > now);
        let mut by_expiry: Vec<(Millis, String)> =
            members.iter().map(|(s, e)| (*e, s.clone())).collect();
        by_expiry.sort();
        let over = by_expiry.len().saturating_sub(cap.max(1));
        let dropped: Vec<String> = by_expiry.into_iter().take(over).map(|(_, s)| s).collect();
        for sid in &dropped {
            members.remove(sid);
        }
        dropped
    }

    /// The device code a live user code names.    /// The device code a live user code names.
    pub(crate) fn device_key(&self, user: Key) -> Option<Key> {
        get_live(&self.user_codes, &user, self.now())
    }

    /// Puts back the entry `id` of `kind` as `record` holds it: how the file store
    /// reloads what it kept.
    pub(crate) fn import(&self, kind: Kind, id: &[u8], record: &Record) -> Result<(), StoreError> {
        let p = &record.payload;
        match kind {
            Kind::Code => import_into(&self.codes, key_of(id)?, record, decode(p)?),
            Kind::Refresh => {
                let grant = PackedRefresh::from_bytes(p);
                grant.unpack()?;
                import_into(&self.refresh, refresh_key(&key_of(id)?), record, grant);
            }
            Kind::Family => import_into(&self.revoked_families, name_of(id)?, record, ()),
            Kind::Jti => import_into(&self.denied_jtis, name_of(id)?, record, ()),
            Kind::Remembered => import_into(&self.remembered, name_of(id)?, record, ()),
            Kind::NotBefore => import_into(&self.not_before, name_of(id)?, record, decode(p)?),
            Kind::Session => import_into(&self.sessions, key_of(id)?, record, decode(p)?),
            Kind::Pending => import_into(&self.pending, key_of(id)?, record, name_of(p)?),
            Kind::Failure => import_into(&self.failures, name_of(id)?, record, decode(p)?),
            Kind::Device => import_into(&self.devices, key_of(id)?, record, decode(p)?),
            Kind::UserCode => import_into(&self.user_codes, key_of(id)?, record, key_of(p)?),
            Kind::IndexMember => {
                let (name, sid) = index_member_of(id)?;
                self.session_index
                    .entry(name)
                    .or_default()
                    .insert(sid, record.expires);
            }
            Kind::Secret => {
                self.secrets.insert(name_of(id)?, key_of(p)?);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_memory_store_conforms() {
        let clock = Clock::system();
        let store = Arc::new(MemoryStore::new(clock.clone()));
        conformance::run(store.clone(), &clock).await;
        // `sizes` is not in the suite (a shared store may list nothing); this one
        // lists every kind.
        let sizes = store.sizes().await.expect("sizes");
        for kind in ["codes", "refresh_tokens", "sessions", "pending_logins"] {
            assert!(sizes.iter().any(|(k, _)| *k == kind), "{kind}: {sizes:?}");
        }
        // Everything the suite left has expired by now; the sweep frees it.
        clock.advance(Duration::from_secs(365 * 24 * 3600));
        // The per-second sweep frees the codes and leaves the rest to the full one.
        assert!(!store.codes.is_empty() && !store.refresh.is_empty());
        store.sweep_codes();
        assert!(store.codes.is_empty() && !store.refresh.is_empty());
        store.sweep();
        assert!(store.codes.is_empty() && store.refresh.is_empty() && store.sessions.is_empty());
    }

    #[test]
    fn a_refresh_tokens_slot_is_five_words() {
        // Its key's 16 bytes, the packed grant's pointer and length, the stamp: what
        // the table pays per slot, twice over just after it doubles (issue 28).
        assert_eq!(size_of::<(RefreshKey, Entry<PackedRefresh>)>(), 40);
    }

    #[test]
    fn an_entry_keeps_its_expiry_and_used_flag_apart() {
        let mut e = Entry::at((), 1_795_000_000_000, false);
        assert!(!e.used() && e.live(1_794_999_999_999) && !e.live(1_795_000_000_000));
        e.mark_used();
        assert!(e.used() && e.expires() == 1_795_000_000_000);
        e.extend_to(5);
        assert_eq!(e.expires(), 1_795_000_000_000, "an expiry only moves later");
        e.extend_to(1_795_000_000_001);
        assert!(e.used() && e.expires() == 1_795_000_000_001);
        // What would reach the flag's bit is held just below it, and stays unused.
        let far = Entry::at((), u64::MAX, false);
        assert!(!far.used() && far.live((u64::MAX >> 1) - 1) && !far.live(u64::MAX >> 1));
        assert!(Entry::new((), u64::MAX - 5, Duration::from_secs(9)).live(1 << 62));
    }
}
