//! The shared store: Redis (or Valkey), so that every replica behind a load balancer
//! sees the same codes, sessions, refresh tokens, revocations and failure counters.
//!
//! Keys are `{key_prefix}{kind}:{id}`: a secret's id is the 32 raw bytes of its
//! SHA-256 (`store::Key`), a name (a family, a jti, a client, a counter) is itself.
//!
//! Every value is framed: one byte, `0x80` unused or `0x81` used, then its expiry in
//! milliseconds on the store's clock as six bytes big-endian, then the payload
//! (positional MessagePack through serde, or a number in decimal). Seven bytes, where
//! the frame of earlier builds took sixteen (15 decimal digits of the expiry, then
//! `0`/`1`): on a code flow's refresh token, Redis's 160-byte block for its value
//! becoming a 128-byte one. Values in that older frame (it starts with a digit, never
//! with `0x80`) are still read, used and counted, here and in the scripts, so an
//! upgrade keeps every code, session and token stored before it; they go as they
//! expire, and what the scripts write again is written in the new frame.
//!
//! A read past the expiry treats the value as
//! absent, so expiry follows the injected [`Clock`] (tests advance it); every key also
//! gets a Redis TTL of the same length (`PX`), so nothing outlives its lifetime and
//! Redis needs no sweeper. With the system clock both agree.
//!
//! Single use is atomic across replicas: a Lua script checks and flips the used byte
//! (`SETRANGE`, which keeps the TTL) in one step, so of twenty racing redemptions one
//! sees the value unused. Device grants, whose payload changes, are rewritten by
//! compare-and-set (a script that writes only when the value is still the one read,
//! with `KEEPTTL`), retried on a lost race. Scripts name keys they derive (the device
//! key a user code points to) and so need one Redis, not a Redis Cluster.
//!
//! Payload compatibility: fields are encoded by position, so a field added to a stored
//! type goes last with `#[serde(default)]` (a value written before it then decodes),
//! and stored types never use `skip_serializing_if`.
//!
//! A code this replica wrote is also kept in its memory until redeemed or expired
//! ([`written`], bounded in bytes), so a token request reaching the replica that
//! issued the code reads it without a round trip; its use is still decided here, by the
//! redemption script.
//!
//! How the store reaches Redis (one server, or the master Sentinels name) and waits for
//! a replica after security-relevant writes: [`connect`].

mod connect;
mod scripts;
mod written;

use super::{
    CodeGrant, DeviceDecision, DeviceGrant, IssuedIds, Key, Polled, Redeemed, RefreshGrant,
    Session, StandingQuery, StandingRecords, Store, StoreError, StoreFuture,
};
use crate::clock::Clock;
use crate::load::{StoreBackend, StoreSettings, StoreTls};
use ::redis::AsyncCommands;
use connect::Link;
use scripts::Scripts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use written::Written;

/// How often a compare-and-set is tried again after losing a race.
const CAS_TRIES: usize = 64;

/// A frame's first byte: the value is unused, or used. Never an ASCII digit, which is
/// how a value in the older frame starts.
const UNUSED: u8 = 0x80;
const USED: u8 = 0x81;

/// Width of the expiry after the first byte (big-endian milliseconds).
const EXP_BYTES: usize = 6;

/// The latest expiry a frame can hold (its six bytes: the year 10889).
const MAX_EXPIRY: u64 = (1 << (8 * EXP_BYTES)) - 1;

/// Where the payload starts: the used byte and the expiry.
const HEADER: usize = 1 + EXP_BYTES;

/// The frame written before: 15 decimal digits of the expiry, then `0`/`1`.
const OLD_DIGITS: usize = 15;
const OLD_HEADER: usize = OLD_DIGITS + 1;

/// The Redis store: one multiplexed connection to the master (`connect::Link`), found
/// again when it fails, and the codes this replica wrote ([`written`]).
pub struct RedisStore {
    conn: Link,
    clock: Clock,
    prefix: String,
    scripts: Scripts,
    written: Written,
}

