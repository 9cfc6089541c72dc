//! The Maintenance service: alarms, status, hashes, defragment, snapshot, move-leader.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::core::{Core, ETCD_VERSION};
use super::status::auth_store_refusal;
use super::status::ApiError;
use crate::apply::ApplyResponse;
use crate::auth::check::Need;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::{
    alarm_request::AlarmAction, AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse,
    HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use crate::proto::kvdpb::command::Op;

/// Bytes per snapshot chunk (etcd sends 32 KiB chunks).
const SNAPSHOT_CHUNK: usize = 32 * 1024;

/// The Maintenance service.
pub struct MaintenanceService {
    core: Arc<Core>,
}

impl MaintenanceService {
    /// A Maintenance service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

/// The Status of this member.
pub fn status(core: &Core) -> StatusResponse {
    let raft = core.raft.status();
    let size = i64::try_from(core.state.mvcc.read().size_bytes()).unwrap_or(i64::MAX);
    let is_learner = core.is_learner();
    StatusResponse {
        header: core.header(0),
        version: ETCD_VERSION.to_string(),
        db_size: size,
        leader: raft.leader,
        raft_index: raft.commit,
        raft_term: raft.term,
        raft_applied_index: raft.applied,
        errors: core
            .state
            .alarms
            .read()
            .list()
            .iter()
            .map(|a| {
                let name = crate::proto::etcdserverpb::AlarmType::try_from(a.alarm)
                    .map_or_else(|_| a.alarm.to_string(), |t| t.as_str_name().to_string());
                format!("memberID:{} alarm:{} ", a.member_id, name)
            })
            .collect(),
        db_size_in_use: size,
        is_learner,
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        let r = request.into_inner();
        if AlarmAction::try_from(r.action).unwrap_or(AlarmAction::Get) == AlarmAction::Get {
            let alarms = self.core.state.alarms.read().list();
            // etcd answers alarm requests without a header.
            return Ok(Response::new(AlarmResponse {
                header: None,
                alarms,
            }));
        }
        // kvd keeps raising and clearing alarms to the root role (etcd 3.4 checks nothing).
        self.core.authorize(Need::Admin).await?;
        match self.core.propose(Op::Alarm(r)).await? {
            ApplyResponse::Alarm(mut resp) => {
                resp.header = None;
                Ok(Response::new(resp))
            }
            _ => Err(ApiError::Corrupt.into()),
        }
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(status(&self.core)))
    }

    async fn defragment(
        &self,
        _request: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.core
            .check_auth(Need::Admin)
            .await
            .map_err(auth_store_refusal)?;
        // sled reclaims space itself; defragment makes everything durable and answers as etcd.
        let _defrag = crate::metrics::disk::defrag();
        crate::kvd_crash_point!("defrag::before");
        self.core.persisted.sync().map_err(|e| {
            tracing::error!(error = %e, "defragment: flush failed");
            Status::from(ApiError::Corrupt)
        })?;
        crate::kvd_crash_point!("defrag::after");
        // etcd answers defragment without a header.
        Ok(Response::new(DefragmentResponse { header: None }))
    }

    async fn hash(&self, _request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.core
            .check_auth(Need::Admin)
            .await
            .map_err(auth_store_refusal)?;
        let hash_timer = crate::metrics::mvcc::hash_timer(false);
        let hash = self.core.persisted.checksum().map_err(|e| {
            tracing::error!(error = %e, "hash: storage failure");
            Status::from(ApiError::Corrupt)
        })?;
        drop(hash_timer);
        Ok(Response::new(HashResponse {
            header: self.core.header(0),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        self.core
            .check_auth(Need::Admin)
            .await
            .map_err(auth_store_refusal)?;
        let (hash, compact_revision) = {
            let _timer = crate::metrics::mvcc::hash_timer(true);
            let store = self.core.state.mvcc.read();
            let rev = store
                .check_rev(request.get_ref().revision)
                .map_err(ApiError::from)?;
            (
                store.hash_kv(rev).map_err(ApiError::from)?,
                store.compact_rev(),
            )
        };
        // The header carries the current revision, as etcd's does.
        Ok(Response::new(HashKvResponse {
            header: self.core.header(0),
            hash,
            compact_revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.core
            .check_auth(Need::Admin)
            .await
            .map_err(auth_store_refusal)?;
        // Measured until the stream is done with (sent, or dropped by the client).
        let timer = crate::metrics::disk::snapshot_timer();
        let term = self.core.raft.status().term;
        let (_, image) = crate::snapshot::image_of(&self.core.state, &self.core.persisted, term)
            .map_err(|e| {
                tracing::error!(error = %e, "snapshot: cannot read state");
                Status::from(ApiError::Corrupt)
            })?;
        // As etcd: the database in chunks, `remaining_bytes` counting down to 0, then its
        // sha256 in a message of its own.
        let sum = Sha256::digest(&image);
        let total = image.len();
        let mut chunks: Vec<Result<SnapshotResponse, Status>> = image
            .chunks(SNAPSHOT_CHUNK)
            .scan(total, |left, chunk| {
                *left -= chunk.len();
                Some(Ok(SnapshotResponse {
                    header: None,
                    remaining_bytes: *left as u64,
                    blob: chunk.to_vec(),
                }))
            })
            .collect();
        chunks.push(Ok(SnapshotResponse {
            header: None,
            remaining_bytes: 0,
            blob: sum.to_vec(),
        }));
        let stream = futures::StreamExt::inspect(futures::stream::iter(chunks), move |_| {
            let _ = &timer;
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn move_leader(
        &self,
        request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        // kvd keeps leader transfer to the root role, like the other maintenance calls.
        self.core
            .check_auth(Need::Admin)
            .await
            .map_err(auth_store_refusal)?;
        let target = request.get_ref().target_id;
        let raft = self.core.raft.status();
        if raft.leader != self.core.member_id {
            return Err(ApiError::NotLeader.into());
        }
        if !self
            .core
            .state
            .membership
            .read()
            .members
            .contains_key(&target)
        {
            return Err(ApiError::BadLeaderTransferee.into());
        }
        if target != self.core.member_id {
            self.core
                .raft
                .transfer_leader(target)
                .await
                .map_err(ApiError::from)?;
            let mut st = self.core.raft.status_watch();
            let moved = tokio::time::timeout(
                self.core.request_timeout,
                st.wait_for(|s| s.leader == target),
            )
            .await;
            if !matches!(moved, Ok(Ok(_))) {
                return Err(ApiError::Timeout.into());
            }
        }
        Ok(Response::new(MoveLeaderResponse {
            header: self.core.header(0),
        }))
    }
}
