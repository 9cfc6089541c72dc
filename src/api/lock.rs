//! The common ground of the Lock and Election services ([`super::v3lock`],
//! [`super::v3election`]): the primitives both are built from.
//!
//! etcd serves both services by running its client-side recipes (sessions, mutexes, elections)
//! against its own KV, Lease and Watch services. kvd does the same through the free functions of
//! [`super::kv`] and [`super::lease`] and the watch hub, so that every step (and every revision it
//! costs) is what an etcd 3.4 member would do:
//!
//! - a *session lease*: lease 0 asks for a fresh 60-second lease, any other ID is used as given;
//! - a *waiter key* `name/<lease in hex>` created in one transaction;
//! - the *owner*: the key under `name/` with the smallest create revision;
//! - *waiting*: until no key under `name/` with a smaller create revision than ours is left;
//! - *clean-up* when a client goes away while waiting: its key is deleted.
//!
//! This module must not know about the request shapes of either service.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::debug;

use super::core::Core;
use super::status::ApiError;
use super::{kv, lease};
use crate::mvcc::EventKind;
use crate::proto::etcdserverpb::{
    compare, range_request, request_op, Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest,
    RangeRequest, RequestOp, ResponseHeader, TxnRequest, TxnResponse,
};
use crate::proto::mvccpb::KeyValue;
use crate::watch::{WatchBatch, WatchSpec, WatcherKey};

/// The TTL of the lease a session grants when the request names none (etcd's default session TTL).
pub const SESSION_TTL: i64 = 60;

/// The lease a request runs under: `lease` itself, or a fresh [`SESSION_TTL`] lease when it is 0
/// (as etcd's session does; the lease is then left to expire).
///
/// # Errors
/// Granting failed.
pub(super) async fn session_lease(core: &Core, lease: i64) -> Result<i64, ApiError> {
    if lease != 0 {
        return Ok(lease);
    }
    let granted = lease::grant(
        core,
        LeaseGrantRequest {
            ttl: SESSION_TTL,
            id: 0,
        },
    )
    .await?;
    Ok(granted.id)
}

/// `name` followed by `/`: the prefix under which waiters of a lock or an election live.
pub(super) fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    prefix
}

/// The key of a waiter: `prefix` followed by the lease ID in hex, formatted the way etcd's Go
/// code formats a signed integer (`-` and the magnitude for a negative ID).
pub(super) fn waiter_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let hex = if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    };
    let mut key = prefix.to_vec();
    key.extend_from_slice(hex.as_bytes());
    key
}

/// The end of the range of all keys starting with `prefix` (`"\0"`, all keys, if there is none).
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A range over `prefix` sorted by create revision, one key only: the oldest (`ascend`) or the
/// newest, optionally only among keys created at or before `max_create_revision` (0 = any).
fn by_create(prefix: &[u8], ascend: bool, max_create_revision: i64) -> RangeRequest {
    let order = if ascend {
        range_request::SortOrder::Ascend
    } else {
        range_request::SortOrder::Descend
    };
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: order as i32,
        sort_target: range_request::SortTarget::Create as i32,
        max_create_revision,
        ..Default::default()
    }
}

/// The request op reading the owner of `prefix`: its key with the smallest create revision.
pub(super) fn owner_op(prefix: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(by_create(
            prefix, true, 0,
        ))),
    }
}

/// The request op reading `key`.
pub(super) fn get_op(key: &[u8]) -> RequestOp {
    let range = RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    };
    RequestOp {
        request: Some(request_op::Request::RequestRange(range)),
    }
}

/// The request op writing `value` to `key` under `lease`.
pub(super) fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    let put = PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        lease,
        ..Default::default()
    };
    RequestOp {
        request: Some(request_op::Request::RequestPut(put)),
    }
}

/// The compare "`key` was created at revision `rev`" (0: `key` does not exist).
pub(super) fn created_at(key: &[u8], rev: i64) -> Compare {
    Compare {
        key: key.to_vec(),
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
        ..Default::default()
    }
}

/// The key-values the `index`-th range of a transaction's responses returned.
///
/// # Errors
/// [`ApiError::Corrupt`] when that response is not a range (the transaction was built here, so
/// this means the apply path answered something else).
pub(super) fn range_kvs(resp: &TxnResponse, index: usize) -> Result<&[KeyValue], ApiError> {
    match resp.responses.get(index).and_then(|r| r.response.as_ref()) {
        Some(crate::proto::etcdserverpb::response_op::Response::ResponseRange(r)) => Ok(&r.kvs),
        _ => Err(ApiError::Corrupt),
    }
}

/// The owner of `prefix` (the key with the smallest create revision), read linearizably, with
/// the response header of that read.
///
/// # Errors
/// Read errors.
pub(super) async fn owner(
    core: &Core,
    prefix: &[u8],
) -> Result<(Option<ResponseHeader>, Option<KeyValue>), ApiError> {
    let resp = kv::range(core, &by_create(prefix, true, 0)).await?;
    Ok((resp.header, resp.kvs.into_iter().next()))
}

