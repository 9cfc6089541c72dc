//! The gateway's route table (from the `google.api.http` annotations of etcd 3.4's
//! `rpc.proto`) and its unary calls: read the JSON body, call the service, write JSON.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post, MethodRouter};
use axum::Router;
use prost::Message;
use tonic::Request;

use super::error::{method_not_allowed, not_found, page_not_found, GatewayError};
use super::json::ProtoName;
use super::request::read_request;
use super::{auth, stream, Gateway};
use crate::api::{kv, lease};
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, CompactionRequest, CompactionResponse, DefragmentRequest,
    DefragmentResponse, DeleteRangeRequest, DeleteRangeResponse, HashRequest, HashResponse,
    LeaseGrantRequest, LeaseGrantResponse, LeaseLeasesRequest, LeaseLeasesResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
    MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, MoveLeaderRequest, MoveLeaderResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, StatusRequest, StatusResponse, TxnRequest,
    TxnResponse,
};
use crate::proto::v3electionpb::election_server::Election;
use crate::proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use crate::proto::v3lockpb::lock_server::Lock;
use crate::proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};

type Shared = Arc<Gateway>;

/// Every gateway route, under `/v3/` and `/v3beta/`; other paths there are `404 Not Found`.
pub(super) fn router() -> Router<Shared> {
    let table: Vec<(&str, MethodRouter<Shared>)> = vec![
        ("kv/range", unary(range)),
        ("kv/put", unary(put)),
        ("kv/deleterange", unary(delete_range)),
        ("kv/txn", unary(txn)),
        ("kv/compaction", unary(compaction)),
        ("watch", streaming(stream::watch)),
        ("lease/grant", unary(lease_grant)),
        ("lease/revoke", unary(lease_revoke)),
        ("kv/lease/revoke", unary(lease_revoke)),
        ("lease/keepalive", streaming(stream::keep_alive)),
        ("lease/timetolive", unary(lease_time_to_live)),
        ("kv/lease/timetolive", unary(lease_time_to_live)),
        ("lease/leases", unary(lease_leases)),
        ("kv/lease/leases", unary(lease_leases)),
        ("cluster/member/add", unary(member_add)),
        ("cluster/member/remove", unary(member_remove)),
        ("cluster/member/update", unary(member_update)),
        ("cluster/member/list", unary(member_list)),
        ("cluster/member/promote", unary(member_promote)),
        ("maintenance/alarm", unary(alarm)),
        ("maintenance/status", unary(status)),
        ("maintenance/defragment", unary(defragment)),
        // Hash and HashKV share this path in etcd's annotations; etcd's gateway serves Hash.
        ("maintenance/hash", unary(hash)),
        ("maintenance/snapshot", streaming(stream::snapshot)),
        ("maintenance/transfer-leadership", unary(move_leader)),
        ("lock/lock", unary(lock)),
        ("lock/unlock", unary(unlock)),
        ("election/campaign", unary(campaign)),
        ("election/proclaim", unary(proclaim)),
        ("election/leader", unary(leader)),
        ("election/observe", streaming(stream::observe)),
        ("election/resign", unary(resign)),
        ("auth/enable", unary(auth::enable)),
        ("auth/disable", unary(auth::disable)),
        ("auth/authenticate", unary(auth::authenticate)),
        ("auth/status", unary(auth::status)),
        ("auth/user/add", unary(auth::user_add)),
        ("auth/role/add", unary(auth::role_add)),
        ("auth/user/get", unary(auth::user_get)),
        ("auth/user/list", unary(auth::user_list)),
        ("auth/user/delete", unary(auth::user_delete)),
        ("auth/user/changepw", unary(auth::user_change_password)),
        ("auth/user/grant", unary(auth::user_grant_role)),
        ("auth/user/revoke", unary(auth::user_revoke_role)),
        ("auth/role/get", unary(auth::role_get)),
        ("auth/role/list", unary(auth::role_list)),
        ("auth/role/delete", unary(auth::role_delete)),
        ("auth/role/grant", unary(auth::role_grant_permission)),
        ("auth/role/revoke", unary(auth::role_revoke_permission)),
    ];
    let mut router = Router::new();
    for (path, method) in table {
        // etcd rewrites `/v3beta/` to `/v3/` before routing.
        router = router
            .route(&format!("/v3/{path}"), method.clone())
            .route(&format!("/v3beta/{path}"), method);
    }
    router
        .route("/v3/{*rest}", any(not_found))
        .route("/v3beta/{*rest}", any(not_found))
        // etcd 3.4 no longer serves the 3.2 prefix: its HTTP mux answers 404.
        .route("/v3alpha/{*rest}", any(page_not_found))
}

/// A streaming method: POST only.
fn streaming<H, T>(handler: H) -> MethodRouter<Shared>
where
    H: axum::handler::Handler<T, Shared>,
    T: 'static,
{
    post(handler).fallback(method_not_allowed)
}