fn redis_error(e: ::redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A value framed with its used byte and expiry (at most [`MAX_EXPIRY`]).
fn frame(expires: u64, used: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(if used { USED } else { UNUSED });
    out.extend_from_slice(&expires.min(MAX_EXPIRY).to_be_bytes()[8 - EXP_BYTES..]);
    out.extend_from_slice(payload);
    out
}

/// A framed value's expiry, used byte and payload, in either frame.
fn unframe(raw: &[u8]) -> Result<(u64, bool, &[u8]), StoreError> {
    let bad = || StoreError("redis: a stored value has no valid frame".into());
    match raw.first() {
        Some(&first @ (UNUSED | USED)) if raw.len() >= HEADER => {
            let mut exp = [0; 8];
            exp[8 - EXP_BYTES..].copy_from_slice(&raw[1..HEADER]);
            Ok((u64::from_be_bytes(exp), first == USED, &raw[HEADER..]))
        }
        Some(b'0'..=b'9') if raw.len() >= OLD_HEADER => {
            let exp = std::str::from_utf8(&raw[..OLD_DIGITS])
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or_else(bad)?;
            Ok((exp, raw[OLD_DIGITS] == b'1', &raw[OLD_HEADER..]))
        }
        _ => Err(bad()),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec(value).map_err(|e| StoreError(format!("encoding a stored value: {e}")))
}

fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(payload)
        .map_err(|e| StoreError(format!("redis: a stored value does not decode: {e}")))
}

/// What a single-use script (`use_once`, `rotate`) answered: nothing, or the used flag
/// as it was and the framed value, whose payload `read` turns into the value.
fn redeemed<T>(
    got: Option<(u8, Vec<u8>)>,
    read: impl FnOnce(&[u8]) -> Result<T, StoreError>,
) -> Result<Redeemed<T>, StoreError> {
    let Some((used, raw)) = got else {
        return Ok(Redeemed::Unknown);
    };
    let value = read(unframe(&raw)?.2)?;
    Ok(if used == 1 {
        Redeemed::Replayed(value)
    } else {
        Redeemed::Fresh(value)
    })
}

fn number(payload: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| StoreError("redis: a stored number does not parse".into()))
}

impl RedisStore {
    /// Connects to `url` (redis:// or rediss://); fails when Redis cannot be reached.
    /// Every key starts with `prefix`; expiry follows `clock`.
    pub async fn connect(url: &str, prefix: &str, clock: Clock) -> Result<Self, StoreError> {
        Self::connect_tls(url, prefix, clock, &StoreTls::default()).await
    }

    /// [`RedisStore::connect`], trusting `tls.ca` rather than the system's roots and
    /// presenting `tls.client` (mutual TLS) when they are set (`rediss://` only).
    pub(crate) async fn connect_tls(
        url: &str,
        prefix: &str,
        clock: Clock,
        tls: &StoreTls,
    ) -> Result<Self, StoreError> {
        let settings = StoreSettings {
            backend: StoreBackend::Redis(url.to_owned()),
            key_prefix: prefix.to_owned(),
            tls: tls.clone(),
            ..StoreSettings::default()
        };
        Self::open(&settings, clock).await
    }

