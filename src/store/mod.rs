//! The ephemeral store: what a running server creates and must remember for a while
//! (authorization codes, refresh tokens, login sessions, pending logins, revoked token
//! ids, failure counters). Nothing of record: losing it logs users out, nothing more.
//!
//! Three implementations: `memory` (this process), `file` (this process, kept in an
//! embedded database file so it survives a restart) and `redis` (shared by replicas),
//! chosen by [`open`]. Secrets (codes, refresh tokens, session ids) are stored under
//! the SHA-256 of their value, never as themselves. Operations that must be atomic (redeeming a code,
//! rotating a refresh token) are single store calls so that a shared store can make
//! them atomic too.

pub mod conformance;
pub mod file;
mod id_bytes;
pub mod memory;
pub mod metered;
pub mod redis;

use crate::clock::Clock;
use crate::error::OAuthError;
use crate::load::{StoreBackend, StoreSettings};
use crate::model::{CredentialId, Identity, IdentitySource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The key of a secret value: its SHA-256.
pub(crate) type Key = [u8; 32];

/// A store operation in flight.
pub(crate) type StoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not be reached or answered nonsense.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);

/// A request that needs the store while it is unavailable is `temporarily_unavailable`
/// (503): nothing was changed, and the client may retry.
impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::unavailable(e)
    }
}

/// Opens the store `settings` name, reading time from `clock`, measured per operation
/// (`metered`). The one place a store is chosen: the in-process memory store (whose expired entries a background task frees;
/// it needs a Tokio runtime), or Redis, which must answer now (a replica does not start
/// on a store it cannot reach; once running it survives Redis going away).
pub async fn open(
    settings: &StoreSettings,
    clock: &Clock,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let store = open_unmetered(settings, clock).await?;
    Ok(std::sync::Arc::new(metered::Metered::new(store)))
}

/// The store `settings` name, without [`metered::Metered`] around it.
async fn open_unmetered(
    settings: &StoreSettings,
    clock: &Clock,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match &settings.backend {
        StoreBackend::Memory => Ok(memory(clock)),
        StoreBackend::File(path) => {
            let path = path.clone();
            let clock = clock.clone();
            // Reading the file back may take a while: off the async workers.
            let store = tokio::task::spawn_blocking(move || file::FileStore::open(&path, clock))
                .await
                .map_err(|e| StoreError(format!("opening the file store: {e}")))??;
            Ok(std::sync::Arc::new(store))
        }
        StoreBackend::Redis(_) => {
            let store = redis::RedisStore::open(settings, clock.clone()).await?;
            store.ping().await?;
            Ok(std::sync::Arc::new(store))
        }
    }
}

/// A fresh in-process store with its sweeper: the default store, and where failures
/// are counted while a shared store is unreachable.
pub(crate) fn memory(clock: &Clock) -> std::sync::Arc<memory::MemoryStore> {
    let store = std::sync::Arc::new(memory::MemoryStore::new(clock.clone()));
    memory::spawn_sweeper(&store);
    store
}

/// What an authorization code stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    /// The `redirect_uri` parameter of the authorization request, if it had one.
    pub redirect_uri: Option<String>,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    /// Who logged in, as of the login.
    pub identity: Identity,
    pub auth_time: u64,
    /// What was issued at the first redemption, so a replay can revoke it.
    pub issued: Option<IssuedIds>,
    /// The resources (RFC 8707) the authorization request named; none: the client's
    /// defaults.
    // Last, `default`, always written: stores encode records by position.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The login session that approved it.
    #[serde(default)]
    pub origin: Origin,
    /// The thumbprint of the DPoP key the code is bound to (RFC 9449 10): its token
    /// request must carry a proof by that key.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl CodeGrant {
    /// What a used code keeps: whose it was (client, user, session, login time) and
    /// what its first redemption issued, all a replay needs to revoke those tokens and
    /// say whose they were. The memory and file stores keep only this once a code is
    /// used (it stays until it expires); the whole grant (the user's profile, scopes,
    /// challenge, redirect URI) was most of a busy server's memory (issue 28).
    pub(crate) fn replay_record(&self) -> Self {
        let subject = self.identity.subject.clone();
        let identity = Identity::bare(self.identity.source, subject, String::new());
        Self {
            client_id: self.client_id.clone(),
            redirect_uri: None,
            code_challenge: String::new(),
            scopes: Vec::new(),
            nonce: None,
            identity,
            auth_time: self.auth_time,
            issued: self.issued.clone(),
            resources: Vec::new(),
            origin: Origin {
                sid: self.origin.sid.clone(),
                since: self.origin.since,
                amr: Vec::new(),
            },
            dpop_jkt: None,
        }
    }
}