/// A unary method: the body's first JSON value is the request, `call` answers it.
fn unary<Req, Resp, F, Fut>(call: F) -> MethodRouter<Shared>
where
    Req: Message + Default + ProtoName + Send + 'static,
    Resp: Message + ProtoName + 'static,
    F: Fn(Shared, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, GatewayError>> + Send + 'static,
{
    let handler = move |State(gw): State<Shared>, body: Body| {
        let call = call.clone();
        async move {
            let answer = async {
                let req: Req = read_request(&gw, body).await?;
                let resp = call(gw.clone(), req).await?;
                gw.json.encode(&resp)
            };
            match answer.await {
                Ok(json) => json_response(json),
                Err(e) => e.into_response(),
            }
        }
    };
    post(handler).fallback(method_not_allowed)
}

/// A successful unary answer.
fn json_response(json: String) -> Response {
    let mut resp = json.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // etcd's gateway forwards the gRPC response headers it received.
    headers.insert(
        "grpc-metadata-content-type",
        HeaderValue::from_static("application/grpc"),
    );
    resp
}

async fn range(gw: Shared, r: RangeRequest) -> Result<RangeResponse, GatewayError> {
    Ok(kv::range_to_send(&gw.core, &r).await?)
}

async fn put(gw: Shared, r: PutRequest) -> Result<PutResponse, GatewayError> {
    Ok(kv::put(&gw.core, r).await?)
}

async fn delete_range(
    gw: Shared,
    r: DeleteRangeRequest,
) -> Result<DeleteRangeResponse, GatewayError> {
    Ok(kv::delete_range(&gw.core, r).await?)
}

async fn txn(gw: Shared, r: TxnRequest) -> Result<TxnResponse, GatewayError> {
    Ok(kv::txn(&gw.core, r).await?)
}

async fn compaction(gw: Shared, r: CompactionRequest) -> Result<CompactionResponse, GatewayError> {
    Ok(gw.kv.compact(Request::new(r)).await?.into_inner())
}

async fn lease_grant(gw: Shared, r: LeaseGrantRequest) -> Result<LeaseGrantResponse, GatewayError> {
    Ok(lease::grant(&gw.core, r).await?)
}

async fn lease_revoke(
    gw: Shared,
    r: LeaseRevokeRequest,
) -> Result<LeaseRevokeResponse, GatewayError> {
    Ok(lease::revoke(&gw.core, r).await?)
}

async fn lease_time_to_live(
    gw: Shared,
    r: LeaseTimeToLiveRequest,
) -> Result<LeaseTimeToLiveResponse, GatewayError> {
    Ok(lease::time_to_live(&gw.core, &r).await?)
}

async fn lease_leases(
    gw: Shared,
    r: LeaseLeasesRequest,
) -> Result<LeaseLeasesResponse, GatewayError> {
    Ok(gw.lease.lease_leases(Request::new(r)).await?.into_inner())
}

async fn member_add(gw: Shared, r: MemberAddRequest) -> Result<MemberAddResponse, GatewayError> {
    Ok(gw.cluster.member_add(Request::new(r)).await?.into_inner())
}

async fn member_remove(
    gw: Shared,
    r: MemberRemoveRequest,
) -> Result<MemberRemoveResponse, GatewayError> {
    Ok(gw
        .cluster
        .member_remove(Request::new(r))
        .await?
        .into_inner())
}

async fn member_update(
    gw: Shared,
    r: MemberUpdateRequest,
) -> Result<MemberUpdateResponse, GatewayError> {
    Ok(gw
        .cluster
        .member_update(Request::new(r))
        .await?
        .into_inner())
}

async fn member_list(gw: Shared, r: MemberListRequest) -> Result<MemberListResponse, GatewayError> {
    Ok(gw.cluster.member_list(Request::new(r)).await?.into_inner())
}

async fn member_promote(
    gw: Shared,
    r: MemberPromoteRequest,
) -> Result<MemberPromoteResponse, GatewayError> {
    Ok(gw
        .cluster
        .member_promote(Request::new(r))
        .await?
        .into_inner())
}

async fn alarm(gw: Shared, r: AlarmRequest) -> Result<AlarmResponse, GatewayError> {
    Ok(gw.maintenance.alarm(Request::new(r)).await?.into_inner())
}

async fn status(gw: Shared, r: StatusRequest) -> Result<StatusResponse, GatewayError> {
    Ok(gw.maintenance.status(Request::new(r)).await?.into_inner())
}

async fn defragment(gw: Shared, r: DefragmentRequest) -> Result<DefragmentResponse, GatewayError> {
    Ok(gw
        .maintenance
        .defragment(Request::new(r))
        .await?
        .into_inner())
}

async fn hash(gw: Shared, r: HashRequest) -> Result<HashResponse, GatewayError> {
    Ok(gw.maintenance.hash(Request::new(r)).await?.into_inner())
}

async fn move_leader(gw: Shared, r: MoveLeaderRequest) -> Result<MoveLeaderResponse, GatewayError> {
    Ok(gw
        .maintenance
        .move_leader(Request::new(r))
        .await?
        .into_inner())
}

async fn lock(gw: Shared, r: LockRequest) -> Result<LockResponse, GatewayError> {
    Ok(gw.lock.lock(Request::new(r)).await?.into_inner())
}

async fn unlock(gw: Shared, r: UnlockRequest) -> Result<UnlockResponse, GatewayError> {
    Ok(gw.lock.unlock(Request::new(r)).await?.into_inner())
}

async fn campaign(gw: Shared, r: CampaignRequest) -> Result<CampaignResponse, GatewayError> {
    Ok(gw.election.campaign(Request::new(r)).await?.into_inner())
}

async fn proclaim(gw: Shared, r: ProclaimRequest) -> Result<ProclaimResponse, GatewayError> {
    Ok(gw.election.proclaim(Request::new(r)).await?.into_inner())
}

async fn leader(gw: Shared, r: LeaderRequest) -> Result<LeaderResponse, GatewayError> {
    Ok(gw.election.leader(Request::new(r)).await?.into_inner())
}

async fn resign(gw: Shared, r: ResignRequest) -> Result<ResignResponse, GatewayError> {
    Ok(gw.election.resign(Request::new(r)).await?.into_inner())
}
