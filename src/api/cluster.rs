//! The Cluster service: the member list and runtime reconfiguration through raft (add, also as
//! learner; promote; remove; update peer URLs), with etcd's safety checks and errors.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};
use tracing::info;

use super::core::Core;
use super::status::ApiError;
use crate::apply::ApplyResponse;
use crate::cluster::member_id_at;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::{
    Member as PbMember, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use crate::proto::kvdpb::{command::Op, ConfChangeContext, MemberUpdate};
use crate::raft::MemberChange;

/// etcd lets a learner be promoted once it has 90% of the leader's log.
const LEARNER_READY_PERCENT: f64 = 0.9;
/// etcd 3.4 allows one learner at a time.
const MAX_LEARNERS: usize = 1;

/// The Cluster service.
pub struct ClusterService {
    core: Arc<Core>,
}

impl ClusterService {
    /// A Cluster service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    async fn change(
        &self,
        changes: Vec<MemberChange>,
        ctx: ConfChangeContext,
    ) -> Result<Vec<PbMember>, ApiError> {
        let id = ctx.proposal_id;
        let rx = self.core.state.waiters.register(id);
        let outcome = tokio::time::timeout(self.core.request_timeout, async {
            self.core
                .raft
                .propose_conf_change(changes, ctx.encode_to_vec())
                .await?;
            rx.await.map_err(|_| ApiError::Stopped)
        })
        .await;
        match outcome {
            Ok(Ok(Ok(ApplyResponse::Members(m)))) => Ok(m),
            Ok(Ok(Ok(_))) => Err(ApiError::Corrupt),
            Ok(Ok(Err(e))) => Err(e.into()),
            Ok(Err(e)) => {
                self.core.state.waiters.cancel(id);
                Err(e)
            }
            Err(_) => {
                self.core.state.waiters.cancel(id);
                Err(ApiError::Timeout)
            }
        }
    }

    /// etcd's strict reconfiguration checks. `started` members are those that have published
    /// their name; `adding` counts one more voter (a new member, or the learner being promoted,
    /// started when `adding_started`; `promoting` when it is a promotion); `removing` leaves one
    /// out. Connectivity is checked (except for a promotion, as etcd) on the
    /// leader only (it is the one that knows it).
    async fn check_reconfig(
        &self,
        adding: bool,
        adding_started: bool,
        removing: Option<u64>,
        promoting: bool,
    ) -> Result<(), ApiError> {
        let members = self.core.state.membership.read().members.clone();
        let voters: Vec<&crate::cluster::Member> =
            members.values().filter(|m| !m.is_learner).collect();
        let kept: Vec<&&crate::cluster::Member> =
            voters.iter().filter(|m| Some(m.id) != removing).collect();
        let nmembers = kept.len() + usize::from(adding);
        let nstarted = kept.iter().filter(|m| !m.name.is_empty()).count()
            + usize::from(adding && adding_started);
        // Adding a second member to a one-member cluster is how a restored cluster grows.
        let growing_single = adding && !adding_started && nstarted == 1 && nmembers == 2;
        if !growing_single && nstarted < nmembers / 2 + 1 {
            return Err(ApiError::MemberNotEnoughStarted);
        }
        if promoting {
            // As etcd (`mayPromoteMember`): a promotion checks started members only, not
            // whether every voter was heard from lately.
            return Ok(());
        }
        let progress = self.core.raft.progress().await?;
        if progress.is_empty() {
            return Ok(());
        }
        let connected = |id: u64| {
            id == self.core.member_id || progress.get(&id).is_some_and(|p| p.recent_active)
        };
        if let Some(id) = removing {
            if id != self.core.member_id && !connected(id) {
                return Ok(()); // a member that is down is safe to remove
            }
            let active = voters.iter().filter(|m| connected(m.id)).count();
            if active.saturating_sub(1) < 1 + (voters.len() - 1) / 2 {
                return Err(ApiError::Unhealthy);
            }
        } else if adding && !voters.iter().all(|m| connected(m.id)) {
            return Err(ApiError::Unhealthy);
        }
        Ok(())
    }
}

