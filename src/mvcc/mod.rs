//! Multi-version key-value state, numbered exactly as etcd numbers it.
//!
//! Owns revisions, the key index, ranges, transactions and compaction. Values live in storage
//! (`k` + encoded revision -> `mvccpb.KeyValue`); the index from key to revisions lives in memory
//! and is rebuilt at start. Knows nothing of raft, gRPC or leases' timers: lease existence is asked
//! through a closure and lease attachments are reported back to the caller.

mod encoded;
mod index_image;
mod key_index;
mod ops;
mod revision;
mod store;

pub use ops::{
    check_txn_requests, compare_path, delete_range, is_read_only, put, range, run_read_only_txn,
    run_txn, start_range_encoded,
};
pub use revision::Revision;
pub use store::{stored_commit, write_commit_record, Event, EventKind, MvccStore, WriteTxn};

use thiserror::Error;

use crate::storage::StorageError;

/// What can go wrong in an MVCC operation.
#[derive(Debug, Error)]
pub enum MvccError {
    /// The requested revision has been compacted.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// The requested revision is later than the current one.
    #[error("mvcc: required revision is a future revision")]
    FutureRev,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("key not found")]
    KeyNotFound,
    /// A put names a lease that does not exist.
    #[error("requested lease not found")]
    LeaseNotFound,
    /// Storage failed: fatal.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Result alias for MVCC operations.
pub type Result<T> = std::result::Result<T, MvccError>;
