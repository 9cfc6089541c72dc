//! Proposers waiting for the outcome of their commands, by proposal ID.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::ApplyError;
use crate::proto::etcdserverpb::{
    AlarmResponse, CompactionResponse, DeleteRangeResponse, LeaseGrantResponse,
    LeaseRevokeResponse, PutResponse, TxnResponse,
};

/// The response of an applied command.
#[derive(Debug, Clone)]
pub enum ApplyResponse {
    /// Put.
    Put(PutResponse),
    /// DeleteRange.
    DeleteRange(DeleteRangeResponse),
    /// Txn.
    Txn(TxnResponse),
    /// Compact.
    Compaction(CompactionResponse),
    /// LeaseGrant.
    LeaseGrant(LeaseGrantResponse),
    /// LeaseRevoke.
    LeaseRevoke(LeaseRevokeResponse),
    /// Alarm.
    Alarm(AlarmResponse),
    /// A membership change: the member list after it.
    Members(Vec<crate::proto::etcdserverpb::Member>),
    /// Authenticate: the simple token assigned.
    AuthToken(String),
    /// Nothing to report.
    Empty,
}

/// A command's outcome.
pub type ApplyResult = Result<ApplyResponse, ApplyError>;

/// Pending proposals.
#[derive(Default)]
pub struct Waiters {
    pending: Mutex<HashMap<u64, oneshot::Sender<ApplyResult>>>,
}

impl Waiters {
    /// Registers proposal `id`; the receiver gets its outcome.
    pub fn register(&self, id: u64) -> oneshot::Receiver<ApplyResult> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        rx
    }

    /// How many proposals wait for their outcome.
    pub fn pending(&self) -> usize {
        self.pending.lock().len()
    }

    /// Forgets proposal `id` (the proposer gave up).
    pub fn cancel(&self, id: u64) {
        self.pending.lock().remove(&id);
    }

    /// Delivers the outcome of proposal `id`, if someone waits for it here.
    pub fn complete(&self, id: u64, result: ApplyResult) {
        if let Some(tx) = self.pending.lock().remove(&id) {
            let _ = tx.send(result);
        }
    }
}
