//! Durable storage: the write-ahead log ([`wal`]) and the state [`Engine`].
//!
//! - The raft log lives in the WAL, made durable before anything is acknowledged.
//! - The state (MVCC revisions, meta, leases, members, alarms, auth) lives in the backend's
//!   state key space. Apply writes it in one [`StateBatch`] ending with a commit record (the
//!   applied index), all or nothing across a crash, without an fsync: the backend is flushed in
//!   the background ([`Engine::flush`]), and on restart the WAL is replayed from the applied
//!   index the backend recovered. So a crash neither loses nor repeats an applied entry. The
//!   backend recovers a prefix of its writes, so a batch that only adds new records
//!   ([`StateBatch::append`], the common case: new revisions) needs nothing more — whoever
//!   reads the state ignores added records its commit record does not cover — and any other
//!   batch goes through the [`journal`].
//! - The member's own records (its identity), which a snapshot never replaces, live in a key
//!   space of their own (which data dirs of older kvd versions also used for the raft log;
//!   that log is read once to move it into the WAL).
//!
//! The engine runs on a [`KvBackend`]: [`sled_backend`] on disk (the only file that names
//! sled, so changing the backend is one file) and [`mem_backend`] for unit tests.

pub mod backend;
mod journal;
pub mod mem_backend;
pub mod sled_backend;
pub mod space;
pub mod wal;

pub use backend::{Keyspace, KvBackend};
pub use space::SpaceGuard;

use std::path::Path;
use std::sync::Arc;

use parking_lot::lock_api::ArcRwLockReadGuard;
use parking_lot::{RawRwLock, RwLock};
use thiserror::Error;

use backend::{prefix_end, Write};
use journal::JOURNAL_KEY;
use mem_backend::MemBackend;
use sled_backend::SledBackend;

/// State batches larger than this are written with the backend's atomic batch instead of the
/// journal (rare: snapshot installs), to keep the journal record small.
const JOURNAL_MAX_BYTES: usize = 1 << 20;

/// The default size of the backend's page cache, in bytes.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Where the WAL of the member whose state database is in `db_dir` lives.
pub fn wal_dir(db_dir: &Path) -> std::path::PathBuf {
    db_dir.join("wal")
}

/// A failure of the storage engine. Always fatal for the member: raft cannot skip a write.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The backend reported an I/O or corruption error.
    #[error("storage: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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

/// How to open an [`Engine`] on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Size of the backend's page cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// The state database of one member, over a `KvBackend`.
#[derive(Clone)]
pub struct Engine {
    backend: Arc<dyn KvBackend>,
    /// The directory of an engine on disk.
    dir: Option<Arc<Path>>,
    /// Shared by reads that must find the records they were sent to read (see
    /// [`Engine::keep_records`]); taken alone by whatever removes or replaces records.
    removals: Arc<RwLock<()>>,
}

/// While it lives, compaction removes no record and nothing replaces the state (see
/// [`Engine::keep_records`]).
pub struct RecordsKept {
    _guard: ArcRwLockReadGuard<RawRwLock, ()>,
}

/// A set of writes to the state tree applied atomically.
#[derive(Default)]
pub struct StateBatch {
    writes: Vec<Write>,
    bytes: usize,
    /// Some write overwrites or removes a record: the batch needs the journal.
    rewrites: bool,
    /// Some write removes a record reads may keep (see [`StateBatch::remove_kept`]).
    removes: bool,
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

    /// Queues the removal of a record that a read holding [`Engine::keep_records`] may still
    /// be about to read (history that compaction drops): the batch waits for such reads.
    pub fn remove_kept(&mut self, key: impl AsRef<[u8]>) {
        self.delete(key);
        self.removes = true;
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
    /// Opens (or creates) the database under `dir` with the default options.
    ///
    /// # Errors
    /// Fails when the backend cannot open or recover the files.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, EngineOptions::default())
    }

    /// Opens (or creates) the database under `dir`.
    ///
    /// # Errors
    /// Fails when the backend cannot open or recover the files.
    pub fn open_with(dir: &Path, options: EngineOptions) -> Result<Self> {
        let mut engine =
            Self::with_backend(Arc::new(SledBackend::open(dir, options.cache_bytes)?))?;
        engine.dir = Some(dir.into());
        Ok(engine)
    }

