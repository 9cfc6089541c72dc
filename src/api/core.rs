//! What every service shares: the replicated state, the raft handle, limits, response headers,
//! proposing a command and waiting for its outcome, and the linearizable read barrier.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use super::status::ApiError;
use crate::apply::Persisted;
use crate::apply::{ApplyResponse, SharedState};
use crate::proto::etcdserverpb::{alarm_request, AlarmRequest, AlarmType, ResponseHeader};
use crate::proto::kvdpb::{command::Op, Command};
use crate::raft::transport::PeerDialer;
use crate::raft::RaftHandle;

pub use crate::version::{ETCD_CLUSTER_VERSION, ETCD_VERSION};
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
    /// The state on disk (hash, sync, snapshot).
    pub persisted: Persisted,
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
    /// Whether the member has had no leader for long (see [`super::leader_monitor`]).
    pub leader_loss: Arc<super::leader_monitor::LeaderLoss>,
}

/// How one attempt of [`Core::propose`] ended.
enum Attempt {
    /// Applied, with this outcome.
    Applied(crate::apply::ApplyResult),
    /// Provably never applied: propose again.
    Void,
    /// Failed before an outcome was known.
    Failed(ApiError),
}

impl Attempt {
    fn from_outcome(
        outcome: Result<crate::apply::ApplyResult, tokio::sync::oneshot::error::RecvError>,
    ) -> Self {
        match outcome {
            Ok(Err(crate::apply::ApplyError::Fenced)) => Attempt::Void,
            Ok(result) => Attempt::Applied(result),
            Err(_) => Attempt::Failed(ApiError::Stopped),
        }
    }
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
        persisted: Persisted,
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
            persisted,
            member_id,
            limits,
            request_timeout,
            peers,
            cluster_token,
            next_id: AtomicU64::new(base),
            leader_loss: Arc::default(),
        })
    }

    /// Refuses a request that carries `hasleader: true` while no leader is known, as etcd's
    /// interceptor does.
    ///
    /// # Errors
    /// [`ApiError::NoLeader`].
    pub fn check_required_leader(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(), ApiError> {
        if super::leader_monitor::requires_leader(metadata) && self.raft.status().leader == 0 {
            return Err(ApiError::NoLeader);
        }
        Ok(())
    }

    /// Resolves once the member has had no leader for long: streams that require a leader end
    /// then with `etcdserver: no leader`.
    pub async fn leader_lost(&self) {
        self.leader_loss.wait().await;
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

    /// Proposes `op` and waits until it is applied: exactly once if it is acknowledged, at most
    /// once if not.
    ///
    /// A proposal in flight when the leader changes may have been lost with the old leader.
    /// Each attempt carries a fence term (see [`RaftHandle::propose`]), so once a leader of a
    /// later term has committed an entry (a read barrier through it) and this member has applied
    /// up to it, an attempt not applied by then provably never takes effect: it is proposed
    /// again under a new ID instead of waiting out the request timeout.
    ///
    /// # Errors
    /// Request too large, no leader, timeout, or the refusal apply returned.
    pub async fn propose(&self, op: Op) -> Result<ApplyResponse, ApiError> {
        let proposed_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let auth = self.command_auth().await?;
        let mut command = Command {
            id: 0,
            proposed_at_ms,
            auth,
            op: Some(op),
        };
        let status = self.raft.status();
        check_apply_backlog(status.commit, status.applied)?;
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut leader_changed = false;
        loop {
            command.id = self.next_id();
            let data = command.encode_to_vec();
            if data.len() > self.limits.max_request_bytes {
                return Err(ApiError::RequestTooLarge);
            }
            let id = command.id;
            let attempt = self.attempt(id, data, &mut leader_changed);
            let outcome = tokio::time::timeout_at(deadline, attempt).await;
            if !matches!(outcome, Ok(Attempt::Applied(_) | Attempt::Void)) {
                crate::metrics::server::PROPOSALS_FAILED.inc();
            }
            match outcome {
                Ok(Attempt::Applied(result)) => return result.map_err(ApiError::from),
                Ok(Attempt::Void) => {
                    tracing::debug!(id, "proposal lost with a previous leader; proposing again");
                }
                Ok(Attempt::Failed(e)) => {
                    self.state.waiters.cancel(id);
                    return Err(e);
                }
                Err(_) => {
                    self.state.waiters.cancel(id);
                    return Err(if leader_changed {
                        ApiError::TimeoutDueToLeaderFail
                    } else if self.raft.status().leader == 0 {
                        ApiError::NoLeader
                    } else {
                        ApiError::Timeout
                    });
                }
            }
        }
    }

    /// One proposal of `data` under `id`, until it is applied or provably void.
    async fn attempt(&self, id: u64, data: Vec<u8>, leader_changed: &mut bool) -> Attempt {
        let mut rx = self.state.waiters.register(id);
        let mut leader = self.raft.leader_watch();
        leader.borrow_and_update();
        let fence = match self.raft.propose(data).await {
            Ok(fence) => fence,
            Err(e) => return Attempt::Failed(e.into()),
        };
        loop {
            tokio::select! {
                result = &mut rx => return Attempt::from_outcome(result),
                changed = leader.changed() => {
                    if changed.is_err() {
                        return Attempt::Failed(ApiError::Stopped);
                    }
                    let (now_leader, now_term) = *leader.borrow_and_update();
                    if now_leader == 0 || now_term <= fence {
                        continue;
                    }
                    *leader_changed = true;
                    // Applied up to what a leader of a later term has committed: the attempt
                    // took effect by now, or it never will.
                    match self.raft.read_index().await {
                        Ok(_) => {}
                        // Yet another leader: its own change notification follows.
                        Err(crate::raft::ProposeError::LeaderChanged) => continue,
                        Err(e) => return Attempt::Failed(e.into()),
                    }
                    return match rx.try_recv() {
                        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                            self.state.waiters.cancel(id);
                            Attempt::Void
                        }
                        Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                            Attempt::Failed(ApiError::Stopped)
                        }
                        Ok(result) => Attempt::from_outcome(Ok(result)),
                    };
                }
            }
        }
    }

    /// Whether this member is a learner in the member list it has applied.
    pub fn is_learner(&self) -> bool {
        self.state
            .membership
            .read()
            .members
            .get(&self.member_id)
            .is_some_and(|m| m.is_learner)
    }

    /// A learner serves only serializable reads and status, as in etcd.
    ///
    /// # Errors
    /// [`ApiError::NotSupportedForLearner`] on a learner.
    pub fn reject_learner(&self) -> Result<(), ApiError> {
        if self.is_learner() {
            return Err(ApiError::NotSupportedForLearner);
        }
        Ok(())
    }

    /// Waits until this member may serve a linearizable read.
    ///
    /// # Errors
    /// No leader or timeout.
    pub async fn read_barrier(&self) -> Result<(), ApiError> {
        let read = tokio::time::timeout(self.request_timeout, self.raft.read_index()).await;
        crate::metrics::server::read_index_outcome(!matches!(read, Ok(Ok(_))), read.is_err());
        match read {
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
        // A disk that is almost full counts as an exhausted quota (measured again here, so a
        // disk that has room again is seen at once).
        let disk_low = self
            .state
            .space
            .as_ref()
            .is_some_and(|s| s.is_low() && s.check());
        let size = self.state.mvcc.read().size_bytes();
        if !disk_low && size + cost as u64 <= self.limits.quota_bytes {
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
