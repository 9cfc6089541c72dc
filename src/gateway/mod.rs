//! etcd's JSON gateway on the client port: `POST /v3/<service>/<method>` (and the `/v3beta/`
//! alias) with a JSON body, answered in JSON exactly as etcd 3.4's grpc-gateway answers it, so
//! `curl` works against kvd as against etcd.
//!
//! The gateway calls the same service code gRPC calls ([`crate::api`]) in-process; it owns only
//! the JSON mapping ([`json`]), the HTTP shape of errors ([`error`]), the route table
//! ([`routes`]), the streams ([`stream`]) and the answers etcd gives while authentication is
//! off ([`auth`]). It must not reach below `api` into raft, mvcc or storage.

mod auth;
pub mod error;
mod escape;
pub mod json;
mod request;
mod routes;
mod stream;

use std::sync::Arc;

use crate::api::auth::AuthService;
use crate::api::cluster::ClusterService;
use crate::api::core::GRPC_OVERHEAD_BYTES;
use crate::api::kv::KvService;
use crate::api::lease::LeaseService;
use crate::api::maintenance::MaintenanceService;
use crate::api::v3election::ElectionService;
use crate::api::v3lock::LockService;
use crate::api::watch::WatchService;
use crate::api::Core;

pub use json::JsonCodec;

/// What every gateway handler shares: the member and the services it calls.
pub(crate) struct Gateway {
    core: Arc<Core>,
    json: JsonCodec,
    kv: KvService,
    lease: LeaseService,
    cluster: ClusterService,
    maintenance: MaintenanceService,
    watch: WatchService,
    lock: LockService,
    election: ElectionService,
    auth: AuthService,
}

impl Gateway {
    fn new(core: Arc<Core>) -> Self {
        Self {
            json: JsonCodec::new(),
            kv: KvService::new(core.clone()),
            lease: LeaseService::new(core.clone()),
            cluster: ClusterService::new(core.clone()),
            maintenance: MaintenanceService::new(core.clone()),
            watch: WatchService::new(core.clone()),
            lock: LockService::new(core.clone()),
            election: ElectionService::new(core.clone()),
            auth: AuthService::new(core.clone()),
            core,
        }
    }

    /// The largest request message, as gRPC accepts it (`--max-request-bytes` plus etcd's
    /// gRPC overhead allowance).
    fn max_message_bytes(&self) -> usize {
        self.core.limits.max_request_bytes + GRPC_OVERHEAD_BYTES
    }

    /// The largest JSON text decoded for one request message (base64 and JSON syntax make the
    /// text larger than the message it carries): well above any message the limit allows, so
    /// that an oversized request is answered with its exact encoded size, as etcd answers.
    fn max_json_bytes(&self) -> usize {
        self.max_message_bytes().saturating_mul(32).max(64 << 20)
    }
}

/// The gateway's routes on `core`, ready to merge into the client port's router.
///
/// # Panics
/// If kvd's embedded protobuf descriptors do not decode (see [`JsonCodec::new`]).
pub fn routes(core: Arc<Core>) -> axum::Router {
    routes::router().with_state(Arc::new(Gateway::new(core)))
}
