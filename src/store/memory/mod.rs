//! The in-memory store: one concurrent map per kind of value, each entry with its
//! expiry on the server's clock; reads ignore expired entries and a periodic sweep
//! frees them.

use super::{
    CodeGrant, DeviceDecision, DeviceGrant, IssuedIds, Key, Origin, Polled, Redeemed, RefreshGrant,
    Session, Store, StoreError, StoreFuture,
};
use crate::clock::Clock;
use crate::model::{CredentialId, Identity, IdentitySource};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use std::future::ready;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often expired entries are freed.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Milliseconds on the store's clock.
pub(crate) type Millis = u64;

struct Entry<T> {
    value: T,
    used: bool,
    expires: Millis,
}

impl<T> Entry<T> {
    fn new(value: T, now: Millis, ttl: Duration) -> Self {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Self {
            value,
            used: false,
            expires: now.saturating_add(ttl),
        }
    }

    fn live(&self, now: Millis) -> bool {
        self.expires > now
    }
}

/// A refresh grant as the memory store keeps it: its strings (family, client id,
/// subject, space-joined scopes) in one allocation, the rest inline, the whole boxed so the
/// hash table's free slots stay small. Measured with a million live tokens
/// (`cargo bench --bench store_memory`): 645 bytes of RSS per token stored inline as
/// `RefreshGrant`, 520 boxed, and this layout below 300.
#[derive(Clone)]
struct PackedRefresh {
    text: Box<str>,
    /// Byte lengths of the family, client id and user id at the front of `text`.
    lens: [u32; 3],
    source: IdentitySource,
    auth_time: u64,
    issued_at: u64,
    expires_at: u64,
    credential: Option<CredentialId>,
    /// Only federated users' grants have it (a pointer's width for the others).
    federated: Option<Box<Identity>>,
    /// The resources the grant named (RFC 8707): usually none, so a thin pointer.
    #[allow(clippy::box_collection)]
    resources: Option<Box<Vec<String>>>,
    /// The session the family began in: boxed, a thin pointer.
    origin: Box<Origin>,
    /// The DPoP key a public client's token is bound to.
    dpop_jkt: Option<Box<str>>,
}