/// Where a code or a refresh family comes from: the login session (its `sid`), when
/// that began, and how the user authenticated. Kept across rotations, so that ending
/// the session or a `tokens_not_before` after its start ends every descendant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The session's `sid`; `None` outside a browser session (the device grant).
    #[serde(with = "id_bytes::option")]
    pub sid: Option<String>,
    /// When the session (or the grant, without one) began, Unix seconds: what a
    /// `tokens_not_before` is compared to.
    pub since: u64,
    /// How the user authenticated (RFC 8176 `amr` values), where known.
    pub amr: Vec<String>,
}

/// Identifiers of the tokens issued for one code redemption.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedIds {
    #[serde(with = "id_bytes")]
    pub access_jti: String,
    /// When that access token expires (Unix seconds): how long to deny it.
    pub access_exp: u64,
    #[serde(with = "id_bytes::option")]
    pub refresh_family: Option<String>,
}

/// What a refresh token stands for. Every rotation keeps the family. Refresh tokens are
/// the store's bulk, so a grant names its user (source and subject) rather than
/// carrying a claims snapshot: `identity::by_subject` resolves it at each refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    #[serde(with = "id_bytes")]
    pub family: String,
    pub client_id: String,
    pub source: IdentitySource,
    /// The user's subject (`sub`).
    pub subject: String,
    pub scopes: Vec<String>,
    pub auth_time: u64,
    /// When this token was issued and when it expires (Unix seconds).
    pub issued_at: u64,
    pub expires_at: u64,
    /// The fingerprint of the client secret that authenticated the request it was
    /// issued to (`None`: a public client): the token stands while the client still
    /// lists that secret.
    pub credential: Option<CredentialId>,
    /// For a user who signed in through an upstream provider: the identity with its
    /// federation record (when the upstream vouched, the sealed upstream token this
    /// family alone holds) and, for a user the rules let in, the claims snapshot.
    /// `identity::current` resolves it instead of `source`/`subject`.
    // Last, `default`, always written: stores encode records by position.
    #[serde(default)]
    pub federated: Option<Box<Identity>>,
    /// The resources (RFC 8707) the grant's request named; none: the client's defaults.
    /// A refresh may ask for a subset, never more.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The session the family began in; kept by every rotation. A grant written
    /// before this field has `since` 0: any `tokens_not_before` ends it.
    #[serde(default)]
    pub origin: Origin,
    /// A public client's token is bound to the DPoP key it was issued with (RFC 9449
    /// 5): a refresh needs a proof by that key.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl RefreshGrant {
    /// True for a family granted `offline_access` (OIDC Core 11): it outlives the
    /// session it began in.
    pub(crate) fn offline(&self) -> bool {
        self.scopes.iter().any(|s| s == "offline_access")
    }
}

/// The outcome of using a single-use value.
#[derive(Debug)]
pub enum Redeemed<T> {
    /// First use: here is what it stands for.
    Fresh(T),
    /// Used before: here is what it stood for, so its offspring can be revoked.
    Replayed(T),
    /// Never issued, or expired.
    Unknown,
}

impl<T> Redeemed<T> {
    /// The same outcome, its value converted by `f`.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Redeemed<U> {
        match self {
            Self::Fresh(t) => Redeemed::Fresh(f(t)),
            Self::Replayed(t) => Redeemed::Replayed(f(t)),
            Self::Unknown => Redeemed::Unknown,
        }
    }
}

/// What a device code (RFC 8628) stands for, from its issue to its one redemption.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// When the codes expire (Unix seconds). The entry is kept a while longer so that a
    /// late poll is told `expired_token` rather than `invalid_grant`.
    pub expires_at: u64,
    /// Seconds the client must wait between polls; grows with each poll too fast.
    pub interval: u64,
    /// When the client last polled (Unix seconds).
    pub last_poll: Option<u64>,
    /// What the user decided so far.
    pub decision: DeviceDecision,
    /// The resources (RFC 8707) the device authorization request named.
    // Last, `default`, always written: stores encode records by position.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// The user's answer to a device code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DeviceDecision {
    /// Nobody has approved or denied it yet.
    Pending,
    /// Approved by this user, who logged in at `auth_time`.
    Approved { identity: Identity, auth_time: u64 },
    /// Denied.
    Denied,
}

