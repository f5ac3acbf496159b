//! The file store's writer: the redb tables (`entries`, `expiry`), how a record is
//! framed in them, reading them back at start, and the thread that commits each batch
//! of changes and sweeps what expired.

use crate::clock::Clock;
use crate::store::StoreError;
use crate::store::memory::{Kind, MemoryStore, Millis, NEVER, Record};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The store's error for a failure of the file at `path`.
pub(super) fn db_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("file store {}: {e}", path.display()))
}

/// `entries`: tag byte ++ id → expiry (8 bytes, big-endian) ++ used byte ++ value.
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// `expiry`: expiry (8 bytes, big-endian) ++ tag byte ++ id → nothing; sorted by time.
const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("expiry");

/// How often the writer deletes expired entries from the file.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Most changes in one transaction (the rest go in the next one).
const MAX_BATCH: usize = 4096;

/// Most expired entries deleted per sweep transaction.
const MAX_SWEPT: usize = 10_000;

/// One changed entry for the writer, and who waits for it to be on disk.
pub(super) struct Change {
    pub(super) kind: Kind,
    pub(super) id: Vec<u8>,
    pub(super) done: Option<oneshot::Sender<Result<(), StoreError>>>,
}

/// The file's value of `record`.
fn framed(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + record.payload.len());
    out.extend_from_slice(&record.expires.to_be_bytes());
    out.push(u8::from(record.used));
    out.extend_from_slice(&record.payload);
    out
}

/// The record a file value holds.
fn unframed(raw: &[u8]) -> Option<Record> {
    Some(Record {
        expires: expiry_of(raw)?,
        used: *raw.get(8)? == 1,
        payload: raw.get(9..)?.to_vec(),
    })
}

/// The expiry a file value holds (its first 8 bytes).
fn expiry_of(raw: &[u8]) -> Option<Millis> {
    Some(Millis::from_be_bytes(raw.get(..8)?.try_into().ok()?))
}

fn entry_key(kind: Kind, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(kind as u8);
    k.extend_from_slice(id);
    k
}

fn expiry_key(expires: Millis, entry: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + entry.len());
    k.extend_from_slice(&expires.to_be_bytes());
    k.extend_from_slice(entry);
    k
}

/// Creates both tables if the file is new.
pub(super) fn prepare(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(|e| db_error(path, e))?;
    txn.open_table(ENTRIES).map_err(|e| db_error(path, e))?;
    txn.open_table(EXPIRY).map_err(|e| db_error(path, e))?;
    txn.commit().map_err(|e| db_error(path, e))
}

/// Reads every entry live at `now` into `memory`; how many.
pub(super) fn load(db: &Database, memory: &MemoryStore, now: Millis) -> Result<usize, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = txn.open_table(ENTRIES).map_err(|e| e.to_string())?;
    let mut loaded = 0;
    for item in table.iter().map_err(|e| e.to_string())? {
        let (key, value) = item.map_err(|e| e.to_string())?;
        let (key, value) = (key.value(), value.value());
        let kind = key.first().and_then(|t| Kind::from_tag(*t));
        let (Some(kind), Some(record)) = (kind, unframed(value)) else {
            return Err("an entry of the file does not decode".into());
        };
        if record.expires > now {
            memory
                .import(kind, &key[1..], &record)
                .map_err(|e| e.to_string())?;
            loaded += 1;
        }
    }
    Ok(loaded)
}

/// The thread that writes changes to the file.
pub(super) struct Writer {
    pub(super) db: Database,
    pub(super) memory: Arc<MemoryStore>,
    pub(super) clock: Clock,
    pub(super) healthy: Arc<AtomicBool>,
    pub(super) path: PathBuf,
}

impl Writer {
    /// Commits queued changes in batches until the store is dropped, sweeping the file
    /// every [`SWEEP_EVERY`].
    pub(super) fn run(self, rx: &Receiver<Change>) {
        let mut swept = Instant::now();
        loop {
            let first = match rx.recv_timeout(SWEEP_EVERY) {
                Ok(change) => Some(change),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch: Vec<Change> = first.into_iter().collect();
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(change) => batch.push(change),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            if swept.elapsed() >= SWEEP_EVERY {
                swept = Instant::now();
                if let Err(e) = self.sweep() {
                    tracing::warn!(error = %e, path = %self.path.display(), "file store: sweeping expired entries failed");
                }
            }
        }
    }

    /// Writes each changed entry's current state in one transaction, durable when
    /// anyone waits for it, and tells the waiters.
    fn commit(&self, batch: Vec<Change>) {
        let durable = batch.iter().any(|c| c.done.is_some());
        let result = self.write(&batch, durable);
        if let Err(e) = &result {
            tracing::error!(error = %e, path = %self.path.display(), "file store: a commit failed");
            metrics::counter!("gatehouse_file_store_commit_errors_total").increment(1);
        }
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        for change in batch {
            if let Some(done) = change.done {
                let _ = done.send(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| StoreError(e.clone())),
                );
            }
        }
    }