impl PackedRefresh {
    fn pack(g: RefreshGrant) -> Self {
        let scopes = g.scopes.join(" ");
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        let lens = [len(&g.family), len(&g.client_id), len(&g.subject)];
        let text = [g.family.as_str(), &g.client_id, &g.subject, &scopes]
            .concat()
            .into_boxed_str();
        Self {
            text,
            lens,
            source: g.source,
            auth_time: g.auth_time,
            issued_at: g.issued_at,
            expires_at: g.expires_at,
            credential: g.credential,
            federated: g.federated,
            resources: (!g.resources.is_empty()).then(|| Box::new(g.resources)),
            origin: Box::new(g.origin),
            dpop_jkt: g.dpop_jkt.map(String::into_boxed_str),
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
        let subject = take(self.lens[2]);
        RefreshGrant {
            family,
            client_id,
            source: self.source,
            subject,
            scopes: rest
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            auth_time: self.auth_time,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            credential: self.credential,
            federated: self.federated.clone(),
            resources: self.resources.as_deref().cloned().unwrap_or_default(),
            origin: (*self.origin).clone(),
            dpop_jkt: self.dpop_jkt.as_deref().map(str::to_owned),
        }
    }
}

/// The default store: everything in this process's memory.
pub struct MemoryStore {
    clock: Clock,
    codes: DashMap<Key, Entry<CodeGrant>>,
    /// Packed and boxed: refresh tokens are the store's bulk (see `PackedRefresh`).
    refresh: DashMap<Key, Entry<Box<PackedRefresh>>>,
    revoked_families: DashMap<String, Entry<()>>,
    denied_jtis: DashMap<String, Entry<()>>,
    /// Names remembered once (`Store::remember_once`): client assertion ids.
    remembered: DashMap<String, Entry<()>>,
    not_before: DashMap<String, Entry<u64>>,
    sessions: DashMap<Key, Entry<Session>>,
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

/// Uses a single-use entry: marks it used and says whether it was already.
fn redeem<K: Eq + std::hash::Hash, T: Clone>(
    map: &DashMap<K, Entry<T>>,
    key: K,
    now: Millis,
    on_first_use: impl FnOnce(&mut T),
) -> Redeemed<T> {
    match map.get_mut(&key) {
        Some(mut e) if e.live(now) => {
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

fn get_live<K, Q, T>(map: &DashMap<K, Entry<T>>, key: &Q, now: Millis) -> Option<T>
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<Q>,
    Q: Eq + std::hash::Hash + ?Sized,
    T: Clone,
{
    map.get(key)
        .filter(|e| e.live(now))
        .map(|e| e.value.clone())
}

fn remaining(expires: Millis, now: Millis) -> Duration {
    Duration::from_millis(expires.saturating_sub(now))
}

/// Frees `store`'s expired entries every 30 s for as long as it exists.
pub fn spawn_sweeper(store: &Arc<MemoryStore>) {
    let store: Weak<MemoryStore> = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            match store.upgrade() {
                Some(store) => store.sweep(),
                None => return,
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

    /// Frees expired entries; run it periodically.
    pub fn sweep(&self) {
        let now = self.now();
        self.codes.retain(|_, e| e.live(now));
        self.refresh.retain(|_, e| e.live(now));
        self.revoked_families.retain(|_, e| e.live(now));
        self.denied_jtis.retain(|_, e| e.live(now));
        self.remembered.retain(|_, e| e.live(now));
        self.not_before.retain(|_, e| e.live(now));
        self.sessions.retain(|_, e| e.live(now));
        self.pending.retain(|_, e| e.live(now));
        self.failures.retain(|_, e| e.live(now));
        self.devices.retain(|_, e| e.live(now));
        self.user_codes.retain(|_, e| e.live(now));
    }
}

impl Store for MemoryStore {
    fn put_code(&self, key: Key, grant: CodeGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        self.codes.insert(key, Entry::new(grant, self.now(), ttl));
        done(())
    }

    fn redeem_code(&self, key: Key, issued: IssuedIds) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        done(redeem(&self.codes, key, self.now(), |grant| {
            grant.issued = Some(issued)
        }))
    }

    fn peek_code(&self, key: Key) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        let now = self.now();
        done(match self.codes.get(&key) {
            Some(e) if e.live(now) && e.used => Redeemed::Replayed(e.value.clone()),
            Some(e) if e.live(now) => Redeemed::Fresh(e.value.clone()),
            _ => Redeemed::Unknown,
        })
    }

    fn put_refresh(&self, key: Key, grant: RefreshGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        let entry = Entry::new(Box::new(PackedRefresh::pack(grant)), self.now(), ttl);
        self.refresh.insert(key, entry);
        done(())
    }

    fn peek_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        let now = self.now();
        let seen = match self.refresh.get(&key) {
            Some(e) if e.live(now) && e.used => Redeemed::Replayed(e.value.unpack()),
            Some(e) if e.live(now) => Redeemed::Fresh(e.value.unpack()),
            _ => Redeemed::Unknown,
        };
        done(seen)
    }

    fn use_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        done(match redeem(&self.refresh, key, self.now(), |_| {}) {
            Redeemed::Fresh(g) => Redeemed::Fresh(g.unpack()),
            Redeemed::Replayed(g) => Redeemed::Replayed(g.unpack()),
            Redeemed::Unknown => Redeemed::Unknown,
        })
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
                held.expires = held.expires.max(fresh.expires);
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
        let held = Entry {
            value: (),
            used: false,
            expires,
        };
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
                if e.used {
                    Polled::Replayed(e.value.clone())
                } else if matches!(e.value.decision, DeviceDecision::Approved { .. }) {
                    e.used = true;
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
                (entry.value, remaining(entry.expires, now))
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

/// A kind of entry the memory store keeps: how the file store (`store::file`) names
/// the entry it persists after each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Code = b'c',
    Refresh = b'r',
    Family = b'f',
    Jti = b'j',
    NotBefore = b'b',
    Session = b's',
    Pending = b'p',
    Failure = b'n',
    Device = b'd',
    UserCode = b'u',
    Secret = b'k',
    Remembered = b'o',
}

impl Kind {
    /// Every kind, for reading them back.
    pub(crate) const ALL: [Kind; 12] = [
        Kind::Code,
        Kind::Refresh,
        Kind::Family,
        Kind::Jti,
        Kind::NotBefore,
        Kind::Session,
        Kind::Pending,
        Kind::Failure,
        Kind::Device,
        Kind::UserCode,
        Kind::Secret,
        Kind::Remembered,
    ];

    /// The kind whose tag byte is `tag`.
    pub(crate) fn from_tag(tag: u8) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| *k as u8 == tag)
    }
}

/// One entry as bytes: its expiry on the store's clock ([`NEVER`] for the shared
/// secrets), its used flag, and its value (positional MessagePack, a string's bytes, or
/// a key's 32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub expires: Millis,
    pub used: bool,
    pub payload: Vec<u8>,
}

/// The expiry of what never expires (the shared secrets).
pub(crate) const NEVER: Millis = u64::MAX;

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec(value).map_err(|e| StoreError(format!("encoding a stored value: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(payload)
        .map_err(|e| StoreError(format!("a stored value does not decode: {e}")))
}

fn key_of(id: &[u8]) -> Result<Key, StoreError> {
    id.try_into()
        .map_err(|_| StoreError("a stored key is not 32 bytes".into()))
}

fn name_of(id: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(id.to_vec()).map_err(|_| StoreError("a stored name is not UTF-8".into()))
}

/// The record of `map[key]`, live or not (`None`: absent).
fn export_from<K, Q, T>(
    map: &DashMap<K, Entry<T>>,
    key: &Q,
    encode: impl FnOnce(&T) -> Result<Vec<u8>, StoreError>,
) -> Result<Option<Record>, StoreError>
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<Q>,
    Q: Eq + std::hash::Hash + ?Sized,
{
    map.get(key)
        .map(|e| {
            Ok(Record {
                expires: e.expires,
                used: e.used,
                payload: encode(&e.value)?,
            })
        })
        .transpose()
}

fn import_into<K: Eq + std::hash::Hash, T>(
    map: &DashMap<K, Entry<T>>,
    key: K,
    record: &Record,
    value: T,
) {
    map.insert(
        key,
        Entry {
            value,
            used: record.used,
            expires: record.expires,
        },
    );
}

impl MemoryStore {
    /// The entry `id` of `kind` as a [`Record`], `None` when there is none: what the
    /// file store writes after a change (and deletes when there is none).
    pub(crate) fn export(&self, kind: Kind, id: &[u8]) -> Result<Option<Record>, StoreError> {
        let unit = |_: &()| Ok(Vec::new());
        match kind {
            Kind::Code => export_from(&self.codes, &key_of(id)?, encode),
            Kind::Refresh => export_from(&self.refresh, &key_of(id)?, |p| encode(&p.unpack())),
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
            Kind::Secret => Ok(self.secrets.get(&name_of(id)?).map(|s| Record {
                expires: NEVER,
                used: false,
                payload: s.to_vec(),
            })),
        }
    }

    /// The device code a live user code names.
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
                let grant = Box::new(PackedRefresh::pack(decode(p)?));
                import_into(&self.refresh, key_of(id)?, record, grant);
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
        store.sweep();
        assert!(store.codes.is_empty() && store.refresh.is_empty() && store.sessions.is_empty());
    }
}
