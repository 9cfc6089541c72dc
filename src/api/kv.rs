//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use parking_lot::RwLock;

use tonic::{Request, Response, Status};
use tracing::instrument;

use super::core::Core;
use super::status::ApiError;
use super::validate;
use crate::apply::ApplyResponse;
use crate::auth::check::Need;
use crate::mvcc;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use crate::proto::kvdpb::command::Op;

/// The KV service.
pub struct KvService {
    core: Arc<Core>,
}

impl KvService {
    /// A KV service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

fn unexpected(r: ApplyResponse) -> Status {
    tracing::error!(response = ?r, "apply returned a response of the wrong kind");
    super::status::internal("unexpected apply response")
}

/// Serves a range (after the read barrier unless serializable), with the key-values decoded.
///
/// # Errors
/// Validation, read barrier or MVCC errors.
pub async fn range(core: &Core, r: &RangeRequest) -> Result<RangeResponse, ApiError> {
    serve_range(core, r, Form::Decoded).await
}

/// Serves a range for sending: the key-values may be in their wire form, copied from storage
/// as stored (see [`mvcc::range_encoded`]).
///
/// # Errors
/// Validation, read barrier or MVCC errors.
pub async fn range_to_send(core: &Core, r: &RangeRequest) -> Result<RangeResponse, ApiError> {
    serve_range(core, r, Form::Wire).await
}

/// How a range's key-values are wanted.
#[derive(Clone, Copy)]
enum Form {
    /// As structs in `kvs`.
    Decoded,
    /// Encoded in `encoded_kvs` where the request allows.
    Wire,
}

impl Form {
    /// Serves `r` from `store`. In wire form the MVCC lock is held only to choose the revisions
    /// to read, not while their values are read.
    fn range(
        self,
        store: &RwLock<mvcc::MvccStore>,
        r: &RangeRequest,
    ) -> mvcc::Result<RangeResponse> {
        match self {
            Self::Decoded => mvcc::range(&*store.read(), r),
            Self::Wire => {
                let job = mvcc::start_range_encoded(&store.read(), r)?;
                job.finish()
            }
        }
    }
}

async fn serve_range(core: &Core, r: &RangeRequest, form: Form) -> Result<RangeResponse, ApiError> {
    validate::range(r)?;
    if !r.serializable {
        core.reject_learner()?;
    }
    if !r.serializable {
        core.read_barrier().await?;
    }
    let who = core
        .authorize(Need::Range {
            key: &r.key,
            range_end: &r.range_end,
        })
        .await?;
    let mut resp = if reads_many_values(core, r) {
        let store = core.state.mvcc.clone();
        let request = r.clone();
        match tokio::task::spawn_blocking(move || form.range(&store, &request)).await {
            Ok(resp) => resp?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(ApiError::Stopped),
        }
    } else {
        form.range(&core.state.mvcc, r)?
    };
    core.auth_unchanged(&who)?;
    core.fill(&mut resp.header);
    Ok(resp)
}

/// A range that may read more values than this is served on a blocking thread.
///
/// Reading every key of a million takes seconds, which would hold a runtime worker (and the
/// requests queued on it) that long. Its hundreds of MiB of small allocations are then made by
/// a thread of the blocking pool, whose allocator pages are handed back when the thread retires
/// after a short idle time, instead of staying with a worker that may idle for hours.
const BLOCKING_RANGE_VALUES: usize = 10_000;

/// Whether `r` may read more than [`BLOCKING_RANGE_VALUES`] values.
fn reads_many_values(core: &Core, r: &RangeRequest) -> bool {
    let limit = usize::try_from(r.limit).unwrap_or(0);
    if r.count_only || (limit > 0 && limit <= BLOCKING_RANGE_VALUES) {
        return false;
    }
    core.state
        .mvcc
        .read()
        .has_keys_in_range(&r.key, &r.range_end, BLOCKING_RANGE_VALUES + 1)
}

/// Serves a put.
///
/// # Errors
/// Validation, quota, proposal or apply errors.
pub async fn put(core: &Core, p: PutRequest) -> Result<PutResponse, ApiError> {
    validate::put(&p)?;
    core.reject_learner()?;
    core.check_quota(p.key.len() + p.value.len()).await?;
    // Permissions are checked when the write is applied, in log order, as etcd checks them:
    // this member's auth state may lag a change made through another member.
    match core.propose(Op::Put(p)).await? {
        ApplyResponse::Put(mut r) => {
            core.fill(&mut r.header);
            Ok(r)
        }
        _ => Err(ApiError::Corrupt),
    }
}

/// Serves a delete.
///
/// # Errors
/// Validation, proposal or apply errors.
pub async fn delete_range(
    core: &Core,
    d: DeleteRangeRequest,
) -> Result<DeleteRangeResponse, ApiError> {
    validate::delete_range(&d)?;
    core.reject_learner()?;
    match core.propose(Op::DeleteRange(d)).await? {
        ApplyResponse::DeleteRange(mut r) => {
            core.fill(&mut r.header);
            Ok(r)
        }
        _ => Err(ApiError::Corrupt),
    }
}

/// Serves a transaction: read-only ones locally after the read barrier, others through raft.
///
/// # Errors
/// Validation, quota, proposal or apply errors.
pub async fn txn(core: &Core, t: TxnRequest) -> Result<TxnResponse, ApiError> {
    validate::txn(&t, core.limits.max_txn_ops)?;
    core.reject_learner()?;
    if mvcc::is_read_only(&t) {
        let serializable = t.success.iter().chain(&t.failure).all(|op| {
            matches!(&op.request, Some(crate::proto::etcdserverpb::request_op::Request::RequestRange(r)) if r.serializable)
        });
        if !serializable {
            core.read_barrier().await?;
        }
        let who = core.authorize(Need::Txn(&t)).await?;
        let mut resp = {
            let store = core.state.mvcc.read();
            mvcc::run_read_only_txn(&store, &t)?
        };
        core.auth_unchanged(&who)?;
        core.fill(&mut resp.header);
        return Ok(resp);
    }
    core.check_quota(prost::Message::encoded_len(&t)).await?;
    match core.propose(Op::Txn(t)).await? {
        ApplyResponse::Txn(mut r) => {
            core.fill(&mut r.header);
            Ok(r)
        }
        _ => Err(ApiError::Corrupt),
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    #[instrument(skip_all)]
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        Ok(Response::new(
            range_to_send(&self.core, request.get_ref()).await?,
        ))
    }

    #[instrument(skip_all)]
    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        Ok(Response::new(put(&self.core, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        Ok(Response::new(
            delete_range(&self.core, request.into_inner()).await?,
        ))
    }

    #[instrument(skip_all)]
    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        Ok(Response::new(txn(&self.core, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        // kvd keeps compaction to the root role (etcd 3.4 checks no permission for it).
        self.core.authorize(Need::Admin).await?;
        match self
            .core
            .propose(Op::Compaction(request.into_inner()))
            .await?
        {
            ApplyResponse::Compaction(mut r) => {
                self.core.fill(&mut r.header);
                Ok(Response::new(r))
            }
            other => Err(unexpected(other)),
        }
    }
}
