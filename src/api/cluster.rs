//! The Cluster service: the member list. Membership changes arrive with multi-member clusters.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::core::Core;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::{
    MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};

/// The Cluster service.
pub struct ClusterService {
    core: Arc<Core>,
}

impl ClusterService {
    /// A Cluster service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

fn reconfiguration_unavailable() -> Status {
    Status::failed_precondition(
        "kvd: runtime membership changes are not available in this version (static clusters only)",
    )
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _r: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(reconfiguration_unavailable())
    }

    async fn member_remove(
        &self,
        _r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(reconfiguration_unavailable())
    }

    async fn member_update(
        &self,
        _r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(reconfiguration_unavailable())
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let members = self.core.state.membership.read().to_pb();
        Ok(Response::new(MemberListResponse {
            header: self.core.header(0),
            members,
        }))
    }

    async fn member_promote(
        &self,
        _r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(reconfiguration_unavailable())
    }
}
