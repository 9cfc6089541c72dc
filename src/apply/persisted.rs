//! The member's persisted state as the API sees it: made durable on demand, hashed, and
//! asked for the applied index — without the storage engine being visible outside `apply/`.

use crate::storage::{Engine, StorageError};

/// A handle on the state kept on disk, for the services that need more than the in-memory
/// views of [`super::SharedState`] (defragment, hash, snapshot, token catch-up).
#[derive(Clone)]
pub struct Persisted {
    engine: Engine,
}

impl Persisted {
    /// Wraps the engine the applier writes to.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Makes everything applied so far durable (etcd's defragment ends the same way).
    ///
    /// # Errors
    /// Storage failure.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.engine.flush()
    }

    /// The checksum of all state records (the Maintenance `Hash` answer).
    ///
    /// # Errors
    /// Storage failure.
    pub fn checksum(&self) -> Result<u32, StorageError> {
        self.engine.state_checksum()
    }

    /// The raft index the persisted state reflects.
    ///
    /// # Errors
    /// Storage failure or a corrupt commit record.
    pub fn applied_index(&self) -> Result<u64, StorageError> {
        super::read_applied_index(&self.engine)
    }

    /// The engine, for the snapshot exporter.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}