    fn write(&self, batch: &[Change], durable: bool) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| format!("file store {}: {e}", self.path.display());
        let mut txn = self.db.begin_write().map_err(|x| e(&x))?;
        let level = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(level).map_err(|x| e(&x))?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(|x| e(&x))?;
            let mut expiry = txn.open_table(EXPIRY).map_err(|x| e(&x))?;
            let mut seen = std::collections::HashSet::new();
            for change in batch {
                let key = entry_key(change.kind, &change.id);
                if !seen.insert(key.clone()) {
                    continue;
                }
                let now = self
                    .memory
                    .export(change.kind, &change.id)
                    .map_err(|x| e(&x))?;
                // The old value comes back from `insert`/`remove`: no lookup first, and
                // the `expiry` row is touched only when the expiry changed (a code
                // redeemed or a token rotated keeps its expiry).
                let (old, new) = match now {
                    Some(record) => {
                        let old = entries
                            .insert(key.as_slice(), framed(&record).as_slice())
                            .map_err(|x| e(&x))?
                            .map(|v| expiry_of(v.value()));
                        (old, Some(record.expires))
                    }
                    None => {
                        let old = entries
                            .remove(key.as_slice())
                            .map_err(|x| e(&x))?
                            .map(|v| expiry_of(v.value()));
                        (old, None)
                    }
                };
                let old = old.flatten().filter(|t| *t != NEVER);
                let new = new.filter(|t| *t != NEVER);
                if old == new {
                    continue;
                }
                if let Some(old) = old {
                    expiry
                        .remove(expiry_key(old, &key).as_slice())
                        .map_err(|x| e(&x))?;
                }
                if let Some(new) = new {
                    expiry
                        .insert(expiry_key(new, &key).as_slice(), ())
                        .map_err(|x| e(&x))?;
                }
            }
        }
        txn.commit().map_err(|x| e(&x))
    }

    /// Deletes from the file what expired on the clock (at most [`MAX_SWEPT`] at once).
    fn sweep(&self) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let now = self.clock.now_ms();
        let mut txn = self.db.begin_write().map_err(|x| e(&x))?;
        txn.set_durability(Durability::None).map_err(|x| e(&x))?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(|x| e(&x))?;
            let mut expiry = txn.open_table(EXPIRY).map_err(|x| e(&x))?;
            let upper = now.saturating_add(1).to_be_bytes();
            let expired: Vec<Vec<u8>> = expiry
                .range::<&[u8]>(..&upper[..])
                .map_err(|x| e(&x))?
                .take(MAX_SWEPT)
                .map(|item| item.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|x| e(&x))?;
            for key in expired {
                expiry.remove(key.as_slice()).map_err(|x| e(&x))?;
                entries.remove(&key[8..]).map_err(|x| e(&x))?;
            }
        }
        txn.commit().map_err(|x| e(&x))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::file::writer::*;

    /// A writer on a new file in `dir`, its entries expiring on `clock`.
    fn writer_in(dir: &tempfile::TempDir, clock: &Clock) -> Writer {
        let path = dir.path().join("state.redb");
        let writer = Writer {
            db: Database::create(&path).expect("db"),
            memory: Arc::new(MemoryStore::new(clock.clone())),
            clock: clock.clone(),
            healthy: Arc::new(AtomicBool::new(true)),
            path: path.clone(),
        };
        prepare(&writer.db, &path).expect("tables");
        writer
    }

    /// The sweep deletes from the file what expired, and only that.
    #[tokio::test]
    async fn the_sweep_deletes_expired_entries_from_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Clock::system();
        let writer = writer_in(&dir, &clock);
        let memory = writer.memory.clone();
        memory
            .deny_jti("short", Duration::from_secs(1))
            .await
            .expect("deny");
        memory
            .deny_jti("long", Duration::from_secs(3600))
            .await
            .expect("deny");
        let change = |jti: &str| Change {
            kind: Kind::Jti,
            id: jti.as_bytes().to_vec(),
            done: None,
        };
        writer.commit(vec![change("short"), change("long")]);
        clock.advance(Duration::from_secs(2));
        writer.sweep().expect("sweep");
        let txn = writer.db.begin_read().expect("read");
        let entries = txn.open_table(ENTRIES).expect("entries");
        let left: Vec<Vec<u8>> = entries
            .iter()
            .expect("iter")
            .map(|i| i.expect("item").0.value().to_vec())
            .collect();
        assert_eq!(left, vec![entry_key(Kind::Jti, b"long")]);
        let expiry = txn.open_table(EXPIRY).expect("expiry");
        assert_eq!(redb::ReadableTableMetadata::len(&expiry).expect("len"), 1);
    }

    /// `expiry` holds one row per entry at its current expiry: a changed expiry moves
    /// the row, an unchanged one leaves it, a deleted entry takes its row along.
    #[tokio::test]
    async fn the_expiry_rows_follow_each_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Clock::system();
        let writer = writer_in(&dir, &clock);
        let rows = || -> Vec<Vec<u8>> {
            let txn = writer.db.begin_read().expect("read");
            let expiry = txn.open_table(EXPIRY).expect("expiry");
            expiry
                .iter()
                .expect("iter")
                .map(|i| i.expect("item").0.value().to_vec())
                .collect()
        };
        let change = || Change {
            kind: Kind::Jti,
            id: b"a".to_vec(),
            done: None,
        };
        let key = entry_key(Kind::Jti, b"a");
        let at = |expires: Millis| Record {
            expires,
            used: false,
            payload: Vec::new(),
        };
        let now = clock.now_ms();
        writer
            .memory
            .import(Kind::Jti, b"a", &at(now + 1_000))
            .expect("import");
        writer.commit(vec![change()]);
        assert_eq!(rows(), vec![expiry_key(now + 1_000, &key)]);
        writer
            .memory
            .import(Kind::Jti, b"a", &at(now + 5_000))
            .expect("import");
        writer.commit(vec![change()]);
        assert_eq!(rows(), vec![expiry_key(now + 5_000, &key)]);
        writer.commit(vec![change(), change()]);
        assert_eq!(rows(), vec![expiry_key(now + 5_000, &key)]);
        clock.advance(Duration::from_secs(6));
        writer.memory.sweep();
        writer.commit(vec![change()]);
        assert!(rows().is_empty());
        let txn = writer.db.begin_read().expect("read");
        let entries = txn.open_table(ENTRIES).expect("entries");
        assert_eq!(redb::ReadableTableMetadata::len(&entries).expect("len"), 0);
    }
}
