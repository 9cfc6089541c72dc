//! Durable storage: the write-ahead log ([`wal`]) and the state backend, the only module that
//! names sled.
//!
//! - The raft log lives in the WAL, made durable before anything is acknowledged.
//! - The state (MVCC revisions, meta, leases, members, alarms, auth) lives in sled's `state`
//!   tree. Apply writes it in one [`StateBatch`] ending with a commit record (the applied
//!   index), all or nothing across a crash, without an fsync: sled is flushed in the
//!   background ([`Engine::flush`]), and on restart the WAL is replayed from the applied index
//!   sled recovered. So a crash neither loses nor repeats an applied entry. sled recovers a
//!   prefix of its writes, so a batch that only adds new records ([`StateBatch::append`], the
//!   common case: new revisions) needs nothing more — whoever reads the state ignores added
//!   records its commit record does not cover — and any other batch goes through the
//!   [`journal`].
//! - The member's own records (its identity), which a snapshot never replaces, live in a
//!   tree of their own (named `raft` for data dirs of older kvd versions, which also kept the
//!   raft log there; that log is read once to move it into the WAL).

mod journal;
pub mod space;
pub mod wal;

pub use space::SpaceGuard;

use std::path::Path;

use thiserror::Error;

use journal::{Write, JOURNAL_KEY};

/// State batches larger than this are written with sled's atomic batch instead of the journal
/// (rare: snapshot installs), to keep the journal record small.
const JOURNAL_MAX_BYTES: usize = 1 << 20;

/// Where the WAL of the member whose state database is in `db_dir` lives.
pub fn wal_dir(db_dir: &Path) -> std::path::PathBuf {
    db_dir.join("wal")
}

/// A failure of the storage engine. Always fatal for the member: raft cannot skip a write.
#[derive(Debug, Error)]
pub enum StorageError {
    /// sled reported an I/O or corruption error.
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    /// A stored record could not be decoded.
    #[error("storage: corrupt record {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why it could not be decoded.
        detail: String,
    },
}

/// Result alias for storage operations.
pub type Result<T> = std::result::Result<T, StorageError>;

/// The sled database of one member.
#[derive(Clone)]
pub struct Engine {
    db: sled::Db,
    raft: sled::Tree,
    state: sled::Tree,
    /// sled's log file, opened again to fsync it (see [`Engine::flush`]); none in memory.
    log_file: Option<std::sync::Arc<std::fs::File>>,
    /// Free space of the data dir's file system; none in memory.
    space: Option<std::sync::Arc<SpaceGuard>>,
}

/// A set of writes to the state tree applied atomically.
#[derive(Default)]
pub struct StateBatch {
    writes: Vec<Write>,
    bytes: usize,
    /// Some write overwrites or removes a record: the batch needs the journal.
    rewrites: bool,
    /// Written last, after every other write of the batch.
    commit: Option<Write>,
}

impl StateBatch {
    /// Queues an insert.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.bytes += key.len() + value.len();
        self.writes.push((key.to_vec(), Some(value.to_vec())));
        self.rewrites = true;
    }

    /// Queues the insert of a record that did not exist and that nothing reads unless the
    /// batch's commit record covers it (a new revision): a crash that keeps it but loses the
    /// commit record leaves only an orphan the reader skips.
    pub fn append(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.writes.push((key, Some(value)));
    }

    /// Sets the record written after all others (the applied index): a crash either keeps the
    /// whole batch with it or loses it.
    pub fn commit(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.bytes += key.len() + value.len();
        self.commit = Some((key.to_vec(), Some(value.to_vec())));
    }

    /// Queues a removal.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.bytes += key.as_ref().len();
        self.writes.push((key.as_ref().to_vec(), None));
        self.rewrites = true;
    }

    /// Every write in order, the commit record last.
    fn into_writes(self) -> Vec<Write> {
        let mut writes = self.writes;
        writes.extend(self.commit);
        writes
    }

    /// Number of queued writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.commit.is_none()
    }
}