/// The outcome of a poll with a device code.
#[derive(Debug)]
pub enum Polled {
    /// Never issued, or gone.
    Unknown,
    /// Polled before its interval was up: the interval has grown by the step.
    TooFast(DeviceGrant),
    /// Not approved (pending or denied), polled at an acceptable pace.
    Waiting(DeviceGrant),
    /// Approved, and this is the one poll that gets it: it is used now.
    Fresh(DeviceGrant),
    /// Approved and already handed out.
    Replayed(DeviceGrant),
}

/// A browser's login session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Who logged in, as of the login.
    pub identity: Identity,
    /// When the user last entered their password (Unix seconds).
    pub auth_time: u64,
    /// Scopes the user has granted each client in this session.
    pub consents: BTreeMap<String, BTreeSet<String>>,
    /// The session's public id (`sid` in ID tokens and logout tokens): not a secret,
    /// unlike the cookie's id, whose hash is the store key.
    #[serde(default, with = "id_bytes")]
    pub sid: String,
    /// When the session began (Unix seconds).
    #[serde(default)]
    pub created_at: u64,
    /// How the user authenticated (RFC 8176 `amr` values), where known.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The clients given a code in this session: what its end logs out.
    #[serde(default)]
    pub clients: BTreeSet<String>,
}

impl Session {
    /// Where a code approved in this session comes from.
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            sid: (!self.sid.is_empty()).then(|| self.sid.clone()),
            since: self.created_at,
            amr: self.amr.clone(),
        }
    }
}

/// The records that decide whether a token or session still stands, read together by
/// [`Store::standing`]: one round trip (one `MGET`) to a shared store instead of one
/// per record.
#[derive(Debug, Default, Clone)]
pub struct StandingQuery {
    /// Names whose not-before ([`Store::not_before`]) is wanted, in this order.
    pub not_before: Vec<String>,
    /// An access token id, to ask whether it is denied ([`Store::jti_denied`]).
    pub jti: Option<String>,
    /// A refresh family, to ask whether it is revoked ([`Store::family_revoked`]).
    pub family: Option<String>,
}

/// What [`Store::standing`] found for a [`StandingQuery`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StandingRecords {
    /// Each name's not-before, in the query's order.
    pub not_before: Vec<Option<u64>>,
    /// The query's access token id is denied (false when it named none).
    pub jti_denied: bool,
    /// The query's refresh family is revoked (false when it named none).
    pub family_revoked: bool,
}

/// The ephemeral store. Every implementation runs `conformance::run`. Expiry follows
/// the clock the store was opened with.
pub trait Store: Send + Sync {
    /// Remembers a code for `ttl`.
    fn put_code(&self, key: Key, grant: CodeGrant, ttl: Duration) -> StoreFuture<'_, ()>;
    /// Uses a code: the first call gets it (recording `issued`), later ones see a replay
    /// (whose grant may hold no more than [`CodeGrant::replay_record`]).
    fn redeem_code(&self, key: Key, issued: IssuedIds) -> StoreFuture<'_, Redeemed<CodeGrant>>;
    /// [`Store::redeem_code`] that also starts the code's refresh family: when this was
    /// the code's first use, remembers `first` under `key` for `ttl` (never for a
    /// replayed or unknown code). Redis does both in one script, one round trip; the
    /// file store commits both at once; the default redeems, then puts.
    fn redeem_code_with_refresh(
        &self,
        code: Key,
        issued: IssuedIds,
        key: Key,
        first: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        Box::pin(async move {
            let redeemed = self.redeem_code(code, issued).await?;
            if matches!(redeemed, Redeemed::Fresh(_)) {
                self.put_refresh(key, first, ttl).await?;
            }
            Ok(redeemed)
        })
    }
    /// Reads a code without using it, so a request refused on what it stands for (a
    /// resource it did not authorize) leaves it usable. Redis: `GET`, or the copy the
    /// replica that wrote the code keeps, which may say fresh for a code used on
    /// another replica since (its redemption then says replayed).
    fn peek_code(&self, key: Key) -> StoreFuture<'_, Redeemed<CodeGrant>>;

