//! The raft log, hard state and configuration: kept in memory for raft-rs, made durable in
//! the write-ahead log (`storage::wal`).
//!
//! Every change is a WAL record; the log is rebuilt by replaying them in order:
//! - `ENTRIES`: entries from some index on, replacing any the log had from that index;
//! - `HARD_STATE`, `CONF_STATE`: the latest one wins;
//! - `COMPACT`: the log starts after this snapshot point (the state machine has everything up
//!   to it durably), entries up to it are dropped;
//! - `SNAPSHOT`: a snapshot from the leader was installed: the whole log restarts after it;
//! - `TRUNCATE`: entries after an index are dropped (`--force-new-cluster`).
//!
//! Each new WAL segment starts with a checkpoint (hard state, configuration, snapshot point),
//! so segments whose entries all precede a recorded compaction can be deleted.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError as RaftStorageError};

use crate::storage::wal::{Record, Wal, SEGMENT_BYTES};
use crate::storage::{Engine, StorageError};

const ENTRIES: u8 = 1;
const HARD_STATE: u8 = 2;
const CONF_STATE: u8 = 3;
const COMPACT: u8 = 4;
const SNAPSHOT: u8 = 5;
const TRUNCATE: u8 = 6;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

/// Produces the state machine's image and the applied index it corresponds to, for members
/// that need a snapshot.
pub type SnapshotSource = Arc<dyn Fn() -> Result<(u64, Vec<u8>), StorageError> + Send + Sync>;

/// Changes to the log, written to the WAL together by [`LogStore::write`].
#[derive(Default)]
pub struct LogBatch {
    records: Vec<(u8, u64, Vec<u8>)>,
}

impl LogBatch {
    fn push(&mut self, kind: u8, tag: u64, payload: Vec<u8>) {
        self.records.push((kind, tag, payload));
    }
}

struct Inner {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the last entry covered by a snapshot (the log starts after it).
    snapshot_meta: SnapshotMetadata,
    entries: VecDeque<Entry>,
}

impl Inner {
    fn first_index(&self) -> u64 {
        self.snapshot_meta.index + 1
    }

    fn last_index(&self) -> u64 {
        self.snapshot_meta.index + self.entries.len() as u64
    }

    /// The records that describe everything but the entries (a new segment starts with them).
    fn checkpoint(&self) -> Vec<(u8, u64, Vec<u8>)> {
        vec![
            (HARD_STATE, 0, encode(&self.hard_state)),
            (CONF_STATE, 0, encode(&self.conf_state)),
            (
                COMPACT,
                self.snapshot_meta.index,
                encode(&self.snapshot_meta),
            ),
        ]
    }
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    m.write_to_bytes().expect("raft's messages always encode")
}

fn decode<M: protobuf::Message + Default>(what: &str, bytes: &[u8]) -> Result<M, StorageError> {
    let mut m = M::default();
    m.merge_from_bytes(bytes).map_err(|e| corrupt(what, e))?;
    Ok(m)
}

fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| 4 + e.data.len() + 32).sum());
    for e in entries {
        let bytes = encode(e);
        let len = u32::try_from(bytes.len()).expect("a raft entry is smaller than 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

fn decode_entries(mut bytes: &[u8]) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("WAL entries record", "a length cut short"))?;
        let len = u32::from_le_bytes(*len) as usize;
        let body = rest
            .get(..len)
            .ok_or_else(|| corrupt("WAL entries record", "an entry cut short"))?;
        out.push(decode("log entry", body)?);
        bytes = &rest[len..];
    }
    Ok(out)
}