    /// The directory the engine lives in (`None` for one in memory or a temporary one): files
    /// kept beside the database, such as the key index image, go there.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A throw-away database in memory (unit tests).
    ///
    /// # Errors
    /// Never for the memory backend; the result matches the other constructors.
    pub fn temporary() -> Result<Self> {
        Self::with_backend(Arc::new(MemBackend::new()))
    }

    /// A throw-away database on the disk backend, in a temporary directory removed when the
    /// engine is dropped (tests and benchmarks that need the real backend).
    ///
    /// # Errors
    /// Fails when the backend cannot create it.
    pub fn temporary_on_disk() -> Result<Self> {
        Self::with_backend(Arc::new(SledBackend::temporary()?))
    }

    /// An engine over `backend`, completing the state batch a crash may have left half written.
    ///
    /// # Errors
    /// Backend failure, or a journal record that does not decode.
    pub fn with_backend(backend: Arc<dyn KvBackend>) -> Result<Self> {
        let engine = Self {
            backend,
            dir: None,
            removals: Arc::default(),
        };
        engine.finish_journaled_batch()?;
        Ok(engine)
    }

    /// Holds off the removal of records while the guard lives (compaction's, queued with
    /// [`StateBatch::remove_kept`]; orphans; a snapshot replacing the state), so that a read
    /// which has left the MVCC lock (a range over a million keys, reading for a second or more
    /// while writes go on) still finds every revision record it set out to read. Other writes
    /// do not wait for it.
    pub fn keep_records(&self) -> RecordsKept {
        RecordsKept {
            _guard: self.removals.read_arc(),
        }
    }

    /// Completes the state batch a crash may have left half written (see [`journal`]).
    fn finish_journaled_batch(&self) -> Result<()> {
        let Some(record) = self.backend.get(Keyspace::State, JOURNAL_KEY)? else {
            return Ok(());
        };
        let mut writes = journal::decode(&record).ok_or_else(|| StorageError::Corrupt {
            what: "apply journal".into(),
            detail: format!("{} bytes that do not decode", record.len()),
        })?;
        writes.push((JOURNAL_KEY.to_vec(), None));
        self.backend.write_in_order(Keyspace::State, writes)?;
        self.backend.flush()
    }

    /// The free-space guard of the data dir (none for a database in memory).
    pub fn space(&self) -> Option<Arc<SpaceGuard>> {
        self.backend.space()
    }