impl ClusterService {
    /// Promotes learner `id` if this member leads (etcd's checks: a learner, in sync with the
    /// leader, enough started members).
    ///
    /// # Errors
    /// [`ApiError::NotLeader`] on a follower, or the refusal etcd gives.
    pub async fn promote_on_leader(&self, id: u64) -> Result<Vec<PbMember>, ApiError> {
        match self.core.state.membership.read().members.get(&id) {
            None => return Err(ApiError::MemberNotFound),
            Some(m) if !m.is_learner => return Err(ApiError::MemberNotLearner),
            Some(_) => {}
        }
        let progress = self.core.raft.progress().await?;
        if progress.is_empty() {
            return Err(ApiError::NotLeader);
        }
        let leader_match = progress.get(&self.core.member_id).map_or(0, |p| p.matched);
        let learner_match = progress.get(&id).map_or(0, |p| p.matched);
        if (learner_match as f64) < (leader_match as f64) * LEARNER_READY_PERCENT {
            return Err(ApiError::LearnerNotReady);
        }
        let started = self
            .core
            .state
            .membership
            .read()
            .members
            .get(&id)
            .is_some_and(|m| !m.name.is_empty());
        self.check_reconfig(true, started, None, true).await?;
        let ctx = ConfChangeContext {
            proposal_id: self.core.next_id(),
            ..Default::default()
        };
        let members = self.change(vec![MemberChange::AddVoter(id)], ctx).await?;
        info!(member = format!("{id:x}"), "learner promoted");
        crate::metrics::server::LEARNER_PROMOTE_SUCCESSES.inc();
        Ok(members)
    }

