//! The peer listener's gRPC service: raft message streams, snapshots, the member list for
//! joining members, and lease requests forwarded to the leader.

use std::sync::Arc;

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::api::Core;
use crate::lease::LeaseError;
use crate::proto::kvdpb::peer_server::Peer;
use crate::proto::kvdpb::{
    LeaseRenewRequest, LeaseRenewResponse, LeaseTtlRequest, LeaseTtlResponse, MemberPromoteForward,
    MembersRequest, MembersResponse, PeerAck, RaftEnvelope, SnapshotChunk,
};
use crate::raft::transport::{assemble_snapshot, decode_message};

/// The Peer service.
pub struct PeerService {
    core: Arc<Core>,
}

impl PeerService {
    /// A Peer service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    fn check_cluster(&self, cluster_id: u64, from: u64) -> Result<(), Status> {
        let ours = self.core.cluster_id();
        if cluster_id != ours {
            warn!(
                from = format!("{from:x}"),
                their_cluster = format!("{cluster_id:x}"),
                our_cluster = format!("{ours:x}"),
                "rejected a peer of another cluster"
            );
            return Err(Status::failed_precondition(format!(
                "member {from:x} belongs to cluster {cluster_id:x}, not to this cluster {ours:x}"
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn raft(
        &self,
        request: Request<Streaming<RaftEnvelope>>,
    ) -> Result<Response<PeerAck>, Status> {
        let mut stream = request.into_inner();
        loop {
            // Ends with the member's raft, so that a stream a peer keeps open but idle does
            // not hold up this member's shutdown.
            let envelope = tokio::select! {
                envelope = stream.next() => match envelope {
                    Some(envelope) => envelope?,
                    None => break,
                },
                () = self.core.stopped() => return Err(Status::unavailable("member stopping")),
            };
            self.check_cluster(envelope.cluster_id, envelope.from)?;
            crate::metrics::network::peer_received(envelope.from, envelope.message.len());
            let msg = decode_message(&envelope.message)
                .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))?;
            if self.core.raft.step(msg).await.is_err() {
                return Err(Status::unavailable("member stopping"));
            }
        }
        Ok(Response::new(PeerAck {}))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<PeerAck>, Status> {
        let mut stream = request.into_inner();
        let mut header = Vec::new();
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            self.check_cluster(chunk.cluster_id, 0)?;
            crate::metrics::network::peer_received(0, chunk.raft_message.len() + chunk.data.len());
            if !chunk.raft_message.is_empty() {
                header = chunk.raft_message;
            }
            data.extend_from_slice(&chunk.data);
            if chunk.last {
                break;
            }
        }
        let msg = assemble_snapshot(&header, data)
            .map_err(|e| Status::invalid_argument(format!("bad snapshot: {e}")))?;
        info!(
            from = format!("{:x}", msg.from),
            index = msg.get_snapshot().get_metadata().index,
            "received snapshot"
        );
        self.core
            .raft
            .step(msg)
            .await
            .map_err(|_| Status::unavailable("member stopping"))?;
        Ok(Response::new(PeerAck {}))
    }

    async fn members(
        &self,
        _request: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let m = self.core.state.membership.read();
        Ok(Response::new(MembersResponse {
            cluster_id: m.cluster_id,
            members: m.to_pb(),
        }))
    }

    async fn lease_renew(
        &self,
        request: Request<LeaseRenewRequest>,
    ) -> Result<Response<LeaseRenewResponse>, Status> {
        let r = request.into_inner();
        if let Some(h) = &r.header {
            self.check_cluster(h.cluster_id, h.from)?;
        }
        let renewed = self
            .core
            .state
            .lessor
            .lock()
            .renew(r.id, crate::lease::now());
        match renewed {
            Ok(ttl) => Ok(Response::new(LeaseRenewResponse { ttl })),
            Err(LeaseError::NotFound) => Ok(Response::new(LeaseRenewResponse { ttl: 0 })),
            Err(_) => Err(Status::failed_precondition("not leader")),
        }
    }

    async fn lease_ttl(
        &self,
        request: Request<LeaseTtlRequest>,
    ) -> Result<Response<LeaseTtlResponse>, Status> {
        let r = request.into_inner();
        if let Some(h) = &r.header {
            self.check_cluster(h.cluster_id, h.from)?;
        }
        let lessor = self.core.state.lessor.lock();
        if !lessor.is_primary() {
            return Err(Status::failed_precondition("not leader"));
        }
        Ok(Response::new(match lessor.get(r.id) {
            Some(l) => LeaseTtlResponse {
                ttl: l.remaining_secs(crate::lease::now()),
                granted_ttl: l.ttl,
            },
            None => LeaseTtlResponse {
                ttl: -1,
                granted_ttl: 0,
            },
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteForward>,
    ) -> Result<Response<MembersResponse>, Status> {
        let r = request.into_inner();
        let header = r.header.unwrap_or_default();
        self.check_cluster(header.cluster_id, header.from)?;
        let cluster = crate::api::cluster::ClusterService::new(self.core.clone());
        let members = cluster.promote_on_leader(r.id).await?;
        Ok(Response::new(MembersResponse {
            cluster_id: self.core.cluster_id(),
            members,
        }))
    }
}

/// The peer listener's routes: the Peer gRPC service and etcd's `/version` for operators.
pub fn router(core: Arc<Core>) -> axum::Router {
    let grpc = tonic::service::Routes::new(
        crate::proto::kvdpb::peer_server::PeerServer::new(PeerService::new(core))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
    );
    grpc.prepare()
        .into_axum_router()
        .route(
            "/version",
            axum::routing::get(|| async {
                format!(
                    r#"{{"etcdserver":"{}","etcdcluster":"{}"}}"#,
                    crate::api::core::ETCD_VERSION,
                    crate::api::core::ETCD_CLUSTER_VERSION
                )
            }),
        )
        .fallback(super::listener::not_found)
}