    /// Bytes the database takes on disk.
    ///
    /// # Errors
    /// Storage failure.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.backend.size_on_disk()
    }

    /// Removes state records (orphans a crash left behind, found by the reader), durably.
    ///
    /// # Errors
    /// Storage failure.
    pub fn remove_state_records(&self, keys: &[Vec<u8>]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let writes = keys.iter().map(|k| (k.clone(), None)).collect();
        let _removing = self.removals.write();
        self.backend.write_in_order(Keyspace::State, writes)?;
        self.flush()
    }

    /// Reads one state record.
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.backend.get(Keyspace::State, key)
    }

    /// Records of `space` with key in `[start, end)` (`end` `None`: no end), in key order, at
    /// most `limit` (0 = all).
    fn collect(
        &self,
        space: Keyspace,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.backend.for_each(space, start, end, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            limit == 0 || out.len() < limit
        })?;
        Ok(out)
    }

    /// All state records whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix);
        self.collect(Keyspace::State, prefix, end.as_deref(), 0)
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
        self.collect(Keyspace::State, start, Some(end), limit)
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
        let end = (!end.is_empty()).then_some(end);
        self.backend.for_each(Keyspace::State, start, end, &mut f)
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
        let _removing = batch.removes.then(|| self.removals.write());
        if !batch.rewrites {
            // New records, then the commit record: any prefix a crash leaves is consistent.
            return self
                .backend
                .write_in_order(Keyspace::State, batch.into_writes());
        }
        if batch.bytes > JOURNAL_MAX_BYTES {
            return self
                .backend
                .write_atomic(Keyspace::State, batch.into_writes());
        }
        let mut writes = batch.into_writes();
        let record = journal::encode(&writes);
        writes.insert(0, (JOURNAL_KEY.to_vec(), Some(record)));
        // Done: the journal must never be replayed over a later batch.
        writes.push((JOURNAL_KEY.to_vec(), None));
        self.backend.write_in_order(Keyspace::State, writes)
    }

    /// Reads one member record (or one of an older kvd's raft log).
    ///
    /// # Errors
    /// Storage failure.
    pub fn raft_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.backend.get(Keyspace::Member, key)
    }

    /// All member records (or an older kvd's raft log records) whose key starts with
    /// `prefix`, in key order.
    ///
    /// # Errors
    /// Storage failure.
    pub fn raft_scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix);
        self.collect(Keyspace::Member, prefix, end.as_deref(), 0)
    }

    /// Removes an older kvd's raft log (records under these `keys` or key prefixes) once it
    /// moved to the WAL; the member records stay.
    ///
    /// # Errors
    /// Storage failure.
    pub fn clear_legacy_log(&self, keys: &[&[u8]], prefixes: &[&[u8]]) -> Result<()> {
        let mut writes: Vec<Write> = keys.iter().map(|k| (k.to_vec(), None)).collect();
        for p in prefixes {
            let end = prefix_end(p);
            self.backend
                .for_each(Keyspace::Member, p, end.as_deref(), &mut |k, _| {
                    writes.push((k.to_vec(), None));
                    true
                })?;
        }
        self.backend.write_atomic(Keyspace::Member, writes)?;
        self.backend.flush()
    }

    /// Stores member records durably, all or nothing.
    ///
    /// # Errors
    /// Storage failure.
    pub fn put_member_records(&self, records: &[(&[u8], &[u8])]) -> Result<()> {
        let writes = records
            .iter()
            .map(|(k, v)| (k.to_vec(), Some(v.to_vec())))
            .collect();
        self.backend.write_atomic(Keyspace::Member, writes)?;
        self.flush()
    }

    /// Makes every write so far durable (fsync).
    ///
    /// # Errors
    /// Storage failure (for example a full disk).
    pub fn flush(&self) -> Result<()> {
        // etcd's backend commit: the state made durable (the WAL's fsync is timed there).
        let _commit = crate::metrics::disk::backend_commit_timer();
        self.backend.flush()
    }

    /// Replaces the whole state with `batch`'s records, all or nothing across a crash, and
    /// makes it durable (installing a snapshot).
    ///
    /// # Errors
    /// Storage failure.
    pub fn replace_state(&self, batch: StateBatch) -> Result<()> {
        let _removing = self.removals.write();
        let mut writes: Vec<Write> = Vec::new();
        self.backend
            .for_each(Keyspace::State, &[], None, &mut |k, _| {
                writes.push((k.to_vec(), None));
                true
            })?;
        writes.extend(batch.into_writes());
        self.backend.write_atomic(Keyspace::State, writes)?;
        self.flush()
    }

    /// A checksum of the whole state (for `Hash`): the same for the same records on every
    /// backend.
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_checksum(&self) -> Result<u32> {
        let mut hasher = crc32fast::Hasher::new();
        self.backend
            .for_each(Keyspace::State, &[], None, &mut |k, v| {
                if k != JOURNAL_KEY {
                    hasher.update(k);
                    hasher.update(v);
                }
                true
            })?;
        Ok(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backends every conformance test runs on, by name.
    fn backends() -> Vec<(&'static str, Engine, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let on_disk = Engine::open(dir.path()).expect("open sled");
        vec![
            ("mem", Engine::temporary().expect("mem"), None),
            ("sled", on_disk, Some(dir)),
            (
                "sled temporary",
                Engine::temporary_on_disk().expect("sled temporary"),
                None,
            ),
        ]
    }

    /// Runs `body` against every backend, naming the backend in any failure.
    fn conformance(body: impl Fn(&Engine)) {
        for (name, engine, _dir) in backends() {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&engine)));
            if let Err(panic) = outcome {
                eprintln!("failed on the {name} backend");
                std::panic::resume_unwind(panic);
            }
        }
    }

    fn put_all(engine: &Engine, records: &[(&[u8], &[u8])]) {
        let mut b = StateBatch::default();
        for (k, v) in records {
            b.put(k, v);
        }
        engine.apply_state(b).expect("apply");
    }

    fn keys(records: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Vec<u8>> {
        records.into_iter().map(|(k, _)| k).collect()
    }

    fn journal_record(engine: &Engine) -> Option<Vec<u8>> {
        engine
            .backend
            .get(Keyspace::State, JOURNAL_KEY)
            .expect("get")
    }

    /// Leaves what a crash leaves after the journal record and the first write of a batch
    /// that overwrites `a`, removes `gone` and adds `b`.
    fn cut_batch_short(engine: &Engine) {
        let writes: Vec<Write> = vec![
            (b"a".to_vec(), Some(b"new".to_vec())),
            (b"gone".to_vec(), None),
            (b"b".to_vec(), Some(b"2".to_vec())),
        ];
        engine
            .backend
            .write_in_order(
                Keyspace::State,
                vec![
                    (JOURNAL_KEY.to_vec(), Some(journal::encode(&writes))),
                    (b"a".to_vec(), Some(b"new".to_vec())),
                ],
            )
            .expect("write");
        engine.flush().expect("flush");
    }

    fn assert_batch_completed(engine: &Engine) {
        assert_eq!(engine.state_get(b"a").unwrap(), Some(b"new".to_vec()));
        assert_eq!(engine.state_get(b"gone").unwrap(), None);
        assert_eq!(engine.state_get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(journal_record(engine), None);
    }

    #[test]
    fn a_batch_cut_short_by_a_crash_is_completed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path()).unwrap();
            put_all(&engine, &[(b"a", b"old"), (b"gone", b"x")]);
            cut_batch_short(&engine);
        }
        let engine = Engine::open(dir.path()).unwrap();
        assert_batch_completed(&engine);
    }

    #[test]
    fn conformance_a_journaled_batch_is_completed_by_the_next_engine() {
        conformance(|engine| {
            put_all(engine, &[(b"a", b"old"), (b"gone", b"x")]);
            cut_batch_short(engine);
            let with_journal = engine.state_checksum().unwrap();
            let journal = journal_record(engine);
            let set_journal = |record: Option<Vec<u8>>| {
                engine
                    .backend
                    .write_in_order(Keyspace::State, vec![(JOURNAL_KEY.to_vec(), record)])
                    .expect("write");
            };
            set_journal(None);
            assert_eq!(
                engine.state_checksum().unwrap(),
                with_journal,
                "the journal is not part of the state"
            );
            set_journal(journal);
            let reopened = Engine::with_backend(engine.backend.clone()).expect("reopen");
            assert_batch_completed(&reopened);
        });
    }

    #[test]
    fn conformance_new_records_skip_the_journal_and_a_journal_never_outlives_its_batch() {
        conformance(|engine| {
            let mut b = StateBatch::default();
            b.append(b"r1".to_vec(), b"1".to_vec());
            b.commit(b"c", b"1");
            engine.apply_state(b).unwrap();
            assert_eq!(engine.state_get(b"r1").unwrap(), Some(b"1".to_vec()));
            assert_eq!(journal_record(engine), None);
            let mut b = StateBatch::default();
            b.put(b"x", b"1");
            b.delete(b"r1");
            b.commit(b"c", b"2");
            engine.apply_state(b).unwrap();
            assert_eq!(
                journal_record(engine),
                None,
                "removed once its batch is written, so it cannot replay over a later one"
            );
            assert_eq!(engine.state_get(b"c").unwrap(), Some(b"2".to_vec()));
            assert_eq!(engine.state_get(b"x").unwrap(), Some(b"1".to_vec()));
            assert_eq!(engine.state_get(b"r1").unwrap(), None);
        });
    }

    #[test]
    fn conformance_large_batches_are_applied_whole() {
        conformance(|engine| {
            let mut big = StateBatch::default();
            for i in 0..200u32 {
                big.put(i.to_be_bytes(), vec![7u8; 8 * 1024]);
            }
            big.delete(0u32.to_be_bytes());
            big.commit(b"c", b"1");
            engine.apply_state(big).unwrap();
            let all = engine.state_scan_range(&[0], &[1], 0).unwrap();
            assert_eq!(all.len(), 199, "everything but the deleted record");
            assert!(all.iter().all(|(_, v)| v.len() == 8192));
            assert_eq!(engine.state_get(b"c").unwrap(), Some(b"1".to_vec()));
            assert_eq!(journal_record(engine), None);
        });
    }

    #[test]
    fn conformance_an_atomic_batch_ends_with_each_keys_last_write() {
        conformance(|engine| {
            let writes: Vec<Write> = vec![
                (b"k".to_vec(), Some(b"1".to_vec())),
                (b"k".to_vec(), None),
                (b"j".to_vec(), None),
                (b"j".to_vec(), Some(b"2".to_vec())),
            ];
            engine
                .backend
                .write_atomic(Keyspace::State, writes)
                .expect("write");
            assert_eq!(engine.state_get(b"k").unwrap(), None);
            assert_eq!(engine.state_get(b"j").unwrap(), Some(b"2".to_vec()));
        });
    }

    #[test]
    fn conformance_scans_are_ordered_and_bounded() {
        conformance(|engine| {
            // More records than the memory backend copies per chunk, written out of order.
            let mut b = StateBatch::default();
            for i in (0..1000u32).rev() {
                b.put(
                    [b"k".as_slice(), &i.to_be_bytes()].concat(),
                    i.to_be_bytes(),
                );
            }
            b.put(b"j", b"before");
            b.put(b"l", b"after");
            engine.apply_state(b).unwrap();

            let all = engine.state_scan_prefix(b"k").unwrap();
            assert_eq!(all.len(), 1000);
            assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
            assert_eq!(all[999].1, 999u32.to_be_bytes());

            let start = [b"k".as_slice(), &10u32.to_be_bytes()].concat();
            let end = [b"k".as_slice(), &20u32.to_be_bytes()].concat();
            let range = engine.state_scan_range(&start, &end, 0).unwrap();
            assert_eq!(range.len(), 10, "start included, end excluded");
            assert_eq!(range[0].0, start);
            assert_eq!(engine.state_scan_range(&start, &end, 3).unwrap().len(), 3);
            assert!(engine.state_scan_range(&end, &end, 0).unwrap().is_empty());
            assert!(engine.state_scan_range(&end, &start, 0).unwrap().is_empty());

            let mut seen = Vec::new();
            engine
                .state_for_each(&end, &[], |k, _| {
                    seen.push(k.to_vec());
                    true
                })
                .unwrap();
            assert_eq!(seen.len(), 980 + 1, "no end: through `l`");
            assert_eq!(seen.last().map(Vec::as_slice), Some(b"l".as_slice()));

            let mut visited = 0;
            engine
                .state_for_each(b"k", b"l", |_, _| {
                    visited += 1;
                    visited < 300
                })
                .unwrap();
            assert_eq!(visited, 300, "stops when told");
        });
    }

    #[test]
    fn conformance_prefix_scans_stop_at_the_prefix() {
        conformance(|engine| {
            put_all(
                engine,
                &[
                    (b"a", b"1"),
                    (b"a\xff", b"2"),
                    (b"a\xff\xff", b"3"),
                    (b"b", b"4"),
                    (b"`", b"5"),
                    (b"\xff\xff", b"6"),
                    (b"\xff\xff\x00", b"7"),
                ],
            );
            assert_eq!(
                keys(engine.state_scan_prefix(b"a").unwrap()),
                vec![b"a".to_vec(), b"a\xff".to_vec(), b"a\xff\xff".to_vec()]
            );
            assert_eq!(
                keys(engine.state_scan_prefix(b"a\xff").unwrap()),
                vec![b"a\xff".to_vec(), b"a\xff\xff".to_vec()]
            );
            assert_eq!(
                keys(engine.state_scan_prefix(b"\xff\xff").unwrap()),
                vec![b"\xff\xff".to_vec(), b"\xff\xff\x00".to_vec()],
                "a prefix with no successor runs to the end"
            );
            assert_eq!(engine.state_scan_prefix(b"").unwrap().len(), 7);
            assert!(engine.state_scan_prefix(b"c").unwrap().is_empty());
        });
    }

    #[test]
    fn conformance_deletes_remove_records() {
        conformance(|engine| {
            put_all(engine, &[(b"x", b"1"), (b"y", b"2"), (b"z", b"3")]);
            let mut b = StateBatch::default();
            b.delete(b"y");
            b.delete(b"missing");
            engine.apply_state(b).unwrap();
            assert_eq!(engine.state_get(b"y").unwrap(), None);
            assert_eq!(
                keys(engine.state_scan_prefix(b"").unwrap()),
                vec![b"x".to_vec(), b"z".to_vec()]
            );
            engine.remove_state_records(&[b"x".to_vec()]).unwrap();
            assert_eq!(
                keys(engine.state_scan_prefix(b"").unwrap()),
                vec![b"z".to_vec()]
            );
        });
    }

    #[test]
    fn conformance_replace_state_keeps_only_the_new_records_and_the_member_records() {
        conformance(|engine| {
            put_all(
                engine,
                &[(b"old1", b"1"), (b"same", b"old"), (b"old2", b"2")],
            );
            engine
                .put_member_records(&[(b"id", b"7"), (b"e1", b"log")])
                .unwrap();
            let mut b = StateBatch::default();
            b.put(b"same", b"new");
            b.put(b"new", b"3");
            engine.replace_state(b).unwrap();
            assert_eq!(
                engine.state_scan_prefix(b"").unwrap(),
                vec![
                    (b"new".to_vec(), b"3".to_vec()),
                    (b"same".to_vec(), b"new".to_vec())
                ]
            );
            assert_eq!(engine.raft_get(b"id").unwrap(), Some(b"7".to_vec()));
            engine.clear_legacy_log(&[b"none"], &[b"e"]).unwrap();
            assert_eq!(
                keys(engine.raft_scan_prefix(b"").unwrap()),
                vec![b"id".to_vec()],
                "the legacy log goes, the member record stays"
            );
        });
    }

    #[test]
    fn conformance_the_checksum_depends_only_on_the_records() {
        let mut sums = Vec::new();
        for (name, engine, _dir) in backends() {
            let empty = engine.state_checksum().unwrap();
            // The same records, reached by different batches on each backend.
            put_all(&engine, &[(b"b", b"2"), (b"gone", b"x")]);
            let mut b = StateBatch::default();
            b.put(b"a", b"1");
            b.delete(b"gone");
            engine.apply_state(b).unwrap();
            engine.put_member_records(&[(b"id", b"1")]).unwrap();
            sums.push((name, empty, engine.state_checksum().unwrap()));
        }
        let (_, empty, full) = sums[0];
        assert_ne!(empty, full);
        for (name, e, f) in &sums {
            assert_eq!((*e, *f), (empty, full), "{name} agrees with mem");
        }
    }

    #[test]
    fn conformance_iteration_may_write_to_the_engine() {
        conformance(|engine| {
            put_all(engine, &[(b"a", b"1"), (b"b", b"2")]);
            let mut seen = 0;
            engine
                .state_for_each(b"a", b"c", |k, _| {
                    seen += 1;
                    if k.len() == 1 {
                        let mut b = StateBatch::default();
                        b.put([k, b"-copy"].concat(), b"x");
                        engine.apply_state(b).expect("write while iterating");
                    }
                    true
                })
                .unwrap();
            assert!((2..=4).contains(&seen), "{seen} records: each at most once");
            assert_eq!(engine.state_get(b"b-copy").unwrap(), Some(b"x".to_vec()));
        });
    }

    #[test]
    fn the_disk_backend_keeps_records_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let options = EngineOptions {
            cache_bytes: 1 << 20,
        };
        {
            let engine = Engine::open_with(dir.path(), options.clone()).unwrap();
            assert!(engine.space().is_some(), "a data dir has a space guard");
            put_all(&engine, &[(b"a", b"1"), (b"b", b"2")]);
            let mut b = StateBatch::default();
            b.delete(b"a");
            b.commit(b"c", b"9");
            engine.apply_state(b).unwrap();
            engine.put_member_records(&[(b"id", b"7")]).unwrap();
            engine.flush().unwrap();
            assert!(engine.size_on_disk().unwrap() > 0);
        }
        let engine = Engine::open_with(dir.path(), options).unwrap();
        assert_eq!(
            engine.state_scan_prefix(b"").unwrap(),
            vec![
                (b"b".to_vec(), b"2".to_vec()),
                (b"c".to_vec(), b"9".to_vec())
            ]
        );
        assert_eq!(engine.raft_get(b"id").unwrap(), Some(b"7".to_vec()));
    }

    #[test]
    fn the_memory_backend_has_no_space_guard() {
        assert!(Engine::temporary().unwrap().space().is_none());
    }
}