    /// Sends a promotion to the leader over the peer listener and returns its answer; a
    /// refusal comes back as the leader's own etcd status. Follows leader changes until the
    /// request timeout, as etcd's forwarding loop does.
    async fn forward_promote(&self, id: u64) -> Result<Vec<PbMember>, Status> {
        let deadline = tokio::time::Instant::now() + self.core.request_timeout;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let leader = self
                .core
                .raft
                .wait_leader(remaining)
                .await
                .map_err(ApiError::from)?;
            if leader == self.core.member_id {
                return self.promote_on_leader(id).await.map_err(Status::from);
            }
            let forwarded = async {
                let mut client = self.core.peers.client(leader).await?;
                let req = crate::proto::kvdpb::MemberPromoteForward {
                    header: Some(self.core.peers.header()),
                    id,
                };
                Some(client.member_promote(req).await)
            };
            match tokio::time::timeout_at(deadline, forwarded).await {
                Err(_) => return Err(ApiError::Timeout.into()),
                Ok(Some(Ok(resp))) => return Ok(resp.into_inner().members),
                Ok(Some(Err(status))) if status.message().starts_with("etcdserver: ") => {
                    let (code, message) = ApiError::NotLeader.code_and_message();
                    if status.code() != code || status.message() != message {
                        return Err(status);
                    }
                    // The leader changed on the way: ask the new one.
                }
                Ok(Some(Err(status))) => {
                    self.core.peers.forget(leader);
                    tracing::debug!(error = %status, "forwarding a promotion to the leader failed");
                }
                Ok(None) => self.core.peers.forget(leader),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::Timeout.into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

fn valid_urls(urls: &[String]) -> bool {
    !urls.is_empty()
        && urls.iter().all(|u| {
            url::Url::parse(u).is_ok_and(|p| {
                matches!(p.scheme(), "http" | "https")
                    && p.host_str().is_some()
                    && p.port().is_some()
            })
        })
}

impl ClusterService {
    /// etcd's Cluster service header: cluster, member and raft term, no revision.
    fn header(&self) -> Option<crate::proto::etcdserverpb::ResponseHeader> {
        let mut header = self.core.header(0);
        if let Some(h) = header.as_mut() {
            h.revision = 0;
        }
        header
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        self.core.authorize(crate::auth::check::Need::Admin).await?;
        let r = request.into_inner();
        if !valid_urls(&r.peer_ur_ls) {
            return Err(ApiError::MemberBadUrls.into());
        }
        {
            let m = self.core.state.membership.read();
            if m.members
                .values()
                .any(|x| x.peer_urls.iter().any(|u| r.peer_ur_ls.contains(u)))
            {
                return Err(ApiError::PeerUrlExist.into());
            }
            if r.is_learner && m.members.values().filter(|x| x.is_learner).count() >= MAX_LEARNERS {
                return Err(ApiError::TooManyLearners.into());
            }
        }
        if !r.is_learner {
            self.check_reconfig(true, false, None, false).await?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = member_id_at(&r.peer_ur_ls, &self.core.cluster_token, now);
        if self.core.state.membership.read().members.contains_key(&id) {
            return Err(ApiError::MemberExist.into());
        }
        let ctx = ConfChangeContext {
            proposal_id: self.core.next_id(),
            name: String::new(),
            peer_urls: r.peer_ur_ls.clone(),
            is_learner: r.is_learner,
            update_only: false,
        };
        let change = if r.is_learner {
            MemberChange::AddLearner(id)
        } else {
            MemberChange::AddVoter(id)
        };
        let members = self.change(vec![change], ctx).await?;
        info!(member = format!("{id:x}"), peer_urls = ?r.peer_ur_ls, learner = r.is_learner, "member added");
        let member = members.iter().find(|m| m.id == id).cloned();
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member,
            members,
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        self.core.authorize(crate::auth::check::Need::Admin).await?;
        let id = request.into_inner().id;
        let is_voter = match self.core.state.membership.read().members.get(&id) {
            Some(m) => !m.is_learner,
            None => return Err(ApiError::MemberNotFound.into()),
        };
        if is_voter {
            self.check_reconfig(false, false, Some(id), false).await?;
        }
        let ctx = ConfChangeContext {
            proposal_id: self.core.next_id(),
            ..Default::default()
        };
        let members = self.change(vec![MemberChange::Remove(id)], ctx).await?;
        info!(member = format!("{id:x}"), "member removed");
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members,
        }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        self.core.authorize(crate::auth::check::Need::Admin).await?;
        let r = request.into_inner();
        if !valid_urls(&r.peer_ur_ls) {
            return Err(ApiError::MemberBadUrls.into());
        }
        {
            let m = self.core.state.membership.read();
            if !m.members.contains_key(&r.id) {
                return Err(ApiError::MemberNotFound.into());
            }
            if m.members
                .values()
                .any(|x| x.id != r.id && x.peer_urls.iter().any(|u| r.peer_ur_ls.contains(u)))
            {
                return Err(ApiError::PeerUrlExist.into());
            }
        }
        let op = Op::MemberUpdate(MemberUpdate {
            member_id: r.id,
            peer_urls: r.peer_ur_ls,
        });
        match self.core.propose(op).await? {
            ApplyResponse::Members(members) => Ok(Response::new(MemberUpdateResponse {
                header: self.header(),
                members,
            })),
            _ => Err(ApiError::Corrupt.into()),
        }
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let members = self.core.state.membership.read().to_pb();
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members,
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        self.core.authorize(crate::auth::check::Need::Admin).await?;
        let id = request.into_inner().id;
        let members = match self.promote_on_leader(id).await {
            // Only the leader knows whether the learner is in sync: etcd forwards to it.
            Err(ApiError::NotLeader) => self.forward_promote(id).await?,
            other => other?,
        };
        Ok(Response::new(MemberPromoteResponse {
            header: self.header(),
            members,
        }))
    }
}