/// Deletes `key`; when `create_rev` is given, only if the key still has that create revision.
/// Returns the header of the write.
///
/// # Errors
/// Proposal errors.
pub(super) async fn release(
    core: &Core,
    key: &[u8],
    create_rev: Option<i64>,
) -> Result<Option<ResponseHeader>, ApiError> {
    let delete = DeleteRangeRequest {
        key: key.to_vec(),
        ..Default::default()
    };
    match create_rev {
        None => Ok(kv::delete_range(core, delete).await?.header),
        Some(rev) => {
            let t = TxnRequest {
                compare: vec![created_at(key, rev)],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(delete)),
                }],
                failure: Vec::new(),
            };
            Ok(kv::txn(core, t).await?.header)
        }
    }
}

/// Waits until no key under `prefix` created at or before `max_create_rev` is left, one key at a
/// time (newest first). Returns the header of the last read, which found none.
///
/// # Errors
/// Read errors, a compacted watch, or the member stopping.
pub(super) async fn wait_deletes(
    core: &Core,
    prefix: &[u8],
    max_create_rev: i64,
) -> Result<Option<ResponseHeader>, ApiError> {
    loop {
        let resp = kv::range(core, &by_create(prefix, false, max_create_rev)).await?;
        let Some(last) = resp.kvs.first() else {
            return Ok(resp.header);
        };
        let from = resp.header.as_ref().map_or(0, |h| h.revision);
        wait_delete(core, &last.key, from).await?;
    }
}

/// Waits for a delete of `key` at or after revision `from`.
async fn wait_delete(core: &Core, key: &[u8], from: i64) -> Result<(), ApiError> {
    let spec = WatchSpec {
        key: key.to_vec(),
        range_end: Vec::new(),
        no_put: true,
        no_delete: false,
    };
    let mut watch = HubWatch::start(core, spec, from);
    loop {
        let batch = watch.next().await?;
        if batch.events.iter().any(|e| e.kind == EventKind::Delete) {
            return Ok(());
        }
    }
}

/// Watch-stream IDs used by these services, far above those of client watch streams (which count
/// up from 1), so the two can never share a watcher key in the hub.
static NEXT_STREAM: AtomicU64 = AtomicU64::new(1 << 62);

/// A watcher in the hub that lives as long as this value: dropping it cancels the watcher.
pub(super) struct HubWatch<'a> {
    core: &'a Core,
    key: WatcherKey,
    rx: mpsc::Receiver<WatchBatch>,
}

impl<'a> HubWatch<'a> {
    /// Watches `spec` from revision `from` on (0 = from the next revision).
    pub(super) fn start(core: &'a Core, spec: WatchSpec, from: i64) -> Self {
        let key = (NEXT_STREAM.fetch_add(1, Ordering::Relaxed), 0);
        let (tx, rx) = mpsc::channel(64);
        core.state.hub.watch(key, spec, from, tx);
        Self { core, key, rx }
    }

    /// The next batch of events.
    ///
    /// # Errors
    /// [`ApiError::Compacted`] when the revisions to watch were compacted away;
    /// [`ApiError::Stopped`] when the hub let go of the watcher.
    pub(super) async fn next(&mut self) -> Result<WatchBatch, ApiError> {
        match self.rx.recv().await {
            Some(b) if b.compact_revision != 0 => Err(ApiError::Compacted),
            Some(b) => Ok(b),
            None => Err(ApiError::Stopped),
        }
    }
}

impl Drop for HubWatch<'_> {
    fn drop(&mut self) {
        self.core.state.hub.cancel(self.key);
    }
}

/// Releases a waiter's key if dropped while armed: a client that goes away while its request
/// waits leaves no key behind that would block others (etcd deletes it the same way).
pub(super) struct ReleaseOnDrop {
    core: Option<Arc<Core>>,
    key: Vec<u8>,
    create_rev: Option<i64>,
}

impl ReleaseOnDrop {
    /// Arms the guard for `key` (see [`release`] for `create_rev`).
    pub(super) fn arm(core: Arc<Core>, key: Vec<u8>, create_rev: Option<i64>) -> Self {
        Self {
            core: Some(core),
            key,
            create_rev,
        }
    }

    /// Disarms the guard: the key stays.
    pub(super) fn disarm(mut self) {
        self.core = None;
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let Some(core) = self.core.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            debug!("no runtime to release an abandoned waiter key; its lease will remove it");
            return;
        };
        let key = std::mem::take(&mut self.key);
        let create_rev = self.create_rev;
        runtime.spawn(async move {
            if let Err(e) = release(&core, &key, create_rev).await {
                debug!(key = %String::from_utf8_lossy(&key), error = %e, "releasing an abandoned waiter key failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"a/"), b"a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn waiter_keys_format_the_lease_like_go() {
        assert_eq!(waiter_key(b"l/", 0x694d_77aa), b"l/694d77aa");
        assert_eq!(waiter_key(b"l/", -1), b"l/-1");
        assert_eq!(waiter_key(&prefix_of(b""), 255), b"/ff");
    }
}