    /// Remembers a refresh token for `ttl`.
    fn put_refresh(&self, key: Key, grant: RefreshGrant, ttl: Duration) -> StoreFuture<'_, ()>;
    /// Looks at a refresh token without using it: fresh, already used, or unknown.
    fn peek_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>>;
    /// Uses a refresh token: the first call gets it, later ones see a reuse.
    fn use_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>>;
    /// A rotation: uses the refresh token `old` and, when this was its first use,
    /// remembers `next` under `key` for `ttl` (never when `old` was unknown or used
    /// already). What `old` was, as [`Store::use_refresh`] says. Redis does both in one
    /// script, one round trip; the default uses, then puts.
    fn rotate_refresh(
        &self,
        old: Key,
        key: Key,
        next: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        Box::pin(async move {
            let used = self.use_refresh(old).await?;
            if matches!(used, Redeemed::Fresh(_)) {
                self.put_refresh(key, next, ttl).await?;
            }
            Ok(used)
        })
    }
    /// Revokes a whole refresh token family for `ttl` (the longest a member can live).
    fn revoke_family(&self, family: &str, ttl: Duration) -> StoreFuture<'_, ()>;
    /// True when the family was revoked.
    fn family_revoked(&self, family: &str) -> StoreFuture<'_, bool>;

    /// Records that the tokens issued to `client_id` at or before `at` (Unix seconds) no
    /// longer stand, for `ttl` (the longest a token lives): written when a client is
    /// removed or one of its secrets is, so that re-adding it or listing the old secret
    /// again revives nothing. `client_id` is any string: a client id, or the name
    /// `oauth::standing::reset_key` gives one of its secrets (the id, a space, the
    /// fingerprint). A later `at` replaces an earlier one, never the other
    /// way, and the record lives until the later of the two expiries. Atomic in Redis
    /// as one script (reads the record, writes the greater time and expiry).
    fn set_not_before(&self, client_id: &str, at: u64, ttl: Duration) -> StoreFuture<'_, ()>;
    /// The time before which (inclusive) `client_id`'s tokens are dead, if one is
    /// recorded. A single `GET` in Redis.
    fn not_before(&self, client_id: &str) -> StoreFuture<'_, Option<u64>>;

    /// Denies an access token id until it would have expired anyway.
    fn deny_jti(&self, jti: &str, ttl: Duration) -> StoreFuture<'_, ()>;
    /// True when the access token id is denied.
    fn jti_denied(&self, jti: &str) -> StoreFuture<'_, bool>;
    /// The not-befores, denial and revocation `query` asks about, as
    /// [`Store::not_before`], [`Store::jti_denied`] and [`Store::family_revoked`] would
    /// answer them one by one: what decides whether a token stands, in one round trip
    /// to a shared store (Redis: one `MGET`). The default asks one by one.
    fn standing<'a>(&'a self, query: &'a StandingQuery) -> StoreFuture<'a, StandingRecords> {
        Box::pin(async move {
            let mut not_before = Vec::with_capacity(query.not_before.len());
            for name in &query.not_before {
                not_before.push(self.not_before(name).await?);
            }
            let jti_denied = match &query.jti {
                Some(jti) => self.jti_denied(jti).await?,
                None => false,
            };
            let family_revoked = match &query.family {
                Some(family) => self.family_revoked(family).await?,
                None => false,
            };
            Ok(StandingRecords {
                not_before,
                jti_denied,
                family_revoked,
            })
        })
    }

    /// Remembers `key` until `until` (Unix seconds on the store's clock): true when this
    /// call is the first to remember it (nothing live under it), false while an earlier
    /// one still holds. What makes a client assertion's `jti` single use across
    /// replicas. Atomic: of racing calls exactly one is told true (Redis: one script,
    /// `GET`, and when nothing live is there `SET key frame PX ms-until-then`, the
    /// frame's expiry read on the clock as every value's).
    fn remember_once(&self, key: &str, until: u64) -> StoreFuture<'_, bool>;

    /// Adds the session `sid` to the index `name` (the sessions of one user, or of one
    /// client) until `until` (Unix seconds on the store's clock; a later `until` for a
    /// member already there replaces an earlier one, never the other way). Keeps at
    /// most `cap` members: past it, those that expire first go (the oldest sessions),
    /// so no index grows without bound. Nothing for an `until` already past. Redis: one
    /// script over a sorted set scored by expiry (`ZREMRANGEBYSCORE` of the expired,
    /// `ZADD` when later, `ZREMRANGEBYRANK` past the cap, `PEXPIRE` to the latest).
    fn index_session(&self, name: &str, sid: &str, until: u64, cap: usize) -> StoreFuture<'_, ()>;
    /// The live members of the index `name`, in no given order. Redis:
    /// `ZRANGEBYSCORE name (now +inf`.
    fn indexed_sessions(&self, name: &str) -> StoreFuture<'_, Vec<String>>;
    /// Takes the session `sid` out of the index `name` (it ended). Redis: `ZREM`.
    fn unindex_session(&self, name: &str, sid: &str) -> StoreFuture<'_, ()>;

