//! What every service shares: the replicated state, the raft handle, limits, response headers,
//! proposing a command and waiting for its outcome, and the linearizable read barrier.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use super::status::ApiError;
use crate::apply::{ApplyResponse, SharedState};
use crate::proto::etcdserverpb::{alarm_request, AlarmRequest, AlarmType, ResponseHeader};
use crate::proto::kvdpb::{command::Op, Command};
use crate::raft::transport::PeerDialer;
use crate::raft::RaftHandle;
use crate::storage::Engine;

/// The etcd version kvd speaks (what `Status` and `/version` report as `etcdserver`).
pub const ETCD_VERSION: &str = "3.4.23";
/// The cluster version reported by `/version`.
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";
/// Extra bytes gRPC may carry above `--max-request-bytes` (etcd's `grpcOverheadBytes`).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Committed entries that may wait to be applied before new proposals are refused (etcd's
/// `maxGapBetweenApplyAndCommitIndex`).
pub const MAX_APPLY_BACKLOG: u64 = 5000;

/// Refuses a proposal while apply is far behind commit, as etcd does: the client backs off
/// instead of queueing more work behind a backlog.
///
/// # Errors
/// [`ApiError::TooManyRequests`].
pub fn check_apply_backlog(commit: u64, applied: u64) -> Result<(), ApiError> {
    if commit > applied + MAX_APPLY_BACKLOG {
        return Err(ApiError::TooManyRequests);
    }
    Ok(())
}

/// Request limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// `--quota-backend-bytes` (already defaulted).
    pub quota_bytes: u64,
}

/// Shared by all services of a member.
pub struct Core {
    /// Replicated state.
    pub state: SharedState,
    /// The raft node.
    pub raft: RaftHandle,
    /// The storage engine.
    pub engine: Engine,
    /// This member.
    pub member_id: u64,
    /// Limits.
    pub limits: Limits,
    /// How long a proposal may take (etcd: 5 s + 2 election timeouts).
    pub request_timeout: Duration,
    /// Connections to other members (lease forwarding).
    pub peers: Arc<PeerDialer>,
    /// The cluster token (new member IDs derive from it).
    pub cluster_token: String,
    next_id: AtomicU64,
}

/// Settings of a [`Core`] that come from the configuration.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Request limits.
    pub limits: Limits,
    /// How long a proposal may take.
    pub request_timeout: Duration,
    /// The cluster token.
    pub cluster_token: String,
}

impl Core {
    /// Creates the core.
    pub fn new(
        state: SharedState,
        raft: RaftHandle,
        engine: Engine,
        member_id: u64,
        settings: CoreSettings,
        peers: Arc<PeerDialer>,
    ) -> Arc<Self> {
        let CoreSettings {
            limits,
            request_timeout,
            cluster_token,
        } = settings;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Like etcd's id generator: member prefix, time, then a counter.
        let base = ((member_id & 0xffff) << 48) | ((now_ms & 0xff_ffff_ffff) << 8);
        Arc::new(Self {
            state,
            raft,
            engine,
            member_id,
            limits,
            request_timeout,
            peers,
            cluster_token,
            next_id: AtomicU64::new(base),
        })
    }

    /// Resolves once this member's raft has stopped (the member is shutting down): long-lived
    /// streams end then, instead of holding up the shutdown.
    pub async fn stopped(&self) {
        // The leader watch changes rarely (unlike the status), and closes when raft stops.
        let mut leader = self.raft.leader_watch();
        while leader.changed().await.is_ok() {}
    }

    /// The cluster ID.
    pub fn cluster_id(&self) -> u64 {
        self.state.membership.read().cluster_id
    }

    /// A response header with `revision` (0 = the current revision).
    pub fn header(&self, revision: i64) -> Option<ResponseHeader> {
        let revision = if revision == 0 {
            self.state.mvcc.read().current_rev()
        } else {
            revision
        };
        Some(ResponseHeader {
            cluster_id: self.cluster_id(),
            member_id: self.member_id,
            revision,
            raft_term: self.raft.status().term,
        })
    }

    /// Fills a header that apply left partly empty.
    pub fn fill(&self, header: &mut Option<ResponseHeader>) {
        let rev = header.as_ref().map_or(0, |h| h.revision);
        *header = self.header(rev);
    }