/// Rebuilds the log from WAL records.
fn replay(records: &[Record]) -> Result<Inner, StorageError> {
    let mut hard_state = HardState::default();
    let mut conf_state = ConfState::default();
    let mut anchor = SnapshotMetadata::default();
    let mut entries: BTreeMap<u64, Entry> = BTreeMap::new();
    for r in records {
        match r.kind {
            ENTRIES => {
                let batch = decode_entries(&r.payload)?;
                if let Some(first) = batch.first() {
                    entries.split_off(&first.index);
                    entries.extend(batch.into_iter().map(|e| (e.index, e)));
                }
            }
            HARD_STATE => hard_state = decode("hard state", &r.payload)?,
            CONF_STATE => conf_state = decode("conf state", &r.payload)?,
            COMPACT => {
                let meta: SnapshotMetadata = decode("compaction point", &r.payload)?;
                if meta.index > anchor.index {
                    entries = entries.split_off(&(meta.index + 1));
                    anchor = meta;
                }
            }
            SNAPSHOT => {
                anchor = decode("snapshot point", &r.payload)?;
                conf_state = anchor.get_conf_state().clone();
                entries.clear();
            }
            TRUNCATE => {
                let after = r
                    .payload
                    .as_slice()
                    .try_into()
                    .map(u64::from_le_bytes)
                    .map_err(|_| corrupt("WAL truncate record", "not an index"))?;
                entries.split_off(&(after + 1));
            }
            other => return Err(corrupt("WAL record", format!("unknown kind {other}"))),
        }
    }
    let entries: VecDeque<Entry> = entries
        .split_off(&(anchor.index + 1))
        .into_values()
        .collect();
    for (offset, e) in entries.iter().enumerate() {
        if e.index != anchor.index + 1 + offset as u64 {
            return Err(corrupt(
                "raft log",
                format!(
                    "entry {} missing after the snapshot point {}",
                    anchor.index + 1 + offset as u64,
                    anchor.index
                ),
            ));
        }
    }
    Ok(Inner {
        hard_state,
        conf_state,
        snapshot_meta: anchor,
        entries,
    })
}

/// raft-rs's view of the log; cheap to clone (shared).
#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Mutex<Wal>>,
    inner: Arc<RwLock<Inner>>,
    source: Arc<RwLock<Option<SnapshotSource>>>,
}

impl LogStore {
    /// Opens the log in the WAL directory `dir`. A data dir written before kvd kept its log in
    /// a WAL has it in `legacy`'s raft tree: it is moved into the WAL once.
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub fn open(dir: &Path, legacy: Option<&Engine>) -> Result<Self, StorageError> {
        Self::open_with_segments(dir, legacy, SEGMENT_BYTES)
    }

    /// [`LogStore::open`] with WAL segments of `segment_bytes` (the in-process cluster harness
    /// keeps its many small logs in small segments).
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub(crate) fn open_with_segments(
        dir: &Path,
        legacy: Option<&Engine>,
        segment_bytes: u64,
    ) -> Result<Self, StorageError> {
        let fresh = !dir.exists();
        let (mut wal, records) = Wal::open(dir, segment_bytes)?;
        let mut inner = replay(&records)?;
        if fresh {
            if let Some(engine) = legacy {
                if let Some(old) = legacy_log(engine)? {
                    inner = old;
                    for (kind, tag, payload) in inner.checkpoint() {
                        wal.append(kind, tag, &payload);
                    }
                    let entries: Vec<Entry> = inner.entries.iter().cloned().collect();
                    if !entries.is_empty() {
                        wal.append(ENTRIES, inner.last_index(), &encode_entries(&entries));
                    }
                    wal.sync()?;
                    engine.clear_legacy_log(&[b"hs", b"cs", b"snap"], &[b"e"])?;
                    tracing::info!(
                        entries = entries.len(),
                        "moved the raft log into the write-ahead log"
                    );
                }
            }
        }
        Ok(Self {
            wal: Arc::new(Mutex::new(wal)),
            inner: Arc::new(RwLock::new(inner)),
            source: Arc::new(RwLock::new(None)),
        })
    }

    /// True when nothing was ever stored (a brand-new member).
    pub fn is_empty(&self) -> bool {
        let inner = self.inner.read();
        inner.hard_state == HardState::default()
            && inner.conf_state == ConfState::default()
            && inner.entries.is_empty()
            && inner.snapshot_meta.index == 0
    }

    /// Sets where snapshots for lagging members come from.
    pub fn set_snapshot_source(&self, source: SnapshotSource) {
        *self.source.write() = Some(source);
    }

    /// Initialises a brand-new log with `cs` as the configuration at index 1 (term 1), so that
    /// members joining later, whose logs are empty, receive it in a snapshot.
    pub fn bootstrap(&self, cs: &ConfState, batch: &mut LogBatch) {
        let mut inner = self.inner.write();
        inner.conf_state = cs.clone();
        inner.snapshot_meta.index = 1;
        inner.snapshot_meta.term = 1;
        inner.snapshot_meta.set_conf_state(cs.clone());
        inner.hard_state.term = 1;
        inner.hard_state.commit = 1;
        batch.push(SNAPSHOT, 1, encode(&inner.snapshot_meta));
        batch.push(CONF_STATE, 0, encode(cs));
        batch.push(HARD_STATE, 0, encode(&inner.hard_state));
    }

