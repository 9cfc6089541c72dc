//! The sled backend: the only file of kvd that names sled.
//!
//! Each [`Keyspace`] is a sled tree (the member records keep the tree name `raft` of older
//! kvd versions). sled recovers a prefix of its log after a crash, which is the ordering
//! [`KvBackend::write_in_order`] promises; its atomic batches are costlier (each makes sled
//! seal and write its IO buffer twice), which is why the engine uses them only when it must.
//! sled flushes only when asked ([`KvBackend::flush`]), and its file is where the
//! [`SpaceGuard`] keeps its reserve.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::backend::{Keyspace, KvBackend, Visit, Write};
use super::{Result, SpaceGuard, StorageError};

/// The name of sled's log file in its directory, where the space reserve goes.
const LOG_FILE: &str = "db";

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError::Backend(Box::new(e))
    }
}

/// A sled database with one tree per [`Keyspace`].
pub struct SledBackend {
    db: sled::Db,
    state: sled::Tree,
    member: sled::Tree,
    /// sled's log file, opened again to fsync it (see [`KvBackend::flush`]); none for a
    /// temporary database.
    log_file: Option<File>,
    /// Free space of the data dir's file system; none for a temporary database.
    space: Option<Arc<SpaceGuard>>,
}

impl SledBackend {
    /// Opens (or creates) the database under `dir` with a page cache of `cache_bytes`.
    ///
    /// # Errors
    /// Fails when sled cannot open or recover the files.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let log_path = dir.join(LOG_FILE);
        let log_file = File::open(&log_path).map_err(|e| StorageError::Corrupt {
            what: format!("sled log file {}", log_path.display()),
            detail: e.to_string(),
        })?;
        let space = Arc::new(SpaceGuard::new(dir, &log_path));
        Self::from_db(db, Some(log_file), Some(space))
    }

    /// A database in a temporary directory that sled removes when it is dropped (tests and
    /// benchmarks that need the real backend).
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
        log_file: Option<File>,
        space: Option<Arc<SpaceGuard>>,
    ) -> Result<Self> {
        let state = db.open_tree("state")?;
        let member = db.open_tree("raft")?;
        Ok(Self {
            db,
            state,
            member,
            log_file,
            space,
        })
    }

    fn tree(&self, space: Keyspace) -> &sled::Tree {
        match space {
            Keyspace::State => &self.state,
            Keyspace::Member => &self.member,
        }
    }
}

impl KvBackend for SledBackend {
    fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(space).get(key)?.map(|v| v.to_vec()))
    }

    fn for_each(
        &self,
        space: Keyspace,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visit<'_>,
    ) -> Result<()> {
        let tree = self.tree(space);
        let iter = match end {
            Some(end) => tree.range(start..end),
            None => tree.range(start..),
        };
        for item in iter {
            let (k, v) = item?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn write_in_order(&self, space: Keyspace, writes: Vec<Write>) -> Result<()> {
        let tree = self.tree(space);
        for (k, v) in writes {
            match v {
                Some(v) => tree.insert(k, v)?,
                None => tree.remove(k)?,
            };
        }
        Ok(())
    }

    fn write_atomic(&self, space: Keyspace, writes: Vec<Write>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.tree(space).apply_batch(batch)?;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        // sled writes its log with sync_file_range, which neither flushes the disk's write
        // cache nor records a grown file size: fdatasync makes the flushed writes survive a
        // power loss too, as etcd's WAL fsync does.
        if let Some(f) = &self.log_file {
            f.sync_data()
                .map_err(|e| StorageError::Backend(Box::new(e)))?;
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    fn space(&self) -> Option<Arc<SpaceGuard>> {
        self.space.clone()
    }
}
