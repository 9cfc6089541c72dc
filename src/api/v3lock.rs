//! The Lock service (etcd's `v3lockpb.Lock`): a distributed mutex per name, held by a lease.
//!
//! `Lock` puts the waiter key `name/<lease hex>` (or finds it, when this lease already waits or
//! holds) and returns once every key under `name/` created before it is gone; `Unlock` deletes a
//! key. Errors of the underlying KV and lease requests reach the client as etcd relays them.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::instrument;

use super::core::Core;
use super::kv;
use super::lock::{
    created_at, get_op, owner_op, prefix_of, put_op, range_kvs, release, session_lease,
    wait_deletes, waiter_key, ReleaseOnDrop,
};
use super::status::{relayed, ApiError};
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::v3lockpb::lock_server::Lock;
use crate::proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};

/// The Lock service.
pub struct LockService {
    core: Arc<Core>,
}

impl LockService {
    /// A Lock service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

/// Acquires the lock `name` for `lease` (a fresh 60-second lease when 0), waiting as long as
/// earlier waiters hold or wait for it. The header is the one of the request that found the lock
/// free. If the caller goes away while waiting, the waiter key is deleted.
///
/// # Errors
/// Lease not found, proposal, read or watch errors; after a failed wait the key is deleted.
pub async fn lock(core: &Arc<Core>, req: LockRequest) -> Result<LockResponse, ApiError> {
    let lease = session_lease(core, req.lease).await?;
    let prefix = prefix_of(&req.name);
    let key = waiter_key(&prefix, lease);
    let t = TxnRequest {
        compare: vec![created_at(&key, 0)],
        success: vec![put_op(&key, b"", lease), owner_op(&prefix)],
        failure: vec![get_op(&key), owner_op(&prefix)],
    };
    let resp = kv::txn(core, t).await?;
    let my_rev = if resp.succeeded {
        resp.header.as_ref().map_or(0, |h| h.revision)
    } else {
        range_kvs(&resp, 0)?
            .first()
            .ok_or(ApiError::Corrupt)?
            .create_revision
    };
    let owner_rev = range_kvs(&resp, 1)?.first().map(|kv| kv.create_revision);
    if owner_rev.is_none_or(|rev| rev == my_rev) {
        return Ok(LockResponse {
            header: resp.header,
            key,
        });
    }
    let guard = ReleaseOnDrop::arm(core.clone(), key.clone(), None);
    match wait_deletes(core, &prefix, my_rev - 1).await {
        Ok(header) => {
            guard.disarm();
            Ok(LockResponse { header, key })
        }
        Err(e) => {
            guard.disarm();
            // Best effort, as etcd does: the waiter gives up its place.
            let _ = release(core, &key, None).await;
            Err(e)
        }
    }
}

/// Releases a lock by deleting its key (any key: no ownership check, as in etcd).
///
/// # Errors
/// Empty key, proposal errors.
pub async fn unlock(core: &Core, req: UnlockRequest) -> Result<UnlockResponse, ApiError> {
    let resp = kv::delete_range(
        core,
        crate::proto::etcdserverpb::DeleteRangeRequest {
            key: req.key,
            ..Default::default()
        },
    )
    .await?;
    Ok(UnlockResponse {
        header: resp.header,
    })
}

#[tonic::async_trait]
impl Lock for LockService {
    #[instrument(skip_all)]
    async fn lock(&self, request: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        lock(&self.core, request.into_inner())
            .await
            .map(Response::new)
            .map_err(relayed)
    }

    #[instrument(skip_all)]
    async fn unlock(
        &self,
        request: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        unlock(&self.core, request.into_inner())
            .await
            .map(Response::new)
            .map_err(relayed)
    }
}
