//! The replicated state shared with the API's read paths, how it is loaded from storage, and
//! the records a snapshot import writes next to it (commit record, snapshot meta, leases).

#[allow(clippy::wildcard_imports)]
use super::*;

/// The replicated state, shared with the API's read paths.
#[derive(Clone)]
pub struct SharedState {
    /// Keys and history.
    pub mvcc: Arc<RwLock<MvccStore>>,
    /// Leases.
    pub lessor: Arc<Mutex<Lessor>>,
    /// Members.
    pub membership: Arc<RwLock<Membership>>,
    /// Active alarms.
    pub alarms: Arc<RwLock<Alarms>>,
    /// Proposers waiting for results.
    pub waiters: Arc<Waiters>,
    /// Watchers.
    pub hub: Arc<WatchHub>,
    /// Users, roles and the auth flag.
    pub auth: Arc<RwLock<crate::auth::AuthStore>>,
    /// Auth settings and tokens of this member (kept when a snapshot is installed).
    pub tokens: Arc<crate::auth::Tokens>,
    /// Free space on the data dir's disk (none for a state in memory).
    pub space: Option<Arc<crate::storage::SpaceGuard>>,
}

impl SharedState {
    /// Loads every part of the state from storage.
    ///
    /// # Errors
    /// Storage failure or corrupt records.
    pub fn load(engine: &Engine, min_lease_ttl: i64) -> Result<Self, StorageError> {
        let mut store = open_mvcc(engine)?;
        let lessor = crate::lease::persist::load(engine, &mut store, min_lease_ttl)?;
        let membership = Membership::load(engine)?;
        let alarms = Alarms::load(engine)?;
        let auth = crate::auth::AuthStore::load(engine)?;
        let mvcc = Arc::new(RwLock::new(store));
        let hub = WatchHub::new(mvcc.clone());
        Ok(Self {
            mvcc,
            lessor: Arc::new(Mutex::new(lessor)),
            membership: Arc::new(RwLock::new(membership)),
            alarms: Arc::new(RwLock::new(alarms)),
            waiters: Arc::new(Waiters::default()),
            hub,
            auth: Arc::new(RwLock::new(auth)),
            tokens: Arc::new(crate::auth::Tokens::default()),
            space: engine.space(),
        })
    }

    /// Saves the key index beside the database, for the next start to load instead of
    /// rebuilding (see `MvccStore::save_index_image`). Call it at a clean stop, once nothing
    /// applies any more and the state is flushed.
    ///
    /// # Errors
    /// Storage failure, or the file cannot be written.
    pub fn save_index_image(&self) -> Result<(), StorageError> {
        let leased: Vec<(Vec<u8>, i64)> = {
            let lessor = self.lessor.lock();
            lessor
                .ids()
                .into_iter()
                .filter_map(|id| lessor.get(id))
                .flat_map(|lease| lease.keys.iter().map(|k| (k.clone(), lease.id)))
                .collect()
        };
        self.mvcc
            .read()
            .save_index_image(leased)
            .map_err(storage_error)
    }

    /// Replaces the state tree through `replace` and reloads every part from storage; watchers
    /// catch up from the new history.
    ///
    /// # Errors
    /// Storage failure or corrupt records.
    pub fn reload_with(
        &self,
        engine: &Engine,
        replace: impl FnOnce() -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        // Readers must not see the state tree half replaced: hold the MVCC lock throughout.
        let mut mvcc = self.mvcc.write();
        replace()?;
        let mut store = open_mvcc(engine)?;
        let (min_ttl, primary, extension) = {
            let l = self.lessor.lock();
            (l.min_ttl(), l.is_primary(), l.promote_extension())
        };
        let mut lessor = crate::lease::persist::load(engine, &mut store, min_ttl)?;
        lessor.set_promote_extension(extension);
        if primary {
            lessor.promote(crate::lease::now());
        }
        *mvcc = store;
        drop(mvcc);
        *self.lessor.lock() = lessor;
        *self.membership.write() = Membership::load(engine)?;
        *self.alarms.write() = Alarms::load(engine)?;
        *self.auth.write() = crate::auth::AuthStore::load(engine)?;
        self.hub.resync_all();
        Ok(())
    }
}

fn open_mvcc(engine: &Engine) -> Result<MvccStore, StorageError> {
    MvccStore::open(engine.clone()).map_err(storage_error)
}

fn storage_error(e: MvccError) -> StorageError {
    match e {
        MvccError::Storage(s) => s,
        other => StorageError::Corrupt {
            what: "mvcc".into(),
            detail: other.to_string(),
        },
    }
}

/// Ends `batch` with the commit record: the applied index and the current revision.
pub fn write_applied_index(batch: &mut StateBatch, index: u64, current_rev: i64) {
    mvcc::write_commit_record(batch, index, current_rev);
}

/// Writes raft's metadata of a restored snapshot into `batch`.
pub fn write_snapshot_meta(batch: &mut StateBatch, meta: &[u8]) {
    batch.put(SNAPSHOT_META, meta);
}

/// The applied index stored with the state (consistent with it while the MVCC lock is held).
///
/// # Errors
/// Storage failure.
pub fn read_applied_index(engine: &Engine) -> Result<u64, StorageError> {
    let commit = mvcc::stored_commit(engine).map_err(|e| match e {
        MvccError::Storage(s) => s,
        other => StorageError::Corrupt {
            what: "commit record".into(),
            detail: other.to_string(),
        },
    })?;
    if let Some((applied, _)) = commit {
        return Ok(applied);
    }
    // A data dir of an older kvd, before the commit record.
    Ok(engine
        .state_get(APPLIED_INDEX)?
        .and_then(|b| b.as_slice().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}