    /// [`LogStore::bootstrap`] with a configuration of these voters.
    pub fn bootstrap_voters(&self, voters: &[u64], batch: &mut LogBatch) {
        let cs = ConfState {
            voters: voters.to_vec(),
            ..Default::default()
        };
        self.bootstrap(&cs, batch);
    }

    /// The current configuration.
    pub fn conf_state(&self) -> ConfState {
        self.inner.read().conf_state.clone()
    }

    /// The hard state.
    pub fn hard_state(&self) -> HardState {
        self.inner.read().hard_state.clone()
    }

    /// Index of the last entry in the log.
    pub fn last_index(&self) -> u64 {
        self.inner.read().last_index()
    }

    /// Index of the last entry folded into a snapshot.
    pub fn snapshot_index(&self) -> u64 {
        self.inner.read().snapshot_meta.index
    }

    /// Appends entries (replacing any conflicting suffix) into `batch`.
    pub fn append(&self, entries: &[Entry], batch: &mut LogBatch) {
        let Some(first) = entries.first() else { return };
        let mut inner = self.inner.write();
        let first_index = inner.first_index();
        let entries = if first.index < first_index {
            // Already covered by a snapshot: keep only the part after it.
            let skip = usize::try_from(first_index - first.index).unwrap_or(usize::MAX);
            if skip >= entries.len() {
                return;
            }
            &entries[skip..]
        } else {
            entries
        };
        let keep = (entries[0].index - first_index) as usize;
        inner.entries.truncate(keep);
        inner.entries.extend(entries.iter().cloned());
        let last = inner.last_index();
        batch.push(ENTRIES, last, encode_entries(entries));
    }

    /// Drops every entry after `index` (entries that were never committed).
    pub fn truncate_after(&self, index: u64, batch: &mut LogBatch) {
        let mut inner = self.inner.write();
        if index >= inner.last_index() || index < inner.snapshot_meta.index {
            return;
        }
        let keep = (index - inner.snapshot_meta.index) as usize;
        inner.entries.truncate(keep);
        batch.push(TRUNCATE, 0, index.to_le_bytes().to_vec());
    }

    /// Records a new hard state into `batch`.
    pub fn set_hard_state(&self, hs: &HardState, batch: &mut LogBatch) {
        batch.push(HARD_STATE, 0, encode(hs));
        self.inner.write().hard_state = hs.clone();
    }

    /// Records a new commit index into `batch`.
    pub fn set_commit(&self, commit: u64, batch: &mut LogBatch) {
        let mut inner = self.inner.write();
        inner.hard_state.commit = commit;
        batch.push(HARD_STATE, 0, encode(&inner.hard_state));
    }

    /// Records a new configuration into `batch`.
    pub fn set_conf_state(&self, cs: &ConfState, batch: &mut LogBatch) {
        batch.push(CONF_STATE, 0, encode(cs));
        self.inner.write().conf_state = cs.clone();
    }

    /// Drops entries up to and including `index` (the state machine holds their effect
    /// durably), and remembers `index`/its term as the snapshot point.
    pub fn compact(&self, index: u64, batch: &mut LogBatch) {
        let mut inner = self.inner.write();
        if index <= inner.snapshot_meta.index || index > inner.last_index() {
            return;
        }
        let offset = (index - inner.first_index()) as usize;
        let term = inner.entries[offset].term;
        inner.entries.drain(..=offset);
        inner.snapshot_meta.index = index;
        inner.snapshot_meta.term = term;
        let cs = inner.conf_state.clone();
        inner.snapshot_meta.set_conf_state(cs);
        batch.push(COMPACT, index, encode(&inner.snapshot_meta));
    }

    /// Installs a snapshot received from the leader: the log restarts after it.
    pub fn apply_snapshot(&self, snap: &Snapshot, batch: &mut LogBatch) {
        let mut inner = self.inner.write();
        let meta = snap.get_metadata();
        inner.entries.clear();
        inner.snapshot_meta = meta.clone();
        inner.conf_state = meta.get_conf_state().clone();
        inner.hard_state.term = inner.hard_state.term.max(meta.term);
        inner.hard_state.commit = meta.index;
        batch.push(SNAPSHOT, meta.index, encode(meta));
        batch.push(CONF_STATE, 0, encode(&inner.conf_state));
        batch.push(HARD_STATE, 0, encode(&inner.hard_state));
    }

