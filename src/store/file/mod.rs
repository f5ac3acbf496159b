//! The embedded store: the memory store's maps, kept in a file too, so one instance
//! survives a restart (an upgrade, a node drain, a crash) with its sessions, refresh
//! tokens, revocations and not-before records. `[store] url = "file:/path"` (or
//! `path = "/path"`). One process only: several replicas need Redis.
//!
//! Reads are the memory store's (memory speed). Every change is made in memory first,
//! atomically as there (so the conformance suite's single-use rules hold unchanged),
//! then the changed entry is written to a redb database by one writer thread: it takes
//! every change queued, reads each changed entry's state *at that moment* from memory
//! (so the file always gets the latest state, whatever order changes were queued in)
//! and commits them in one transaction (group commit: one `fsync` for many requests).
//! A change that decides security (a code, refresh token, pending login or device code
//! used; a family revoked, an access token denied, a not-before, a session ended; what
//! a client keeps: refresh tokens, sessions, device codes) waits for its commit with
//! `Durability::Immediate`, so it is on disk before the answer goes out; a rotation's
//! two entries share one commit. Failure counters, pending logins and fresh codes (a
//! login in flight) are written without waiting (`Durability::None`, on disk with the
//! next durable commit, which a code's redemption is): losing the last moment of them
//! in a crash costs a retry, nothing more.
//!
//! The file holds two tables: `entries` (a kind's tag byte and the id, to the expiry,
//! the used byte and the value, [`memory::Record`]) and `expiry` (the expiry, tag and
//! id, for the sweep that deletes what expired). Opening reads every live entry back
//! into memory. redb locks the file: a second process opening it is refused with
//! [`IN_USE`].

use super::memory::{self, Kind, MemoryStore};
use super::{
    CodeGrant, DeviceDecision, DeviceGrant, IssuedIds, Key, Polled, Redeemed, RefreshGrant,
    Session, Store, StoreError, StoreFuture,
};
use crate::clock::Clock;
use redb::{Database, DatabaseError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

mod writer;

use writer::{Change, Writer, db_error, load, prepare};

/// The start of the error when the file is open in another process.
pub(crate) const IN_USE: &str = "is in use by another process";

/// Whether a change waits for its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// On disk (`fsync`ed) before the operation returns.
    Durable,
    /// Queued; on disk with the next durable commit.
    No,
}