    /// A fresh ID unique to this member.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Proposes `op` and waits until it is applied.
    ///
    /// A proposal in flight when the leader changes may have been lost with the old leader.
    /// Once the new leader has committed an entry of its own term (a read barrier), any entry of
    /// an older term that is not applied by then can never be committed, so the proposal is made
    /// again — it is applied exactly once either way.
    ///
    /// # Errors
    /// Request too large, no leader, timeout, or the refusal apply returned.
    pub async fn propose(&self, op: Op) -> Result<ApplyResponse, ApiError> {
        let id = self.next_id();
        let proposed_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let auth = self.command_auth().await?;
        let data = Command {
            id,
            proposed_at_ms,
            auth,
            op: Some(op),
        }
        .encode_to_vec();
        if data.len() > self.limits.max_request_bytes {
            return Err(ApiError::RequestTooLarge);
        }
        let status = self.raft.status();
        check_apply_backlog(status.commit, status.applied)?;
        let mut rx = self.state.waiters.register(id);
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut leader = self.raft.leader_watch();
        let mut term = leader.borrow_and_update().1;
        let outcome = tokio::time::timeout_at(deadline, async {
            self.raft.propose(data.clone()).await?;
            loop {
                tokio::select! {
                    result = &mut rx => return result.map_err(|_| ApiError::Stopped),
                    changed = leader.changed() => {
                        changed.map_err(|_| ApiError::Stopped)?;
                        let (now_leader, now_term) = *leader.borrow_and_update();
                        if now_leader == 0 || now_term <= term {
                            continue;
                        }
                        term = now_term;
                        match self.raft.read_index().await {
                            // Yet another leader: its own change notification follows.
                            Err(crate::raft::ProposeError::LeaderChanged) => continue,
                            other => other?,
                        };
                        if let Ok(result) = rx.try_recv() {
                            return Ok(result);
                        }
                        tracing::debug!(id, term, "proposal lost with the previous leader; proposing again");
                        self.raft.propose(data.clone()).await?;
                    }
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(result)) => result.map_err(ApiError::from),
            Ok(Err(e)) => {
                self.state.waiters.cancel(id);
                Err(e)
            }
            Err(_) => {
                self.state.waiters.cancel(id);
                if self.raft.status().leader == 0 {
                    Err(ApiError::NoLeader)
                } else {
                    Err(ApiError::Timeout)
                }
            }
        }
    }

    /// A learner serves only serializable reads and status, as in etcd.
    ///
    /// # Errors
    /// [`ApiError::NotSupportedForLearner`] on a learner.
    pub fn reject_learner(&self) -> Result<(), ApiError> {
        let learner = self
            .state
            .membership
            .read()
            .members
            .get(&self.member_id)
            .is_some_and(|m| m.is_learner);
        if learner {
            return Err(ApiError::NotSupportedForLearner);
        }
        Ok(())
    }

    /// Waits until this member may serve a linearizable read.
    ///
    /// # Errors
    /// No leader or timeout.
    pub async fn read_barrier(&self) -> Result<(), ApiError> {
        match tokio::time::timeout(self.request_timeout, self.raft.read_index()).await {
            Ok(r) => r.map(|_| ()).map_err(ApiError::from),
            Err(_) => {
                if self.raft.status().leader == 0 {
                    Err(ApiError::NoLeader)
                } else {
                    Err(ApiError::Timeout)
                }
            }
        }
    }

    /// Refuses a write that the space quota does not allow, raising the NOSPACE alarm when the
    /// quota is first exceeded (as etcd does).
    ///
    /// # Errors
    /// [`ApiError::NoSpace`].
    pub async fn check_quota(&self, cost: usize) -> Result<(), ApiError> {
        if self.state.alarms.read().has(AlarmType::Nospace as i32) {
            return Err(ApiError::NoSpace);
        }
        let size = self.state.mvcc.read().size_bytes();
        if size + cost as u64 <= self.limits.quota_bytes {
            return Ok(());
        }
        let alarm = AlarmRequest {
            action: alarm_request::AlarmAction::Activate as i32,
            member_id: self.member_id,
            alarm: AlarmType::Nospace as i32,
        };
        let _ = self.propose(Op::Alarm(alarm)).await;
        Err(ApiError::NoSpace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_are_refused_while_apply_lags_commit_by_more_than_etcds_gap() {
        assert_eq!(check_apply_backlog(100, 100), Ok(()));
        assert_eq!(check_apply_backlog(5100, 100), Ok(()));
        assert_eq!(
            check_apply_backlog(5101, 100),
            Err(ApiError::TooManyRequests)
        );
        let status = tonic::Status::from(ApiError::TooManyRequests);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), "etcdserver: too many requests");
    }
}