    /// Connects as `settings` say (a `StoreBackend::Redis` URL, its TLS, the Sentinels
    /// that name the master, the wait for a replica); fails when Redis cannot be
    /// reached.
    pub async fn open(settings: &StoreSettings, clock: Clock) -> Result<Self, StoreError> {
        let StoreBackend::Redis(url) = &settings.backend else {
            return Err(StoreError("redis: not a Redis store".into()));
        };
        let prefix = settings.key_prefix.as_str();
        let conn = connect::link(
            url,
            &settings.tls,
            settings.sentinel.as_ref(),
            settings.wait_for_replica,
            format!("{prefix}w:replicated").into_bytes(),
        )
        .await
        .map_err(redis_error)?;
        Ok(Self {
            conn,
            clock,
            prefix: prefix.to_owned(),
            scripts: Scripts::new(),
            written: Written::default(),
        })
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// `op`, and once it succeeded, a replica waited for (`connect::Link::
    /// wait_for_replica`): for the writes a failover must not lose.
    fn durable<'a, T: Send + 'a>(&'a self, op: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let result = op.await;
            if result.is_ok() {
                self.conn.wait_for_replica().await;
            }
            result
        })
    }

    /// The Redis key of `id` of `kind`.
    fn key(&self, kind: &str, id: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + kind.len() + 1 + id.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(kind.as_bytes());
        k.push(b':');
        k.extend_from_slice(id);
        k
    }

    /// `SET key frame PX ttl`, expiring on the clock `ttl` from now.
    async fn put(&self, key: Vec<u8>, payload: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let expires = self.now().saturating_add(ms(ttl));
        self.put_until(key, payload, expires, ttl).await
    }

    /// `SET key frame PX ttl`, expiring on the clock at `expires`.
    async fn put_until(
        &self,
        key: Vec<u8>,
        payload: &[u8],
        expires: u64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let value = frame(expires, false, payload);
        let mut conn = self.conn.clone();
        ::redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(ms(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)
    }

    /// The live framed value under `key`: used byte and payload.
    async fn get(&self, key: Vec<u8>) -> Result<Option<(bool, Vec<u8>)>, StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = conn.get(key).await.map_err(redis_error)?;
        let Some(raw) = raw else { return Ok(None) };
        let (exp, used, payload) = unframe(&raw)?;
        Ok((exp > self.now()).then(|| (used, payload.to_vec())))
    }

    async fn delete(&self, key: Vec<u8>) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(key).await.map_err(redis_error)
    }

    /// Uses the code `code` (the redemption script), recording `issued` and, at its
    /// first use, storing `first`: a refresh token's key, framed value and ttl.
    async fn redeem(
        &self,
        code: Key,
        issued: IssuedIds,
        first: Option<(Key, Vec<u8>, Duration)>,
    ) -> Result<Redeemed<CodeGrant>, StoreError> {
        self.written.forget(&code);
        let mut invocation = self.scripts.redeem_code.prepare_invoke();
        invocation
            .key(self.key("c", &code))
            .key(self.key("ci", &code));
        invocation.arg(self.now()).arg(encode(&issued)?);
        if let Some((key, value, ttl)) = first {
            invocation.key(self.key("r", &key)).arg(value).arg(ms(ttl));
        }
        let mut conn = self.conn.clone();
        let got: Option<(u8, Vec<u8>, Vec<u8>)> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let Some((used, raw, ids)) = got else {
            return Ok(Redeemed::Unknown);
        };
        let mut grant: CodeGrant = decode(unframe(&raw)?.2)?;
        grant.issued = if ids.is_empty() {
            None
        } else {
            Some(decode(&ids)?)
        };
        Ok(if used == 1 {
            Redeemed::Replayed(grant)
        } else {
            Redeemed::Fresh(grant)
        })
    }

    /// Marks the single-use value under `key` used; what it was before.
    async fn use_once(&self, key: Vec<u8>) -> Result<Redeemed<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        let got: Option<(u8, Vec<u8>)> = self
            .scripts
            .use_once
            .key(key)
            .arg(self.now())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        redeemed(got, |payload| Ok(payload.to_vec()))
    }

    /// Writes `new` under `key` only if it still holds `old` (keeping its TTL).
    async fn compare_and_set(
        &self,
        key: &[u8],
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let set: u8 = self
            .scripts
            .compare_and_set
            .key(key)
            .arg(old)
            .arg(new)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(set == 1)
    }

    /// The raw framed device value (and its id) behind a user code, if both live.
    async fn device_of_user(&self, user: Key) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut conn = self.conn.clone();
        let device_prefix = self.key("d", b"");
        self.scripts
            .device_by_user
            .key(self.key("u", &user))
            .arg(self.now())
            .arg(device_prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)
    }

    async fn flag(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.get(self.key(kind, id.as_bytes())).await?.is_some())
    }

    async fn decide(
        &self,
        user: Key,
        decision: DeviceDecision,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        for _ in 0..CAS_TRIES {
            let Some((id, raw)) = self.device_of_user(user).await? else {
                return Ok(None);
            };
            let (exp, used, payload) = unframe(&raw)?;
            let mut grant: DeviceGrant = decode(payload)?;
            if !matches!(grant.decision, DeviceDecision::Pending) {
                return Ok(None);
            }
            grant.decision = decision.clone();
            let new = frame(exp, used, &encode(&grant)?);
            if self
                .compare_and_set(&self.key("d", &id), &raw, &new)
                .await?
            {
                return Ok(Some(grant));
            }
        }
        Err(StoreError("redis: a device code kept changing".into()))
    }

    async fn poll(
        &self,
        device: Key,
        client_id: &str,
        now: u64,
        step: u64,
    ) -> Result<Polled, StoreError> {
        let key = self.key("d", &device);
        for _ in 0..CAS_TRIES {
            let mut conn = self.conn.clone();
            let raw: Option<Vec<u8>> = conn.get(&key).await.map_err(redis_error)?;
            let Some(raw) = raw else {
                return Ok(Polled::Unknown);
            };
            let (exp, used, payload) = unframe(&raw)?;
            let mut grant: DeviceGrant = decode(payload)?;
            if exp <= self.now() || grant.client_id != client_id {
                return Ok(Polled::Unknown);
            }
            if used {
                return Ok(Polled::Replayed(grant));
            }
            let (outcome, new) = if matches!(grant.decision, DeviceDecision::Approved { .. }) {
                let new = frame(exp, true, payload);
                (Polled::Fresh(grant), new)
            } else {
                let too_fast = grant
                    .last_poll
                    .is_some_and(|last| now < last.saturating_add(grant.interval));
                grant.last_poll = Some(now);
                if too_fast {
                    grant.interval = grant.interval.saturating_add(step);
                }
                let new = frame(exp, false, &encode(&grant)?);
                if too_fast {
                    (Polled::TooFast(grant), new)
                } else {
                    (Polled::Waiting(grant), new)
                }
            };
            if self.compare_and_set(&key, &raw, &new).await? {
                return Ok(outcome);
            }
        }
        Err(StoreError("redis: a device code kept changing".into()))
    }
}

