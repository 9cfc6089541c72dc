//! The Lease service: grant, revoke, keep-alive, time-to-live, list; and the leader's expiry
//! loop that revokes expired leases through raft.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, instrument};

use super::core::Core;
use super::status::ApiError;
use crate::apply::ApplyResponse;
use crate::lease::MAX_LEASE_TTL;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use crate::proto::kvdpb::command::Op;

/// The Lease service.
pub struct LeaseService {
    core: Arc<Core>,
}

impl LeaseService {
    /// A Lease service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

/// Grants a lease (generating an ID when none is given).
///
/// # Errors
/// TTL too large, quota, proposal or apply errors.
pub async fn grant(core: &Core, mut g: LeaseGrantRequest) -> Result<LeaseGrantResponse, ApiError> {
    if g.ttl > MAX_LEASE_TTL {
        return Err(ApiError::LeaseTtlTooLarge);
    }
    core.check_quota(16).await?;
    if g.id == 0 {
        // etcd's IDs: the member's request ID generator, so leases granted later sort later.
        g.id = loop {
            let id = i64::try_from(core.next_id() & (i64::MAX as u64)).unwrap_or(1);
            if id != 0 && !core.state.lessor.lock().exists(id) {
                break id;
            }
        };
    }
    match core.propose(Op::LeaseGrant(g)).await? {
        ApplyResponse::LeaseGrant(mut r) => {
            core.fill(&mut r.header);
            Ok(r)
        }
        _ => Err(ApiError::Corrupt),
    }
}

/// Revokes a lease, deleting its keys.
///
/// # Errors
/// Lease not found, proposal errors.
pub async fn revoke(core: &Core, r: LeaseRevokeRequest) -> Result<LeaseRevokeResponse, ApiError> {
    // Checked when applied, in log order, as etcd checks it.
    match core.propose(Op::LeaseRevoke(r)).await? {
        ApplyResponse::LeaseRevoke(mut r) => {
            core.fill(&mut r.header);
            Ok(r)
        }
        _ => Err(ApiError::Corrupt),
    }
}

/// The leader's ID, waiting a little for an election.
async fn leader(core: &Core) -> Result<u64, ApiError> {
    core.raft
        .wait_leader(core.request_timeout)
        .await
        .map_err(ApiError::from)
}

/// Renews a lease; TTL 0 in the answer means it does not exist (as etcd answers). Only the
/// leader keeps lease deadlines: a follower forwards the renewal to it.
///
/// # Errors
/// No leader, or the leader could not be reached.
pub async fn keep_alive_once(core: &Core, id: i64) -> Result<LeaseKeepAliveResponse, ApiError> {
    let leader = leader(core).await?;
    let ttl = if leader == core.member_id {
        // Renewals only make sense once this member has applied what it committed as leader.
        core.read_barrier().await?;
        let renewed = core.state.lessor.lock().renew(id, crate::lease::now());
        match renewed {
            Ok(ttl) => ttl,
            Err(crate::lease::LeaseError::NotFound) => 0,
            Err(e) => return Err(e.into()),
        }
    } else {
        let mut client = core.peers.client(leader).await.ok_or(ApiError::NoLeader)?;
        let req = crate::proto::kvdpb::LeaseRenewRequest {
            header: Some(core.peers.header()),
            id,
        };
        match client.lease_renew(req).await {
            Ok(r) => r.into_inner().ttl,
            Err(e) => {
                core.peers.forget(leader);
                debug!(error = %e, "forwarding a lease renewal to the leader failed");
                return Err(ApiError::NoLeader);
            }
        }
    };
    Ok(LeaseKeepAliveResponse {
        header: core.header(0),
        id,
        ttl,
    })
}

/// Remaining and granted TTL of a lease (TTL -1 when it does not exist, as etcd answers).
///
/// # Errors
/// Read barrier errors, or the leader could not be reached.
pub async fn time_to_live(
    core: &Core,
    r: &LeaseTimeToLiveRequest,
) -> Result<LeaseTimeToLiveResponse, ApiError> {
    core.read_barrier().await?;
    let keys: Option<Vec<Vec<u8>>> = {
        let lessor = core.state.lessor.lock();
        lessor.get(r.id).map(|l| {
            if r.keys {
                l.keys.iter().cloned().collect()
            } else {
                Vec::new()
            }
        })
    };
    let Some(keys) = keys else {
        return Ok(LeaseTimeToLiveResponse {
            header: core.header(0),
            id: r.id,
            ttl: -1,
            ..Default::default()
        });
    };
    let leader = leader(core).await?;
    let (ttl, granted_ttl) = if leader == core.member_id {
        let lessor = core.state.lessor.lock();
        match lessor.get(r.id) {
            Some(l) => (l.remaining_secs(crate::lease::now()), l.ttl),
            None => (-1, 0),
        }
    } else {
        let mut client = core.peers.client(leader).await.ok_or(ApiError::NoLeader)?;
        let req = crate::proto::kvdpb::LeaseTtlRequest {
            header: Some(core.peers.header()),
            id: r.id,
        };
        match client.lease_ttl(req).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                (resp.ttl, resp.granted_ttl)
            }
            Err(e) => {
                core.peers.forget(leader);
                debug!(error = %e, "forwarding a lease query to the leader failed");
                return Err(ApiError::NoLeader);
            }
        }
    };
    if ttl < 0 {
        return Ok(LeaseTimeToLiveResponse {
            header: core.header(0),
            id: r.id,
            ttl: -1,
            ..Default::default()
        });
    }
    Ok(LeaseTimeToLiveResponse {
        header: core.header(0),
        id: r.id,
        ttl,
        granted_ttl,
        keys,
    })
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    #[instrument(skip_all)]
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        Ok(Response::new(
            grant(&self.core, request.into_inner()).await?,
        ))
    }

    #[instrument(skip_all)]
    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        Ok(Response::new(
            revoke(&self.core, request.into_inner()).await?,
        ))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        self.core.check_required_leader(request.metadata())?;
        let requires_leader = super::leader_monitor::requires_leader(request.metadata());
        let core = self.core.clone();
        let stopped = {
            let core = self.core.clone();
            async move { core.stopped().await }
        };
        let inbound = request.into_inner().take_until(Box::pin(stopped));
        let replies = inbound.then(move |req| {
            let core = core.clone();
            async move {
                let req = req?;
                keep_alive_once(&core, req.id).await.map_err(Status::from)
            }
        });
        if !requires_leader {
            return Ok(Response::new(Box::pin(replies)));
        }
        // As etcd: a stream that requires a leader ends when there has been none for a while.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let core = self.core.clone();
        tokio::spawn(crate::auth::credentials::inherit(async move {
            let mut replies = Box::pin(replies);
            loop {
                tokio::select! {
                    reply = replies.next() => match reply {
                        Some(reply) => {
                            if tx.send(reply).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    },
                    () = core.leader_lost() => {
                        let _ = tx.send(Err(ApiError::NoLeader.into())).await;
                        return;
                    }
                }
            }
        }));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    #[instrument(skip_all)]
    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        Ok(Response::new(
            time_to_live(&self.core, request.get_ref()).await?,
        ))
    }

    #[instrument(skip_all)]
    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.core.read_barrier().await?;
        let leases = self
            .core
            .state
            .lessor
            .lock()
            .ids()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: self.core.header(0),
            leases,
        }))
    }
}

/// On the leader, revokes expired leases through raft until `shutdown`.
pub async fn run_expiry(core: Arc<Core>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let expired = core.state.lessor.lock().expired(crate::lease::now());
        for id in expired {
            debug!(lease = format!("{id:016x}"), "lease expired; revoking");
            crate::metrics::lease::EXPIRED.inc();
            if let Err(e) = revoke(&core, LeaseRevokeRequest { id }).await {
                debug!(lease = format!("{id:016x}"), error = %e, "revoking an expired lease failed");
            }
        }
    }
}
