//! The Election service (etcd's `v3electionpb.Election`): leader election per name.
//!
//! A candidate's key is `name/<lease hex>` with its proposal as value; the leader is the key under
//! `name/` with the smallest create revision. `Campaign` returns once the candidate leads,
//! `Proclaim` changes the leader's value, `Resign` deletes the leader key, `Leader` reads it and
//! `Observe` streams every leader and value in turn. Errors reach the client as etcd relays them.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::core::Core;
use super::kv;
use super::lock::{
    created_at, get_op, owner, prefix_end, prefix_of, put_op, range_kvs, release, session_lease,
    wait_deletes, waiter_key, HubWatch, ReleaseOnDrop,
};
use super::status::{relayed, ApiError};
use crate::mvcc::EventKind;
use crate::proto::etcdserverpb::{ResponseHeader, TxnRequest};
use crate::proto::mvccpb::KeyValue;
use crate::proto::v3electionpb::election_server::Election;
use crate::proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use crate::watch::WatchSpec;

/// The Election service.
pub struct ElectionService {
    core: Arc<Core>,
}

impl ElectionService {
    /// An Election service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

/// Puts `value` on the leader key if it still has create revision `rev`; returns the header.
async fn proclaim_at(
    core: &Core,
    key: &[u8],
    rev: i64,
    lease: i64,
    value: &[u8],
) -> Result<Option<ResponseHeader>, ApiError> {
    let t = TxnRequest {
        compare: vec![created_at(key, rev)],
        success: vec![put_op(key, value, lease)],
        failure: Vec::new(),
    };
    let resp = kv::txn(core, t).await?;
    if !resp.succeeded {
        return Err(ApiError::ElectionNotLeader);
    }
    Ok(resp.header)
}

/// Campaigns for leadership of `name` with `value` under `lease` (a fresh 60-second lease when 0)
/// and returns once elected. A candidate already campaigning with this lease keeps its place and
/// gets its value proclaimed. The header is the one of the request that entered the campaign. If
/// the caller goes away while waiting, the candidate resigns.
///
/// # Errors
/// Lease not found, proposal, read or watch errors.
pub async fn campaign(
    core: &Arc<Core>,
    req: CampaignRequest,
) -> Result<CampaignResponse, ApiError> {
    let lease = session_lease(core, req.lease).await?;
    let prefix = prefix_of(&req.name);
    let key = waiter_key(&prefix, lease);
    let t = TxnRequest {
        compare: vec![created_at(&key, 0)],
        success: vec![put_op(&key, &req.value, lease)],
        failure: vec![get_op(&key)],
    };
    let resp = kv::txn(core, t).await?;
    let mut rev = resp.header.as_ref().map_or(0, |h| h.revision);
    if !resp.succeeded {
        let existing = range_kvs(&resp, 0)?.first().ok_or(ApiError::Corrupt)?;
        rev = existing.create_revision;
        if existing.value != req.value {
            if let Err(e) = proclaim_at(core, &key, rev, lease, &req.value).await {
                let _ = release(core, &key, Some(rev)).await;
                return Err(e);
            }
        }
    }
    let guard = ReleaseOnDrop::arm(core.clone(), key.clone(), Some(rev));
    // Whatever the outcome, a candidate that is still connected keeps its key (as in etcd).
    let waited = wait_deletes(core, &prefix, rev - 1).await;
    guard.disarm();
    waited?;
    Ok(CampaignResponse {
        header: resp.header,
        leader: Some(LeaderKey {
            name: req.name,
            key,
            rev,
            lease,
        }),
    })
}

/// Sets the value of a leader key, if it is still the key created at `leader.rev`.
///
/// # Errors
/// No leader key given, `election: not leader`, lease or proposal errors.
pub async fn proclaim(core: &Core, req: ProclaimRequest) -> Result<ProclaimResponse, ApiError> {
    let leader = req.leader.ok_or(ApiError::MissingLeaderKey)?;
    let lease = session_lease(core, leader.lease).await?;
    let header = proclaim_at(core, &leader.key, leader.rev, lease, &req.value).await?;
    Ok(ProclaimResponse { header })
}

/// Resigns: deletes the leader key if it is still the key created at `leader.rev` (no error if
/// it is not).
///
/// # Errors
/// No leader key given, lease or proposal errors.
pub async fn resign(core: &Core, req: ResignRequest) -> Result<ResignResponse, ApiError> {
    let leader = req.leader.ok_or(ApiError::MissingLeaderKey)?;
    session_lease(core, leader.lease).await?;
    let header = release(core, &leader.key, Some(leader.rev)).await?;
    Ok(ResignResponse { header })
}

/// The current leader's key-value of election `name`.
///
/// # Errors
/// `election: no leader`, read errors.
pub async fn leader(core: &Core, req: &LeaderRequest) -> Result<LeaderResponse, ApiError> {
    match owner(core, &prefix_of(&req.name)).await? {
        (header, Some(kv)) => Ok(LeaderResponse {
            header,
            kv: Some(kv),
        }),
        (_, None) => Err(ApiError::ElectionNoLeader),
    }
}

/// Streams the leaders of election `name` into `out`: the current (or, if none, the first
/// coming) leader, each value it proclaims, then the next leader once its key is gone. Ends
/// without error when a read or watch fails, as etcd's stream does.
async fn observe(core: &Core, prefix: Vec<u8>, out: &mpsc::Sender<Result<LeaderResponse, Status>>) {
    loop {
        let Ok((header, found)) = owner(core, &prefix).await else {
            return;
        };
        let (header, kv) = match found {
            Some(kv) => (header, kv),
            None => {
                let from = header.as_ref().map_or(0, |h| h.revision);
                let Ok(first) = first_put(core, &prefix, from).await else {
                    return;
                };
                first
            }
        };
        let key = kv.key.clone();
        let from = header.as_ref().map_or(0, |h| h.revision) + 1;
        if out
            .send(Ok(LeaderResponse {
                header,
                kv: Some(kv),
            }))
            .await
            .is_err()
        {
            return;
        }
        let spec = WatchSpec {
            key,
            range_end: Vec::new(),
            no_put: false,
            no_delete: false,
        };
        let mut watch = HubWatch::start(core, spec, from);
        'leader: loop {
            let Ok(batch) = watch.next().await else {
                return;
            };
            for ev in &batch.events {
                if ev.kind == EventKind::Delete {
                    break 'leader;
                }
                let resp = LeaderResponse {
                    header: core.header(batch.revision),
                    kv: Some((*ev.kv).clone()),
                };
                if out.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits for the first put under `prefix` from revision `from` on; its header's revision is the
/// put's.
async fn first_put(
    core: &Core,
    prefix: &[u8],
    from: i64,
) -> Result<(Option<ResponseHeader>, KeyValue), ApiError> {
    let spec = WatchSpec {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        no_put: false,
        no_delete: true,
    };
    let mut watch = HubWatch::start(core, spec, from);
    loop {
        let batch = watch.next().await?;
        if let Some(ev) = batch.events.iter().find(|e| e.kind == EventKind::Put) {
            let kv = (*ev.kv).clone();
            return Ok((core.header(kv.mod_revision), kv));
        }
    }
}

type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    #[instrument(skip_all)]
    async fn campaign(
        &self,
        request: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        campaign(&self.core, request.into_inner())
            .await
            .map(Response::new)
            .map_err(relayed)
    }

    #[instrument(skip_all)]
    async fn proclaim(
        &self,
        request: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        proclaim(&self.core, request.into_inner())
            .await
            .map(Response::new)
            .map_err(relayed)
    }

    #[instrument(skip_all)]
    async fn leader(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        leader(&self.core, request.get_ref())
            .await
            .map(Response::new)
            .map_err(relayed)
    }

    type ObserveStream = ObserveStream;

    #[instrument(skip_all)]
    async fn observe(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let (out, out_rx) = mpsc::channel(16);
        let core = self.core.clone();
        let prefix = prefix_of(&request.into_inner().name);
        // The task reads as the caller, and ends as soon as the client is gone, dropping (and so
        // cancelling) its watch.
        tokio::spawn(crate::auth::credentials::inherit(async move {
            tokio::select! {
                () = observe(&core, prefix, &out) => {}
                () = out.closed() => {}
                () = core.stopped() => {}
            }
        }));
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    #[instrument(skip_all)]
    async fn resign(
        &self,
        request: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        resign(&self.core, request.into_inner())
            .await
            .map(Response::new)
            .map_err(relayed)
    }
}