impl Store for RedisStore {
    fn put_code(&self, key: Key, grant: CodeGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let payload = encode(&grant)?;
            let expires = self.now().saturating_add(ms(ttl));
            let id = self.key("c", &key);
            self.put_until(id, &payload, expires, ttl).await?;
            self.written.keep(key, payload, expires, self.now());
            Ok(())
        })
    }

    fn redeem_code(&self, key: Key, issued: IssuedIds) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        self.durable(Box::pin(self.redeem(key, issued, None)))
    }

    fn redeem_code_with_refresh(
        &self,
        code: Key,
        issued: IssuedIds,
        key: Key,
        first: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        self.durable(Box::pin(async move {
            let value = frame(self.now().saturating_add(ms(ttl)), false, &encode(&first)?);
            self.redeem(code, issued, Some((key, value, ttl))).await
        }))
    }

    fn put_refresh(&self, key: Key, grant: RefreshGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        self.durable(Box::pin(async move {
            self.put(self.key("r", &key), &encode(&grant)?, ttl).await
        }))
    }

    fn peek_code(&self, key: Key) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        Box::pin(async move {
            if let Some(kept) = self.written.read(&key, self.now(), decode) {
                return Ok(Redeemed::Fresh(kept?));
            }
            Ok(match self.get(self.key("c", &key)).await? {
                None => Redeemed::Unknown,
                Some((true, payload)) => Redeemed::Replayed(decode(&payload)?),
                Some((false, payload)) => Redeemed::Fresh(decode(&payload)?),
            })
        })
    }

    fn peek_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        Box::pin(async move {
            Ok(match self.get(self.key("r", &key)).await? {
                None => Redeemed::Unknown,
                Some((true, payload)) => Redeemed::Replayed(decode(&payload)?),
                Some((false, payload)) => Redeemed::Fresh(decode(&payload)?),
            })
        })
    }

    fn use_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        self.durable(Box::pin(async move {
            Ok(match self.use_once(self.key("r", &key)).await? {
                Redeemed::Unknown => Redeemed::Unknown,
                Redeemed::Fresh(p) => Redeemed::Fresh(decode(&p)?),
                Redeemed::Replayed(p) => Redeemed::Replayed(decode(&p)?),
            })
        }))
    }

    fn rotate_refresh(
        &self,
        old: Key,
        key: Key,
        next: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        self.durable(Box::pin(async move {
            let value = frame(self.now().saturating_add(ms(ttl)), false, &encode(&next)?);
            let mut conn = self.conn.clone();
            let got: Option<(u8, Vec<u8>)> = self
                .scripts
                .rotate
                .key(self.key("r", &old))
                .key(self.key("r", &key))
                .arg(self.now())
                .arg(value)
                .arg(ms(ttl))
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
            redeemed(got, decode)
        }))
    }

    fn revoke_family(&self, family: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        let key = self.key("f", family.as_bytes());
        self.durable(Box::pin(async move { self.put(key, b"", ttl).await }))
    }

    fn family_revoked(&self, family: &str) -> StoreFuture<'_, bool> {
        let family = family.to_owned();
        Box::pin(async move { self.flag("f", &family).await })
    }

    fn set_not_before(&self, client_id: &str, at: u64, ttl: Duration) -> StoreFuture<'_, ()> {
        let key = self.key("nb", client_id.as_bytes());
        self.durable(Box::pin(async move {
            let mut conn = self.conn.clone();
            self.scripts
                .set_not_before
                .key(key)
                .arg(self.now())
                .arg(at)
                .arg(ms(ttl))
                .invoke_async::<()>(&mut conn)
                .await
                .map_err(redis_error)
        }))
    }

    fn not_before(&self, client_id: &str) -> StoreFuture<'_, Option<u64>> {
        let key = self.key("nb", client_id.as_bytes());
        Box::pin(async move {
            match self.get(key).await? {
                Some((_, payload)) => Ok(Some(number(&payload)?)),
                None => Ok(None),
            }
        })
    }

    fn deny_jti(&self, jti: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        let key = self.key("j", jti.as_bytes());
        self.durable(Box::pin(async move { self.put(key, b"", ttl).await }))
    }

    fn jti_denied(&self, jti: &str) -> StoreFuture<'_, bool> {
        let jti = jti.to_owned();
        Box::pin(async move { self.flag("j", &jti).await })
    }

    fn standing<'a>(&'a self, query: &'a StandingQuery) -> StoreFuture<'a, StandingRecords> {
        Box::pin(async move {
            let names = query.not_before.iter().map(|n| ("nb", n));
            let flags = [("j", &query.jti), ("f", &query.family)];
            let flags = flags
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)));
            let keys: Vec<Vec<u8>> = names
                .chain(flags)
                .map(|(kind, id)| self.key(kind, id.as_bytes()))
                .collect();
            if keys.is_empty() {
                return Ok(StandingRecords::default());
            }
            let mut conn = self.conn.clone();
            let raw: Vec<Option<Vec<u8>>> = ::redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            if raw.len() != keys.len() {
                return Err(StoreError("redis: MGET answered the wrong count".into()));
            }
            let now = self.now();
            let mut live = raw.into_iter().map(|raw| match raw {
                None => Ok(None),
                Some(raw) => {
                    let (exp, _, payload) = unframe(&raw)?;
                    Ok((exp > now).then(|| payload.to_vec()))
                }
            });
            let mut next = || live.next().unwrap_or(Ok(None));
            let mut not_before = Vec::with_capacity(query.not_before.len());
            for _ in &query.not_before {
                not_before.push(next()?.as_deref().map(number).transpose()?);
            }
            let jti_denied = query.jti.is_some() && next()?.is_some();
            let family_revoked = query.family.is_some() && next()?.is_some();
            Ok(StandingRecords {
                not_before,
                jti_denied,
                family_revoked,
            })
        })
    }

    fn remember_once(&self, key: &str, until: u64) -> StoreFuture<'_, bool> {
        let key = self.key("o", key.as_bytes());
        self.durable(Box::pin(async move {
            let mut conn = self.conn.clone();
            let first: u8 = self
                .scripts
                .remember_once
                .key(key)
                .arg(self.now())
                .arg(until.saturating_mul(1000).min(MAX_EXPIRY))
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
            Ok(first == 1)
        }))
    }

    fn put_session(&self, key: Key, session: Session, ttl: Duration) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.put(self.key("s", &key), &encode(&session)?, ttl).await })
    }

    fn get_session(&self, key: Key) -> StoreFuture<'_, Option<Session>> {
        Box::pin(async move {
            match self.get(self.key("s", &key)).await? {
                Some((_, payload)) => Ok(Some(decode(&payload)?)),
                None => Ok(None),
            }
        })
    }

    fn delete_session(&self, key: Key) -> StoreFuture<'_, ()> {
        self.durable(Box::pin(
            async move { self.delete(self.key("s", &key)).await },
        ))
    }

    fn index_session(&self, name: &str, sid: &str, until: u64, cap: usize) -> StoreFuture<'_, ()> {
        let key = self.key("x", name.as_bytes());
        let sid = sid.to_owned();
        Box::pin(async move {
            let mut conn = self.conn.clone();
            self.scripts
                .index_session
                .key(key)
                .arg(self.now())
                .arg(sid)
                .arg(until.saturating_mul(1000).min(MAX_EXPIRY))
                .arg(cap)
                .invoke_async::<()>(&mut conn)
                .await
                .map_err(redis_error)
        })
    }

    fn indexed_sessions(&self, name: &str) -> StoreFuture<'_, Vec<String>> {
        let key = self.key("x", name.as_bytes());
        Box::pin(async move {
            let mut conn = self.conn.clone();
            ::redis::cmd("ZRANGEBYSCORE")
                .arg(key)
                .arg(format!("({}", self.now()))
                .arg("+inf")
                .query_async(&mut conn)
                .await
                .map_err(redis_error)
        })
    }

    fn unindex_session(&self, name: &str, sid: &str) -> StoreFuture<'_, ()> {
        let key = self.key("x", name.as_bytes());
        let sid = sid.to_owned();
        Box::pin(async move {
            let mut conn = self.conn.clone();
            conn.zrem::<_, _, ()>(key, sid).await.map_err(redis_error)
        })
    }

    fn put_pending(&self, key: Key, request: String, ttl: Duration) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.put(self.key("p", &key), request.as_bytes(), ttl).await })
    }

    fn get_pending(&self, key: Key) -> StoreFuture<'_, Option<String>> {
        Box::pin(async move {
            match self.get(self.key("p", &key)).await? {
                Some((_, payload)) => String::from_utf8(payload)
                    .map(Some)
                    .map_err(|_| StoreError("redis: a pending request is not UTF-8".into())),
                None => Ok(None),
            }
        })
    }

    fn delete_pending(&self, key: Key) -> StoreFuture<'_, bool> {
        self.durable(Box::pin(async move {
            let mut conn = self.conn.clone();
            let raw: Option<Vec<u8>> = redis::cmd("GETDEL")
                .arg(self.key("p", &key))
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            match raw {
                Some(raw) => Ok(unframe(&raw)?.0 > self.now()),
                None => Ok(false),
            }
        }))
    }

    fn put_device(
        &self,
        device: Key,
        user: Key,
        grant: DeviceGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let now = self.now();
            let exp = now.saturating_add(ms(ttl));
            let mut conn = self.conn.clone();
            let stored: u8 = self
                .scripts
                .put_device
                .key(self.key("u", &user))
                .key(self.key("d", &device))
                .arg(now)
                .arg(ms(ttl))
                .arg(frame(exp, false, &device))
                .arg(frame(exp, false, &encode(&grant)?))
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
            Ok(stored == 1)
        })
    }

    fn device_by_user_code(&self, user: Key) -> StoreFuture<'_, Option<DeviceGrant>> {
        Box::pin(async move {
            match self.device_of_user(user).await? {
                Some((_, raw)) => Ok(Some(decode(unframe(&raw)?.2)?)),
                None => Ok(None),
            }
        })
    }

    fn decide_device(
        &self,
        user: Key,
        decision: DeviceDecision,
    ) -> StoreFuture<'_, Option<DeviceGrant>> {
        self.durable(Box::pin(self.decide(user, decision)))
    }

    fn poll_device(
        &self,
        device: Key,
        client_id: &str,
        now: u64,
        step: u64,
    ) -> StoreFuture<'_, Polled> {
        let client_id = client_id.to_owned();
        self.durable(Box::pin(async move {
            self.poll(device, &client_id, now, step).await
        }))
    }

    fn add_failure(&self, name: &str, window: Duration) -> StoreFuture<'_, (u32, Duration)> {
        let key = self.key("n", name.as_bytes());
        self.durable(Box::pin(async move {
            let mut conn = self.conn.clone();
            let (count, left): (u64, u64) = self
                .scripts
                .add_failure
                .key(key)
                .arg(self.now())
                .arg(ms(window))
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
            Ok((
                u32::try_from(count).unwrap_or(u32::MAX),
                Duration::from_millis(left),
            ))
        }))
    }

    fn take_back_failure(&self, name: &str) -> StoreFuture<'_, ()> {
        let key = self.key("n", name.as_bytes());
        Box::pin(async move {
            let mut conn = self.conn.clone();
            self.scripts
                .take_back
                .key(key)
                .arg(self.now())
                .invoke_async::<()>(&mut conn)
                .await
                .map_err(redis_error)
        })
    }

    fn failures(&self, name: &str) -> StoreFuture<'_, (u32, Duration)> {
        let key = self.key("n", name.as_bytes());
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let raw: Option<Vec<u8>> = conn.get(key).await.map_err(redis_error)?;
            let Some(raw) = raw else {
                return Ok((0, Duration::ZERO));
            };
            let (exp, _, payload) = unframe(&raw)?;
            let now = self.now();
            if exp <= now {
                return Ok((0, Duration::ZERO));
            }
            let count = u32::try_from(number(payload)?).unwrap_or(u32::MAX);
            Ok((count, Duration::from_millis(exp - now)))
        })
    }

    fn clear_failures(&self, name: &str) -> StoreFuture<'_, ()> {
        let key = self.key("n", name.as_bytes());
        Box::pin(async move { self.delete(key).await })
    }

    /// Nothing: counting a kind of key in a shared Redis means scanning every key, too
    /// dear for each `/metrics` scrape; Redis's own exporter reports its keys.
    fn sizes(&self) -> StoreFuture<'_, Vec<(&'static str, usize)>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            ::redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(redis_error)
        })
    }

    fn shared_secret(&self, name: &str, fresh: [u8; 32]) -> StoreFuture<'_, [u8; 32]> {
        let key = self.key("k", name.as_bytes());
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let held: Vec<u8> = self
                .scripts
                .shared_secret
                .key(key)
                .arg(&fresh[..])
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
            held.try_into()
                .map_err(|_| StoreError("redis: a shared secret is not 32 bytes".into()))
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Federation, Identity, IdentitySource};
    use crate::store::redis::{MAX_EXPIRY, decode, encode, frame, unframe};
    use crate::store::{CodeGrant, DeviceDecision, DeviceGrant, RefreshGrant, Session};

    /// The encoding is positional: a field left out when empty
    /// (`skip_serializing_if`) would shift the others. Every stored type, with each
    /// optional field empty, must come back as it went in.
    #[test]
    fn stored_values_with_empty_optional_fields_come_back_whole() {
        let identity = Identity {
            source: IdentitySource::Local,
            subject: "s".into(),
            username: "u".into(),
            name: None,
            email: None,
            email_verified: false,
            groups: vec![],
            upstream: None,
            picture: None,
        };
        let code = CodeGrant {
            client_id: "c".into(),
            redirect_uri: None,
            code_challenge: "x".into(),
            scopes: vec![],
            nonce: None,
            identity: identity.clone(),
            auth_time: 1,
            issued: None,
            resources: vec![],
            origin: Default::default(),
            dpop_jkt: None,
        };
        let back: CodeGrant = decode(&encode(&code).expect("encode")).expect("decode");
        assert_eq!(
            (back.redirect_uri, back.nonce, back.identity, back.auth_time),
            (None, None, identity.clone(), 1)
        );
        let refresh = RefreshGrant {
            family: "f".into(),
            client_id: "c".into(),
            source: IdentitySource::Local,
            subject: "s".into(),
            scopes: vec![],
            auth_time: 1,
            issued_at: 2,
            expires_at: 3,
            credential: None,
            federated: None,
            resources: vec![],
            origin: Default::default(),
            dpop_jkt: None,
        };
        let back: RefreshGrant = decode(&encode(&refresh).expect("encode")).expect("decode");
        assert_eq!(
            (back.expires_at, back.credential, back.federated),
            (3, None, None)
        );
        // A federated user whose federation record keeps no upstream token.
        let federated = Identity {
            upstream: Some(Box::new(Federation {
                provider: "corp".into(),
                subject: "u".into(),
                login_at: 7,
                checked_at: 8,
                token: None,
            })),
            ..identity.clone()
        };
        let refresh = RefreshGrant {
            federated: Some(Box::new(federated.clone())),
            ..refresh
        };
        let back: RefreshGrant = decode(&encode(&refresh).expect("encode")).expect("decode");
        assert_eq!(back.federated.as_deref(), Some(&federated));
        let session = Session {
            identity: identity.clone(),
            auth_time: 4,
            consents: Default::default(),
            sid: "s".into(),
            created_at: 4,
            amr: vec![],
            clients: Default::default(),
        };
        let back: Session = decode(&encode(&session).expect("encode")).expect("decode");
        assert_eq!((back.identity, back.auth_time), (identity, 4));
        let device = DeviceGrant {
            client_id: "c".into(),
            scopes: vec![],
            expires_at: 5,
            interval: 6,
            last_poll: None,
            decision: DeviceDecision::Pending,
            resources: vec![],
        };
        let back: DeviceGrant = decode(&encode(&device).expect("encode")).expect("decode");
        assert_eq!((back.interval, back.last_poll), (6, None));
    }

    #[test]
    fn a_frame_gives_back_its_expiry_flag_and_payload() {
        for used in [false, true] {
            let raw = frame(1_764_000_000_123, used, b"\x00payload");
            assert_eq!(raw.len(), 7 + 8);
            let (exp, flag, payload) = unframe(&raw).expect("frame");
            assert_eq!(
                (exp, flag, payload),
                (1_764_000_000_123, used, &b"\x00payload"[..])
            );
        }
        assert_eq!(
            unframe(&frame(u64::MAX, false, b"")).expect("frame").0,
            MAX_EXPIRY
        );
        assert!(unframe(b"").is_err());
        assert!(unframe(b"\x80\x00\x00").is_err());
        assert!(unframe(b"\x82\x00\x00\x00\x00\x00\x00").is_err());
    }

    #[test]
    fn a_value_in_the_older_frame_still_reads() {
        let (exp, used, payload) = unframe(b"0017640000001231\x00payload").expect("frame");
        assert_eq!(
            (exp, used, payload),
            (1_764_000_000_123, true, &b"\x00payload"[..])
        );
        assert!(!unframe(b"0017640000001230").expect("frame").1);
        assert!(unframe(b"123").is_err());
        assert!(unframe(b"12345678901234x0").is_err());
    }
}
