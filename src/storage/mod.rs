//! Durable storage: the only module that names sled.
//!
//! Two trees live in one sled database:
//! - `raft`: the raft log (`e` + 8-byte big-endian index -> encoded entry) and raft metadata
//!   (hard state, conf state, snapshot metadata).
//! - `state`: everything raft entries produce (MVCC revisions, meta, leases, members, alarms,
//!   auth). Apply writes it in one [`StateBatch`] together with the applied index, so a crash
//!   neither loses nor repeats an applied entry.
//!
//! sled's background flush is turned off: kvd calls [`Engine::flush`] where durability is promised
//! (before a proposal is acknowledged).

use std::path::Path;

use thiserror::Error;

/// A failure of the storage engine. Always fatal for the member: raft cannot skip a write.
#[derive(Debug, Error)]
pub enum StorageError {
    /// sled reported an I/O or corruption error.
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
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
}

/// A set of writes to the state tree applied atomically.
#[derive(Default)]
pub struct StateBatch {
    batch: sled::Batch,
    len: usize,
}

impl StateBatch {
    /// Queues an insert.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.batch.insert(key.as_ref(), value.as_ref());
        self.len += 1;
    }

    /// Queues a removal.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.batch.remove(key.as_ref());
        self.len += 1;
    }

    /// Number of queued writes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A set of writes to the raft tree applied atomically.
#[derive(Default)]
pub struct RaftBatch {
    batch: sled::Batch,
}

impl RaftBatch {
    /// Queues an insert.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.batch.insert(key.as_ref(), value.as_ref());
    }

    /// Queues a removal.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.batch.remove(key.as_ref());
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
        Self::from_db(db)
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
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self> {
        let raft = db.open_tree("raft")?;
        let state = db.open_tree("state")?;
        Ok(Self { db, raft, state })
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

    /// Applies a batch of state writes atomically (not yet durable: see [`Engine::flush`]).
    ///
    /// # Errors
    /// Storage failure.
    pub fn apply_state(&self, batch: StateBatch) -> Result<()> {
        self.state.apply_batch(batch.batch)?;
        Ok(())
    }

    /// Reads one raft record.
    ///
    /// # Errors
    /// Storage failure.
    pub fn raft_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.raft.get(key)?.map(|v| v.to_vec()))
    }

    /// All raft records whose key starts with `prefix`, in key order.
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

    /// Applies a batch of raft writes atomically (not yet durable: see [`Engine::flush`]).
    ///
    /// # Errors
    /// Storage failure.
    pub fn apply_raft(&self, batch: RaftBatch) -> Result<()> {
        self.raft.apply_batch(batch.batch)?;
        Ok(())
    }

    /// Makes every write so far durable (fsync).
    ///
    /// # Errors
    /// Storage failure (for example a full disk).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Removes every state record (before installing a snapshot).
    ///
    /// # Errors
    /// Storage failure.
    pub fn clear_state(&self) -> Result<()> {
        self.state.clear()?;
        Ok(())
    }

    /// A checksum of the whole state tree (for `Hash`).
    ///
    /// # Errors
    /// Storage failure.
    pub fn state_checksum(&self) -> Result<u32> {
        let mut hasher = crc32fast::Hasher::new();
        for item in self.state.iter() {
            let (k, v) = item?;
            hasher.update(&k);
            hasher.update(&v);
        }
        Ok(hasher.finalize())
    }
}