    /// Stores (or replaces) a session for `ttl`.
    fn put_session(&self, key: Key, session: Session, ttl: Duration) -> StoreFuture<'_, ()>;
    /// The live session under `key`.
    fn get_session(&self, key: Key) -> StoreFuture<'_, Option<Session>>;
    /// Ends a session.
    fn delete_session(&self, key: Key) -> StoreFuture<'_, ()>;

    /// Stores a pending authorization request (JSON) while the user logs in or consents.
    fn put_pending(&self, key: Key, request: String, ttl: Duration) -> StoreFuture<'_, ()>;
    /// The pending request under `key`.
    fn get_pending(&self, key: Key) -> StoreFuture<'_, Option<String>>;
    /// Forgets a pending request once it is answered; true when this call removed a
    /// live one. Atomic, so of two requests answering the same pending login at once
    /// only one is told true (the one that may issue a code). Redis: `GETDEL`, the
    /// frame's expiry read from what it returned.
    fn delete_pending(&self, key: Key) -> StoreFuture<'_, bool>;

    /// Stores a new device code under `device` and its user code under `user`, both for
    /// `ttl`; false (and nothing stored) when the user code is taken already, so the
    /// caller draws another. Redis: one script, `SET user device NX PX`, then `SET
    /// device grant PX` only when the first succeeded.
    fn put_device(
        &self,
        device: Key,
        user: Key,
        grant: DeviceGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, bool>;
    /// The device grant a user code stands for, while it lives. Redis: a script that
    /// `GET`s the user code's device key, then that key.
    fn device_by_user_code(&self, user: Key) -> StoreFuture<'_, Option<DeviceGrant>>;
    /// Records the user's `decision` on the device code behind `user`, only when it is
    /// still pending; returns the grant as decided (`None`: unknown or decided before).
    /// Atomic, so two approvals cannot both pass (Redis: the grant is read and checked
    /// pending, then written back by a compare-and-set script with `KEEPTTL`, read
    /// again when another write came first).
    fn decide_device(
        &self,
        user: Key,
        decision: DeviceDecision,
    ) -> StoreFuture<'_, Option<DeviceGrant>>;
    /// A poll at `now` (Unix seconds) with the device code `device` by `client_id`
    /// (another client's poll is [`Polled::Unknown`] and changes nothing): records the poll
    /// and, when it comes before `last_poll + interval`, grows the interval by `step`
    /// ([`Polled::TooFast`]); an approved code is handed out once ([`Polled::Fresh`]),
    /// later polls see [`Polled::Replayed`]. Atomic (Redis: the grant is rewritten by
    /// compare-and-set with `KEEPTTL`, as in `decide_device`).
    fn poll_device(
        &self,
        device: Key,
        client_id: &str,
        now: u64,
        step: u64,
    ) -> StoreFuture<'_, Polled>;

    /// Counts one attempt under `name` in a window of `window` that starts at the first
    /// one; returns the new count and the time left in the window. Atomic: parallel
    /// calls each see a different count (Redis: one script that reads the count and
    /// its window's end on the clock and writes both back, one higher).
    fn add_failure(&self, name: &str, window: Duration) -> StoreFuture<'_, (u32, Duration)>;
    /// Takes one attempt back from the count under `name` (a success: it was counted
    /// before it was checked); never below zero, and the window is left as it is.
    /// Atomic (Redis: a script that lowers only a positive count, `KEEPTTL`).
    fn take_back_failure(&self, name: &str) -> StoreFuture<'_, ()>;
    /// The failures counted under `name` and the time left in their window.
    fn failures(&self, name: &str) -> StoreFuture<'_, (u32, Duration)>;
    /// Forgets the failures under `name` (after a success).
    fn clear_failures(&self, name: &str) -> StoreFuture<'_, ()>;

    /// How many entries of each kind the store holds, for metrics; a shared store may
    /// list none (counting its keys would mean scanning them all).
    fn sizes(&self) -> StoreFuture<'_, Vec<(&'static str, usize)>>;

    /// Succeeds when the store answers: what `/readyz` asks. (Redis: `PING`.)
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// The secret named `name` that every replica on this store shares (the CSRF form
    /// key), made from `fresh` by whoever asks first and kept for as long as the store
    /// lives: the one value without an expiry, 32 bytes. Atomic (Redis: one script,
    /// `GET`, else `SET` the fresh one), so two replicas starting at once agree.
    fn shared_secret(&self, name: &str, fresh: [u8; 32]) -> StoreFuture<'_, [u8; 32]>;

    /// What kind of store this is (`memory`, `file`, `redis`): for `/readyz` and the
    /// metrics' `store` label.
    fn kind(&self) -> &'static str;
}