    /// Queues `batch` in the WAL; [`LogStore::sync`] makes it durable.
    pub fn write(&self, batch: LogBatch) {
        let mut wal = self.wal.lock();
        for (kind, tag, payload) in &batch.records {
            wal.append(*kind, *tag, payload);
        }
    }

    /// Makes everything written so far durable (one fdatasync), starting a new WAL segment
    /// first when the current one is full.
    ///
    /// # Errors
    /// The WAL cannot be written: the member must stop.
    pub fn sync(&self) -> Result<(), StorageError> {
        let mut wal = self.wal.lock();
        if wal.should_rotate() {
            let checkpoint = self.inner.read().checkpoint();
            wal.rotate(&checkpoint)?;
            return Ok(());
        }
        wal.sync()?;
        Ok(())
    }

    /// Deletes WAL segments that hold nothing after the snapshot point (after a compaction
    /// was made durable).
    ///
    /// # Errors
    /// A segment cannot be deleted.
    pub fn purge(&self) -> Result<usize, StorageError> {
        let upto = self.snapshot_index();
        Ok(self.wal.lock().purge(upto)?)
    }
}

/// The log a data dir of an older kvd kept in sled's raft tree, if any.
fn legacy_log(engine: &Engine) -> Result<Option<Inner>, StorageError> {
    let hard = engine.raft_get(b"hs")?;
    let conf = engine.raft_get(b"cs")?;
    let snap = engine.raft_get(b"snap")?;
    if hard.is_none() && conf.is_none() && snap.is_none() {
        return Ok(None);
    }
    let hard_state: HardState = decode("hard state", &hard.unwrap_or_default())?;
    let conf_state: ConfState = decode("conf state", &conf.unwrap_or_default())?;
    let snapshot_meta: SnapshotMetadata = decode("snapshot metadata", &snap.unwrap_or_default())?;
    let mut entries = VecDeque::new();
    for (_, v) in engine.raft_scan_prefix(b"e")? {
        let e: Entry = decode("log entry", &v)?;
        if e.index > snapshot_meta.index {
            entries.push_back(e);
        }
    }
    Ok(Some(Inner {
        hard_state,
        conf_state,
        snapshot_meta,
        entries,
    }))
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let inner = self.inner.read();
        Ok(RaftState {
            hard_state: inner.hard_state.clone(),
            conf_state: inner.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let inner = self.inner.read();
        if low < inner.first_index() {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if high > inner.last_index() + 1 {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        let offset = inner.first_index();
        let mut out: Vec<Entry> = Vec::new();
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut size = 0u64;
        for idx in low..high {
            let e = &inner.entries[(idx - offset) as usize];
            size += u64::from(e.compute_size());
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let inner = self.inner.read();
        if idx == inner.snapshot_meta.index {
            return Ok(inner.snapshot_meta.term);
        }
        if idx < inner.first_index() {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if idx > inner.last_index() {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        Ok(inner.entries[(idx - inner.first_index()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.inner.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.inner.read().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let source = self.source.read().clone();
        let Some(source) = source else {
            return Err(raft::Error::Store(
                RaftStorageError::SnapshotTemporarilyUnavailable,
            ));
        };
        let (index, data) = source().map_err(|e| {
            tracing::error!(error = %e, "cannot produce a snapshot");
            raft::Error::Store(RaftStorageError::SnapshotTemporarilyUnavailable)
        })?;
        if index < request_index {
            return Err(raft::Error::Store(
                RaftStorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let term = raft::Storage::term(self, index)?;
        let mut snap = Snapshot::default();
        snap.set_data(data.into());
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.inner.read().conf_state.clone());
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: format!("e{index}t{term}").into_bytes().into(),
            ..Default::default()
        }
    }

    fn terms(store: &LogStore) -> Vec<(u64, u64)> {
        store
            .inner
            .read()
            .entries
            .iter()
            .map(|e| (e.index, e.term))
            .collect()
    }

    fn reopen(dir: &Path) -> LogStore {
        LogStore::open(dir, None).expect("reopen")
    }

    #[test]
    fn appends_conflicts_compaction_and_state_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = dir.path().join("wal");
        {
            let store = LogStore::open(&wal, None).expect("open");
            let mut batch = LogBatch::default();
            store.bootstrap_voters(&[1, 2, 3], &mut batch);
            store.append(
                &(2..=6).map(|i| entry(i, 2)).collect::<Vec<_>>(),
                &mut batch,
            );
            store.write(batch);
            store.sync().expect("sync");
            // a new leader overwrites 5 and 6
            let mut batch = LogBatch::default();
            store.append(&[entry(5, 3), entry(6, 3), entry(7, 3)], &mut batch);
            let hs = HardState {
                term: 3,
                vote: 2,
                commit: 6,
                ..Default::default()
            };
            store.set_hard_state(&hs, &mut batch);
            store.compact(3, &mut batch);
            store.write(batch);
            store.sync().expect("sync");
        }
        let store = reopen(&wal);
        assert_eq!(terms(&store), vec![(4, 2), (5, 3), (6, 3), (7, 3)]);
        assert_eq!(store.snapshot_index(), 3);
        assert_eq!(raft::Storage::term(&store, 3).expect("term"), 2);
        assert_eq!(store.hard_state().commit, 6);
        assert_eq!(store.conf_state().voters, vec![1, 2, 3]);
    }

    #[test]
    fn an_installed_snapshot_replaces_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = dir.path().join("wal");
        {
            let store = LogStore::open(&wal, None).expect("open");
            let mut batch = LogBatch::default();
            store.bootstrap_voters(&[1], &mut batch);
            store.append(
                &(2..=9).map(|i| entry(i, 2)).collect::<Vec<_>>(),
                &mut batch,
            );
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = 20;
            snap.mut_metadata().term = 4;
            snap.mut_metadata().mut_conf_state().voters = vec![1, 2];
            store.apply_snapshot(&snap, &mut batch);
            store.append(&[entry(21, 4)], &mut batch);
            store.write(batch);
            store.sync().expect("sync");
        }
        let store = reopen(&wal);
        assert_eq!(terms(&store), vec![(21, 4)]);
        assert_eq!(store.snapshot_index(), 20);
        assert_eq!(store.conf_state().voters, vec![1, 2]);
    }

    /// Many small segments: rotation checkpoints and purges after compactions keep exactly the
    /// log that compaction did not pass, across reopens.
    #[test]
    fn compaction_and_purge_keep_the_wal_bounded_and_the_log_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        let (wal, _) = Wal::open(&wal_dir, 4096).expect("wal");
        let store = LogStore {
            wal: Arc::new(Mutex::new(wal)),
            inner: Arc::new(RwLock::new(replay(&[]).expect("empty"))),
            source: Arc::new(RwLock::new(None)),
        };
        let mut batch = LogBatch::default();
        store.bootstrap_voters(&[1], &mut batch);
        store.write(batch);
        let mut most_segments = 0;
        for i in 2..=400u64 {
            let mut batch = LogBatch::default();
            store.append(&[entry(i, 2)], &mut batch);
            store.set_commit(i, &mut batch);
            if i % 50 == 0 {
                store.compact(i - 20, &mut batch);
            }
            store.write(batch);
            store.sync().expect("sync");
            if i % 50 == 0 {
                store.purge().expect("purge");
            }
            most_segments = most_segments.max(store.wal.lock().segments());
        }
        assert!(most_segments < 12, "{most_segments} segments at most");
        drop(store);
        let store = LogStore::open(&wal_dir, None).expect("reopen");
        assert_eq!(store.snapshot_index(), 380);
        let got = terms(&store);
        assert_eq!(got.first(), Some(&(381, 2)));
        assert_eq!(got.last(), Some(&(400, 2)));
        assert_eq!(store.hard_state().commit, 400);
    }

    #[test]
    fn a_gap_after_the_snapshot_point_is_reported() {
        let mut records = Vec::new();
        let mut push = |kind, tag, payload| {
            records.push(Record { kind, tag, payload });
        };
        let meta = SnapshotMetadata {
            index: 5,
            term: 1,
            ..Default::default()
        };
        push(SNAPSHOT, 5, encode(&meta));
        push(ENTRIES, 8, encode_entries(&[entry(7, 1), entry(8, 1)]));
        let err = replay(&records).err().expect("a gap");
        assert!(err.to_string().contains("entry 6 missing"), "{err}");
    }
}