/// The embedded store: the memory store, and the writer that keeps the file in step.
pub(crate) struct FileStore {
    memory: Arc<MemoryStore>,
    /// `None` once dropped (so the writer sees the channel close).
    changes: Mutex<Option<Sender<Change>>>,
    /// False after a commit failed, until one succeeds: what `ping` reports.
    healthy: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl FileStore {
    /// Opens (or creates) the store file at `path`, reads what it holds back into
    /// memory, and starts its writer and the memory sweeper (needs a Tokio runtime).
    /// Refused when another process has the file open.
    pub(crate) fn open(path: &Path, clock: Clock) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError(format!(
                "the store file {} {IN_USE}: the file store serves one gatehouse instance; \
                 several replicas need Redis",
                path.display()
            )),
            other => db_error(path, other),
        })?;
        let memory = Arc::new(MemoryStore::new(clock.clone()));
        prepare(&db, path)?;
        let loaded = load(&db, &memory, clock.now_ms()).map_err(|e| db_error(path, e))?;
        tracing::info!(path = %path.display(), entries = loaded, "file store opened");
        memory::spawn_sweeper(&memory);
        let (tx, rx) = channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            db,
            memory: memory.clone(),
            clock,
            healthy: healthy.clone(),
            path: path.to_owned(),
        };
        let writer = std::thread::Builder::new()
            .name("gatehouse-file-store".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| db_error(path, e))?;
        Ok(Self {
            memory,
            changes: Mutex::new(Some(tx)),
            healthy,
            writer: Some(writer),
            path: path.to_owned(),
        })
    }

    /// Queues the entry `id` of `kind` for the file; with [`Wait::Durable`], returns
    /// once it is on disk.
    async fn persist(&self, kind: Kind, id: &[u8], wait: Wait) -> Result<(), StoreError> {
        let (done, waited) = match wait {
            Wait::Durable => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            Wait::No => (None, None),
        };
        let change = Change {
            kind,
            id: id.to_vec(),
            done,
        };
        let sent = self
            .changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|tx| tx.send(change).is_ok());
        if !sent {
            return Err(db_error(&self.path, "the writer has stopped"));
        }
        match waited {
            Some(rx) => rx
                .await
                .map_err(|_| db_error(&self.path, "the writer has stopped"))?,
            None => Ok(()),
        }
    }

    /// Given a single-use entry's first use, `used`, persists the two entries it
    /// changed, queued together and the second waiting: one commit (one `fsync`) makes
    /// both durable, not two in a row. A replay changed nothing.
    async fn persist_first_use<T>(
        &self,
        used: Redeemed<T>,
        (kind, id): (Kind, &Key),
        (then_kind, then_id): (Kind, &Key),
    ) -> Result<Redeemed<T>, StoreError> {
        if fresh(&used) {
            self.persist(kind, id, Wait::No).await?;
            self.persist(then_kind, then_id, Wait::Durable).await?;
        }
        Ok(used)
    }

    /// Given the memory store's `outcome`, persists `id` of `kind` when `changed` says
    /// the outcome changed something.
    async fn then_persist<T>(
        &self,
        outcome: Result<T, StoreError>,
        kind: Kind,
        id: &[u8],
        wait: Wait,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        let outcome = outcome?;
        if changed(&outcome) {
            self.persist(kind, id, wait).await?;
        }
        Ok(outcome)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has committed what was queued;
        // joining it releases the file's lock before anyone reopens it.
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn fresh<T>(r: &Redeemed<T>) -> bool {
    matches!(r, Redeemed::Fresh(_))
}

fn always<T>(_: &T) -> bool {
    true
}

impl Store for FileStore {
    fn put_code(&self, key: Key, grant: CodeGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        // A login in flight, like a pending one: a crash before the next durable commit
        // loses the code (the client's exchange fails and the user signs in again);
        // its use is what must be on disk, and `redeem_code` waits for that.
        Box::pin(async move {
            let r = self.memory.put_code(key, grant, ttl).await;
            self.then_persist(r, Kind::Code, &key, Wait::No, always)
                .await
        })
    }

    fn redeem_code(&self, key: Key, issued: IssuedIds) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        Box::pin(async move {
            let r = self.memory.redeem_code(key, issued).await;
            self.then_persist(r, Kind::Code, &key, Wait::Durable, fresh)
                .await
        })
    }

    fn redeem_code_with_refresh(
        &self,
        code: Key,
        issued: IssuedIds,
        key: Key,
        first: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        Box::pin(async move {
            let memory = &self.memory;
            let used = memory
                .redeem_code_with_refresh(code, issued, key, first, ttl)
                .await?;
            let refresh = (Kind::Refresh, &key);
            self.persist_first_use(used, (Kind::Code, &code), refresh)
                .await
        })
    }

    fn put_refresh(&self, key: Key, grant: RefreshGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let r = self.memory.put_refresh(key, grant, ttl).await;
            self.then_persist(r, Kind::Refresh, &key, Wait::Durable, always)
                .await
        })
    }

    fn peek_code(&self, key: Key) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        self.memory.peek_code(key)
    }

    fn peek_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        self.memory.peek_refresh(key)
    }

    fn use_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        Box::pin(async move {
            let r = self.memory.use_refresh(key).await;
            self.then_persist(r, Kind::Refresh, &key, Wait::Durable, fresh)
                .await
        })
    }

    fn rotate_refresh(
        &self,
        old: Key,
        key: Key,
        next: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        Box::pin(async move {
            let used = self.memory.rotate_refresh(old, key, next, ttl).await?;
            let next = (Kind::Refresh, &key);
            self.persist_first_use(used, (Kind::Refresh, &old), next)
                .await
        })
    }

    fn revoke_family(&self, family: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        let family = family.to_owned();
        Box::pin(async move {
            let r = self.memory.revoke_family(&family, ttl).await;
            self.then_persist(r, Kind::Family, family.as_bytes(), Wait::Durable, always)
                .await
        })
    }

    fn family_revoked(&self, family: &str) -> StoreFuture<'_, bool> {
        self.memory.family_revoked(family)
    }

    fn set_not_before(&self, client_id: &str, at: u64, ttl: Duration) -> StoreFuture<'_, ()> {
        let id = client_id.to_owned();
        Box::pin(async move {
            let r = self.memory.set_not_before(&id, at, ttl).await;
            self.then_persist(r, Kind::NotBefore, id.as_bytes(), Wait::Durable, always)
                .await
        })
    }

    fn not_before(&self, client_id: &str) -> StoreFuture<'_, Option<u64>> {
        self.memory.not_before(client_id)
    }

    fn deny_jti(&self, jti: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        let jti = jti.to_owned();
        Box::pin(async move {
            let r = self.memory.deny_jti(&jti, ttl).await;
            self.then_persist(r, Kind::Jti, jti.as_bytes(), Wait::Durable, always)
                .await
        })
    }

    fn jti_denied(&self, jti: &str) -> StoreFuture<'_, bool> {
        self.memory.jti_denied(jti)
    }

    fn remember_once(&self, key: &str, until: u64) -> StoreFuture<'_, bool> {
        let key = key.to_owned();
        Box::pin(async move {
            let r = self.memory.remember_once(&key, until).await;
            let first = |first: &bool| *first;
            self.then_persist(r, Kind::Remembered, key.as_bytes(), Wait::Durable, first)
                .await
        })
    }

    fn put_session(&self, key: Key, session: Session, ttl: Duration) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let r = self.memory.put_session(key, session, ttl).await;
            self.then_persist(r, Kind::Session, &key, Wait::Durable, always)
                .await
        })
    }

    fn get_session(&self, key: Key) -> StoreFuture<'_, Option<Session>> {
        self.memory.get_session(key)
    }

    fn delete_session(&self, key: Key) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let r = self.memory.delete_session(key).await;
            self.then_persist(r, Kind::Session, &key, Wait::Durable, always)
                .await
        })
    }

    fn index_session(&self, name: &str, sid: &str, until: u64, cap: usize) -> StoreFuture<'_, ()> {
        let (name, sid) = (name.to_owned(), sid.to_owned());
        Box::pin(async move {
            let dropped = self.memory.add_to_index(&name, &sid, until, cap);
            for member in dropped.iter().chain([&sid]) {
                let id = memory::index_member_id(&name, member);
                self.persist(Kind::IndexMember, &id, Wait::Durable).await?;
            }
            Ok(())
        })
    }

    fn indexed_sessions(&self, name: &str) -> StoreFuture<'_, Vec<String>> {
        self.memory.indexed_sessions(name)
    }

    fn unindex_session(&self, name: &str, sid: &str) -> StoreFuture<'_, ()> {
        let id = memory::index_member_id(name, sid);
        let (name, sid) = (name.to_owned(), sid.to_owned());
        Box::pin(async move {
            let r = self.memory.unindex_session(&name, &sid).await;
            self.then_persist(r, Kind::IndexMember, &id, Wait::Durable, always)
                .await
        })
    }

    fn put_pending(&self, key: Key, request: String, ttl: Duration) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let r = self.memory.put_pending(key, request, ttl).await;
            self.then_persist(r, Kind::Pending, &key, Wait::No, always)
                .await
        })
    }

    fn get_pending(&self, key: Key) -> StoreFuture<'_, Option<String>> {
        self.memory.get_pending(key)
    }

    fn delete_pending(&self, key: Key) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let r = self.memory.delete_pending(key).await;
            self.then_persist(r, Kind::Pending, &key, Wait::Durable, |taken| *taken)
                .await
        })
    }

    fn put_device(
        &self,
        device: Key,
        user: Key,
        grant: DeviceGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let stored = self.memory.put_device(device, user, grant, ttl).await?;
            if stored {
                self.persist(Kind::UserCode, &user, Wait::No).await?;
                self.persist(Kind::Device, &device, Wait::Durable).await?;
            }
            Ok(stored)
        })
    }

    fn device_by_user_code(&self, user: Key) -> StoreFuture<'_, Option<DeviceGrant>> {
        self.memory.device_by_user_code(user)
    }

    fn decide_device(
        &self,
        user: Key,
        decision: DeviceDecision,
    ) -> StoreFuture<'_, Option<DeviceGrant>> {
        Box::pin(async move {
            let Some(device) = self.memory.device_key(user) else {
                return Ok(None);
            };
            let r = self.memory.decide_device(user, decision).await;
            self.then_persist(r, Kind::Device, &device, Wait::Durable, Option::is_some)
                .await
        })
    }

    fn poll_device(
        &self,
        device: Key,
        client_id: &str,
        now: u64,
        step: u64,
    ) -> StoreFuture<'_, Polled> {
        let client_id = client_id.to_owned();
        Box::pin(async move {
            let r = self.memory.poll_device(device, &client_id, now, step).await;
            let wait = |p: &Polled| matches!(p, Polled::Fresh(_));
            let polled = r?;
            match &polled {
                Polled::Unknown | Polled::Replayed(_) => {}
                p if wait(p) => self.persist(Kind::Device, &device, Wait::Durable).await?,
                _ => self.persist(Kind::Device, &device, Wait::No).await?,
            }
            Ok(polled)
        })
    }

    fn add_failure(&self, name: &str, window: Duration) -> StoreFuture<'_, (u32, Duration)> {
        let name = name.to_owned();
        Box::pin(async move {
            let r = self.memory.add_failure(&name, window).await;
            self.then_persist(r, Kind::Failure, name.as_bytes(), Wait::No, always)
                .await
        })
    }

    fn take_back_failure(&self, name: &str) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        Box::pin(async move {
            let r = self.memory.take_back_failure(&name).await;
            self.then_persist(r, Kind::Failure, name.as_bytes(), Wait::No, always)
                .await
        })
    }

    fn failures(&self, name: &str) -> StoreFuture<'_, (u32, Duration)> {
        self.memory.failures(name)
    }

    fn clear_failures(&self, name: &str) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        Box::pin(async move {
            let r = self.memory.clear_failures(&name).await;
            self.then_persist(r, Kind::Failure, name.as_bytes(), Wait::No, always)
                .await
        })
    }

    fn sizes(&self) -> StoreFuture<'_, Vec<(&'static str, usize)>> {
        self.memory.sizes()
    }

    /// Fails when the last commit failed (a full or read-only disk) or the writer has
    /// stopped: a replica that cannot keep what it issues is not ready.
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let writing = self
                .changes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
                && self.writer.as_ref().is_some_and(|w| !w.is_finished());
            if !writing {
                return Err(db_error(&self.path, "the writer has stopped"));
            }
            if !self.healthy.load(Ordering::Relaxed) {
                return Err(db_error(&self.path, "the last commit failed"));
            }
            Ok(())
        })
    }

    fn shared_secret(&self, name: &str, fresh: [u8; 32]) -> StoreFuture<'_, [u8; 32]> {
        let name = name.to_owned();
        Box::pin(async move {
            let r = self.memory.shared_secret(&name, fresh).await;
            self.then_persist(r, Kind::Secret, name.as_bytes(), Wait::Durable, always)
                .await
        })
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_file_store_conforms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Clock::system();
        let store =
            Arc::new(FileStore::open(&dir.path().join("s.redb"), clock.clone()).expect("open"));
        conformance::run(store, &clock).await;
    }

    fn grant(family: &str) -> RefreshGrant {
        RefreshGrant {
            family: family.into(),
            client_id: "c".into(),
            source: crate::model::IdentitySource::Local,
            subject: "s".into(),
            scopes: vec!["openid".into()],
            auth_time: 1,
            issued_at: 2,
            expires_at: 3,
            credential: None,
            federated: None,
            resources: Default::default(),
            origin: Default::default(),
            dpop_jkt: None,
        }
    }

    /// What was answered is in the file: reopened, the store has the used token still
    /// used, the fresh one fresh, the revocation, the not-before, the denial and the
    /// secret; what expired in between is gone; a deleted session stays deleted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_was_answered_survives_a_reopen_and_expiry_still_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        let clock = Clock::system();
        let hour = Duration::from_secs(3600);
        {
            let store = FileStore::open(&path, clock.clone()).expect("open");
            store
                .put_refresh([1; 32], grant("f1"), hour)
                .await
                .expect("put");
            store
                .put_refresh([2; 32], grant("f2"), hour)
                .await
                .expect("put");
            store
                .put_refresh([3; 32], grant("f3"), Duration::from_secs(1))
                .await
                .expect("put");
            assert!(matches!(
                store.use_refresh([1; 32]).await,
                Ok(Redeemed::Fresh(_))
            ));
            store.revoke_family("f9", hour).await.expect("revoke");
            store.set_not_before("client", 42, hour).await.expect("nb");
            store.deny_jti("jti", hour).await.expect("deny");
            let secret = store.shared_secret("csrf", [7; 32]).await.expect("secret");
            assert_eq!(secret, [7; 32]);
            store
                .put_pending([4; 32], "p".into(), hour)
                .await
                .expect("pending");
            assert!(store.delete_pending([4; 32]).await.expect("take"));
            // Queued without waiting: on disk by the time the store is dropped.
            store.add_failure("n", hour).await.expect("count");
        }
        clock.advance(Duration::from_secs(2));
        let store = FileStore::open(&path, clock.clone()).expect("reopen");
        assert!(matches!(
            store.peek_refresh([1; 32]).await,
            Ok(Redeemed::Replayed(_))
        ));
        assert!(matches!(
            store.use_refresh([2; 32]).await,
            Ok(Redeemed::Fresh(_))
        ));
        assert!(matches!(
            store.peek_refresh([3; 32]).await,
            Ok(Redeemed::Unknown)
        ));
        assert!(store.family_revoked("f9").await.expect("revoked"));
        assert_eq!(store.not_before("client").await.expect("nb"), Some(42));
        assert!(store.jti_denied("jti").await.expect("denied"));
        assert_eq!(
            store.shared_secret("csrf", [8; 32]).await.expect("secret"),
            [7; 32]
        );
        assert!(!store.delete_pending([4; 32]).await.expect("taken before"));
        assert_eq!(store.failures("n").await.expect("count").0, 1);
        store.ping().await.expect("healthy");
    }

    #[tokio::test]
    async fn a_second_opener_of_the_file_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        let _first = FileStore::open(&path, Clock::system()).expect("open");
        let Err(second) = FileStore::open(&path, Clock::system()) else {
            panic!("a second store on the same file opened");
        };
        assert!(second.to_string().contains(IN_USE), "{second}");
        assert!(second.to_string().contains("Redis"), "{second}");
    }
}