impl Engine {
    /// Opens (or creates) the database under `dir`.
    ///
    /// # Errors
    /// Fails when sled cannot open or recover the files.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let log_file = std::fs::File::open(dir.join("db")).map_err(|e| StorageError::Corrupt {
            what: format!("sled log file {}", dir.join("db").display()),
            detail: e.to_string(),
        })?;
        Self::from_db(
            db,
            Some(std::sync::Arc::new(log_file)),
            Some(std::sync::Arc::new(SpaceGuard::new(dir, &dir.join("db")))),
        )
    }

    /// Opens a throw-away database that lives in memory (tests).
    ///
    /// # Errors
    /// Fails when sled cannot create it.
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()?;
        Self::from_db(db, None, None)
    }

    fn from_db(
        db: sled::Db,
        log_file: Option<std::sync::Arc<std::fs::File>>,
        space: Option<std::sync::Arc<SpaceGuard>>,
    ) -> Result<Self> {
        let raft = db.open_tree("raft")?;
        let state = db.open_tree("state")?;
        let engine = Self {
            db,
            raft,
            state,
            log_file,
            space,
        };
        engine.finish_journaled_batch()?;
        Ok(engine)
    }

    /// Completes the state batch a crash may have left half written (see [`journal`]).
    fn finish_journaled_batch(&self) -> Result<()> {
        let Some(record) = self.state.get(JOURNAL_KEY)? else {
            return Ok(());
        };
        let writes = journal::decode(&record).ok_or_else(|| StorageError::Corrupt {
            what: "apply journal".into(),
            detail: format!("{} bytes that do not decode", record.len()),
        })?;
        Self::write_each(&self.state, writes)?;
        self.state.remove(JOURNAL_KEY)?;
        self.db.flush()?;
        Ok(())
    }

    /// The free-space guard of the data dir (none for a database in memory).
    pub fn space(&self) -> Option<std::sync::Arc<SpaceGuard>> {
        self.space.clone()
    }

    /// Removes state records (orphans a crash left behind, found by the reader), durably.
    ///
    /// # Errors
    /// Storage failure.
    pub fn remove_state_records(&self, keys: &[Vec<u8>]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        for k in keys {
            self.state.remove(k)?;
        }
        self.flush()
    }

    fn write_each(tree: &sled::Tree, writes: Vec<Write>) -> Result<()> {
        for (k, v) in writes {
            match v {
                Some(v) => tree.insert(k, v)?,
                None => tree.remove(k)?,
            };
        }
        Ok(())
    }

    /// Reads one state record.
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.state.get(key)?.map(|v| v.to_vec()))
    }

    /// All state records whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.state.scan_prefix(prefix) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// State records with keys in `[start, end)`, in key order, at most `limit` (0 = all).
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_scan_range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.state.range(start..end) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Calls `f` with every state record with key in `[start, end)` (`end` empty: no end), in
    /// key order, without copying them, until it returns false.
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_for_each(
        &self,
        start: &[u8],
        end: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let iter = if end.is_empty() {
            self.state.range(start..)
        } else {
            self.state.range(start..end)
        };
        for item in iter {
            let (k, v) = item?;
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    /// Applies a batch of state writes atomically (not yet durable: see [`Engine::flush`]):
    /// the whole batch is recorded in the journal first, then written key by key.
    ///
    /// # Errors
    /// Storage failure.
    pub fn apply_state(&self, batch: StateBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if !batch.rewrites {
            // New records, then the commit record: any prefix a crash leaves is consistent.
            return Self::write_each(&self.state, batch.into_writes());
        }
        if batch.bytes > JOURNAL_MAX_BYTES {
            let mut atomic = sled::Batch::default();
            for (k, v) in batch.into_writes() {
                match v {
                    Some(v) => atomic.insert(k, v),
                    None => atomic.remove(k),
                }
            }
            self.state.apply_batch(atomic)?;
            return Ok(());
        }
        let writes = batch.into_writes();
        self.state.insert(JOURNAL_KEY, journal::encode(&writes))?;
        Self::write_each(&self.state, writes)?;
        // Done: the journal must never be replayed over a later batch.
        self.state.remove(JOURNAL_KEY)?;
        Ok(())
    }

    /// Reads one member record (or one of an older kvd's raft log).
    ///
    /// # Errors
    /// Storage failure.
    pub fn raft_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.raft.get(key)?.map(|v| v.to_vec()))
    }

    /// All member records (or an older kvd's raft log records) whose key starts with
    /// `prefix`, in key order.
    ///
    /// # Errors
    /// Storage failure.
    pub fn raft_scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.raft.scan_prefix(prefix) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Removes an older kvd's raft log (records under these `keys` or key prefixes) once it
    /// moved to the WAL; the member records stay.
    ///
    /// # Errors
    /// Storage failure.
    pub fn clear_legacy_log(&self, keys: &[&[u8]], prefixes: &[&[u8]]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(*k);
        }
        for p in prefixes {
            for item in self.raft.scan_prefix(p) {
                batch.remove(item?.0);
            }
        }
        self.raft.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Stores member records durably, all or nothing.
    ///
    /// # Errors
    /// Storage failure.
    pub fn put_member_records(&self, records: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in records {
            batch.insert(*k, *v);
        }
        self.raft.apply_batch(batch)?;
        self.flush()
    }

    /// Makes every write so far durable (fsync).
    ///
    /// # Errors
    /// Storage failure (for example a full disk).
    pub fn flush(&self) -> Result<()> {
        // etcd's backend commit: the state made durable (the WAL's fsync is timed there).
        let _commit = crate::metrics::disk::backend_commit_timer();
        self.db.flush()?;
        // sled writes its log with sync_file_range, which neither flushes the disk's write
        // cache nor records a grown file size: fdatasync makes the flushed writes survive a
        // power loss too, as etcd's WAL fsync does.
        if let Some(f) = &self.log_file {
            f.sync_data()
                .map_err(|e| StorageError::Sled(sled::Error::Io(e)))?;
        }
        Ok(())
    }

    /// Replaces the whole state with `batch`'s records, all or nothing across a crash, and
    /// makes it durable (installing a snapshot).
    ///
    /// # Errors
    /// Storage failure.
    pub fn replace_state(&self, batch: StateBatch) -> Result<()> {
        let mut atomic = sled::Batch::default();
        for item in self.state.iter().keys() {
            atomic.remove(item?);
        }
        for (k, v) in batch.into_writes() {
            match v {
                Some(v) => atomic.insert(k, v),
                None => atomic.remove(k),
            }
        }
        self.state.apply_batch(atomic)?;
        self.flush()
    }

    /// A checksum of the whole state tree (for `Hash`).
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_checksum(&self) -> Result<u32> {
        let mut hasher = crc32fast::Hasher::new();
        for item in self.state.iter() {
            let (k, v) = item?;
            if k == JOURNAL_KEY {
                continue;
            }
            hasher.update(&k);
            hasher.update(&v);
        }
        Ok(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_cut_short_by_a_crash_is_completed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path()).unwrap();
            let mut first = StateBatch::default();
            first.put(b"a", b"old");
            first.put(b"gone", b"x");
            engine.apply_state(first).unwrap();
            // what a crash leaves after the journal record and one of three writes
            let writes: Vec<Write> = vec![
                (b"a".to_vec(), Some(b"new".to_vec())),
                (b"gone".to_vec(), None),
                (b"b".to_vec(), Some(b"2".to_vec())),
            ];
            engine
                .state
                .insert(JOURNAL_KEY, journal::encode(&writes))
                .unwrap();
            engine.state.insert(b"a", b"new".as_slice()).unwrap();
            engine.flush().unwrap();
        }
        let engine = Engine::open(dir.path()).unwrap();
        assert_eq!(engine.state_get(b"a").unwrap(), Some(b"new".to_vec()));
        assert_eq!(engine.state_get(b"gone").unwrap(), None);
        assert_eq!(engine.state_get(b"b").unwrap(), Some(b"2".to_vec()));
        let without_journal = engine.state_checksum().unwrap();
        engine.state.remove(JOURNAL_KEY).unwrap();
        assert_eq!(
            engine.state_checksum().unwrap(),
            without_journal,
            "the journal is not part of the state"
        );
    }

    #[test]
    fn new_records_skip_the_journal_and_a_journal_never_outlives_its_batch() {
        let engine = Engine::temporary().unwrap();
        let mut b = StateBatch::default();
        b.append(b"r1".to_vec(), b"1".to_vec());
        b.commit(b"c", b"1");
        engine.apply_state(b).unwrap();
        assert_eq!(engine.state_get(b"r1").unwrap(), Some(b"1".to_vec()));
        assert_eq!(engine.state.get(JOURNAL_KEY).unwrap(), None);
        let mut b = StateBatch::default();
        b.put(b"x", b"1");
        b.delete(b"r1");
        b.commit(b"c", b"2");
        engine.apply_state(b).unwrap();
        assert_eq!(
            engine.state.get(JOURNAL_KEY).unwrap(),
            None,
            "removed once its batch is written, so it cannot replay over a later one"
        );
        assert_eq!(engine.state_get(b"c").unwrap(), Some(b"2".to_vec()));
        assert_eq!(engine.state_get(b"r1").unwrap(), None);
    }

    #[test]
    fn large_batches_are_applied_whole() {
        let engine = Engine::temporary().unwrap();
        let mut big = StateBatch::default();
        for i in 0..200u32 {
            big.put(i.to_be_bytes(), vec![7u8; 8 * 1024]);
        }
        engine.apply_state(big).unwrap();
        assert_eq!(
            engine
                .state_get(&199u32.to_be_bytes())
                .unwrap()
                .unwrap()
                .len(),
            8192
        );
        assert_eq!(engine.state.get(JOURNAL_KEY).unwrap(), None);
    }
}
