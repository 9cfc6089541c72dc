//! The raft log, hard state and configuration, kept in memory for raft-rs and persisted to
//! storage's raft tree.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::RwLock;
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError as RaftStorageError};

use crate::storage::{Engine, RaftBatch, StorageError};

const ENTRY_PREFIX: &[u8] = b"e";
const HARD_STATE: &[u8] = b"hs";
const CONF_STATE: &[u8] = b"cs";
const SNAPSHOT_META: &[u8] = b"snap";

fn entry_key(index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.extend_from_slice(ENTRY_PREFIX);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

/// Produces the state machine's image and the applied index it corresponds to, for members
/// that need a snapshot.
pub type SnapshotSource = Arc<dyn Fn() -> Result<(u64, Vec<u8>), StorageError> + Send + Sync>;

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
}

/// raft-rs's view of the log; cheap to clone (shared).
#[derive(Clone)]
pub struct LogStore {
    engine: Engine,
    inner: Arc<RwLock<Inner>>,
    source: Arc<RwLock<Option<SnapshotSource>>>,
}

impl LogStore {
    /// Loads the log from storage.
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub fn open(engine: Engine) -> Result<Self, StorageError> {
        let mut hard_state = HardState::default();
        if let Some(b) = engine.raft_get(HARD_STATE)? {
            hard_state
                .merge_from_bytes(&b)
                .map_err(|e| corrupt("hard state", e))?;
        }
        let mut conf_state = ConfState::default();
        if let Some(b) = engine.raft_get(CONF_STATE)? {
            conf_state
                .merge_from_bytes(&b)
                .map_err(|e| corrupt("conf state", e))?;
        }
        let mut snapshot_meta = SnapshotMetadata::default();
        if let Some(b) = engine.raft_get(SNAPSHOT_META)? {
            snapshot_meta
                .merge_from_bytes(&b)
                .map_err(|e| corrupt("snapshot metadata", e))?;
        }
        let mut entries = VecDeque::new();
        for (_, v) in engine.raft_scan_prefix(ENTRY_PREFIX)? {
            let mut e = Entry::default();
            e.merge_from_bytes(&v)
                .map_err(|e| corrupt("log entry", e))?;
            if e.index > snapshot_meta.index {
                entries.push_back(e);
            }
        }
        let inner = Inner {
            hard_state,
            conf_state,
            snapshot_meta,
            entries,
        };
        Ok(Self {
            engine,
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
    pub fn bootstrap(&self, cs: &ConfState, batch: &mut RaftBatch) {
        let mut inner = self.inner.write();
        inner.conf_state = cs.clone();
        inner.snapshot_meta.index = 1;
        inner.snapshot_meta.term = 1;
        inner.snapshot_meta.set_conf_state(cs.clone());
        inner.hard_state.term = 1;
        inner.hard_state.commit = 1;
        batch.put(
            SNAPSHOT_META,
            inner.snapshot_meta.write_to_bytes().unwrap_or_default(),
        );
        batch.put(CONF_STATE, cs.write_to_bytes().unwrap_or_default());
        batch.put(
            HARD_STATE,
            inner.hard_state.write_to_bytes().unwrap_or_default(),
        );
    }

    /// [`LogStore::bootstrap`] with a configuration of these voters.
    pub fn bootstrap_voters(&self, voters: &[u64], batch: &mut RaftBatch) {
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

    /// The persisted hard state.
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
    pub fn append(&self, entries: &[Entry], batch: &mut RaftBatch) {
        let Some(first) = entries.first() else { return };
        let mut inner = self.inner.write();
        let first_index = inner.first_index();
        if first.index < first_index {
            // Already covered by a snapshot: keep only the part after it.
            let skip = (first_index - first.index) as usize;
            if skip >= entries.len() {
                return;
            }
            drop(inner);
            return self.append(&entries[skip..], batch);
        }
        let keep = (first.index - first_index) as usize;
        let old_last = inner.last_index();
        inner.entries.truncate(keep);
        for idx in first.index..=old_last {
            batch.delete(entry_key(idx));
        }
        for e in entries {
            batch.put(entry_key(e.index), e.write_to_bytes().unwrap_or_default());
            inner.entries.push_back(e.clone());
        }
    }

    /// Drops every entry after `index` (entries that were never committed).
    pub fn truncate_after(&self, index: u64, batch: &mut RaftBatch) {
        let mut inner = self.inner.write();
        let last = inner.last_index();
        if index >= last || index < inner.snapshot_meta.index {
            return;
        }
        let keep = (index - inner.snapshot_meta.index) as usize;
        inner.entries.truncate(keep);
        for idx in index + 1..=last {
            batch.delete(entry_key(idx));
        }
    }

    /// Records a new hard state into `batch`.
    pub fn set_hard_state(&self, hs: &HardState, batch: &mut RaftBatch) {
        batch.put(HARD_STATE, hs.write_to_bytes().unwrap_or_default());
        self.inner.write().hard_state = hs.clone();
    }

    /// Records a new commit index into `batch`.
    pub fn set_commit(&self, commit: u64, batch: &mut RaftBatch) {
        let mut inner = self.inner.write();
        inner.hard_state.commit = commit;
        batch.put(
            HARD_STATE,
            inner.hard_state.write_to_bytes().unwrap_or_default(),
        );
    }

    /// Records a new configuration into `batch`.
    pub fn set_conf_state(&self, cs: &ConfState, batch: &mut RaftBatch) {
        batch.put(CONF_STATE, cs.write_to_bytes().unwrap_or_default());
        self.inner.write().conf_state = cs.clone();
    }

    /// Drops entries up to and including `index` (their effect is in the state machine), and
    /// remembers `index`/its term as the snapshot point.
    pub fn compact(&self, index: u64, batch: &mut RaftBatch) {
        let mut inner = self.inner.write();
        if index <= inner.snapshot_meta.index || index > inner.last_index() {
            return;
        }
        let offset = (index - inner.first_index()) as usize;
        let term = inner.entries[offset].term;
        let first = inner.first_index();
        inner.entries.drain(..=offset);
        for idx in first..=index {
            batch.delete(entry_key(idx));
        }
        inner.snapshot_meta.index = index;
        inner.snapshot_meta.term = term;
        let cs = inner.conf_state.clone();
        inner.snapshot_meta.set_conf_state(cs);
        batch.put(
            SNAPSHOT_META,
            inner.snapshot_meta.write_to_bytes().unwrap_or_default(),
        );
    }

    /// Installs a snapshot received from the leader: the log restarts after it.
    pub fn apply_snapshot(&self, snap: &Snapshot, batch: &mut RaftBatch) {
        let mut inner = self.inner.write();
        let meta = snap.get_metadata();
        let first = inner.first_index();
        for idx in first..=inner.last_index() {
            batch.delete(entry_key(idx));
        }
        inner.entries.clear();
        inner.snapshot_meta = meta.clone();
        inner.conf_state = meta.get_conf_state().clone();
        inner.hard_state.term = inner.hard_state.term.max(meta.term);
        inner.hard_state.commit = meta.index;
        batch.put(SNAPSHOT_META, meta.write_to_bytes().unwrap_or_default());
        batch.put(
            CONF_STATE,
            inner.conf_state.write_to_bytes().unwrap_or_default(),
        );
        batch.put(
            HARD_STATE,
            inner.hard_state.write_to_bytes().unwrap_or_default(),
        );
    }

    /// Writes `batch` (durability comes from the engine flush that follows).
    ///
    /// # Errors
    /// Storage failure.
    pub fn write(&self, batch: RaftBatch) -> Result<(), StorageError> {
        self.engine.apply_raft(batch)
    }

    /// Metadata of the latest snapshot point.
    pub fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.inner.read().snapshot_meta.clone()
    }
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
