//! Raft: the raft-rs `RawNode` driver, the log store, and the interface to the state machine.
//!
//! One task ([`node::RaftNode::run`]) owns the `RawNode`; everything else talks to it through a
//! cloneable [`RaftHandle`]. This module knows nothing of keys: committed entries go to a
//! [`StateMachine`] as opaque bytes. raft-rs's own types (`eraftpb`) stay inside this module.

mod force;
mod log_store;
mod node;
pub mod transport;

pub use force::force_new_cluster;
pub use log_store::{LogBatch, LogStore, SnapshotSource};
pub use node::{NodeError, RaftConfig, RaftHandle, RaftNode};
// Named outside this module only by the simulated network of `crate::sim`.
#[cfg(test)]
pub use node::Transport;

use thiserror::Error;

use crate::storage::StorageError;

/// Why a proposal or read could not be served.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// No leader is known.
    #[error("no leader")]
    NoLeader,
    /// The request did not finish in time.
    #[error("request timed out")]
    Timeout,
    /// The node is shutting down.
    #[error("server stopped")]
    Stopped,
    /// The leader changed while the request was in flight.
    #[error("leader changed")]
    LeaderChanged,
    /// raft refused the proposal (for example a configuration change is still pending).
    #[error("proposal refused")]
    Busy,
}

/// What raft knows of a member's replication progress (leader only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Highest log index known to be replicated on the member.
    pub matched: u64,
    /// True while the leader has heard from it recently.
    pub recent_active: bool,
}

/// A membership change carried by a committed configuration entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// A voter was added (or a learner promoted).
    AddVoter(u64),
    /// A learner was added.
    AddLearner(u64),
    /// A member was removed.
    Remove(u64),
}

/// One committed log entry, as the state machine sees it.
#[derive(Debug, Clone)]
pub enum Committed {
    /// A normal entry (empty data for the leader's no-op).
    Normal {
        /// Log index.
        index: u64,
        /// The proposed bytes.
        data: Vec<u8>,
    },
    /// A proposal that reached the log in a later term than it was made in (see
    /// [`RaftHandle::propose`]): it must have no effect, but its proposer may wait for it.
    Fenced {
        /// Log index.
        index: u64,
        /// The proposed bytes.
        data: Vec<u8>,
    },
    /// A configuration change, already applied to raft's configuration.
    ConfChange {
        /// Log index.
        index: u64,
        /// The changes.
        changes: Vec<MemberChange>,
        /// The proposer's context bytes.
        context: Vec<u8>,
    },
}

impl Committed {
    /// The log index.
    pub fn index(&self) -> u64 {
        match self {
            Committed::Normal { index, .. }
            | Committed::Fenced { index, .. }
            | Committed::ConfChange { index, .. } => *index,
        }
    }
}

/// What raft drives: applies committed entries in order, with the applied index.
pub trait StateMachine: Send + 'static {
    /// The index of the last applied entry (stored with the state it produced).
    fn applied_index(&self) -> u64;

    /// The applied index the state holds durably (a crash keeps at least this much): log
    /// entries after it must stay in the WAL, to be applied again after a crash.
    fn durable_index(&self) -> u64;

    /// The raft metadata stored with the last snapshot restored, if any (see
    /// [`StateMachine::restore`]).
    fn snapshot_meta(&self) -> Option<Vec<u8>>;

    /// Applies entries in log order.
    ///
    /// # Errors
    /// A storage failure; the node stops (fail-stop), it never skips an entry.
    fn apply(&mut self, entries: Vec<Committed>) -> Result<(), StorageError>;

    /// Replaces the whole state with a snapshot's `data` taken at raft `index`, durably, and
    /// keeps `raft_meta` (raft's encoded snapshot metadata) with it.
    ///
    /// # Errors
    /// Storage failure or data that cannot be read.
    fn restore(&mut self, index: u64, data: &[u8], raft_meta: &[u8]) -> Result<(), StorageError>;

    /// Leadership changed: `leader` is the new leader's ID (0 = none).
    fn on_leader_change(&mut self, leader: u64, term: u64, is_self: bool);
}

/// raft's snapshot metadata, encoded for [`StateMachine::restore`].
pub(crate) fn encode_snapshot_meta(meta: &raft::prelude::SnapshotMetadata) -> Vec<u8> {
    use protobuf::Message as _;
    meta.write_to_bytes().unwrap_or_default()
}

/// The snapshot metadata [`encode_snapshot_meta`] encoded, if the bytes hold one.
pub(crate) fn decode_snapshot_meta(bytes: &[u8]) -> Option<raft::prelude::SnapshotMetadata> {
    use protobuf::Message as _;
    let mut meta = raft::prelude::SnapshotMetadata::default();
    meta.merge_from_bytes(bytes).ok()?;
    Some(meta)
}
