//! Thin, bounded wrappers around kvd's generated etcd v3 gRPC clients.
//!
//! Every call has a client-side deadline ([`OP_TIMEOUT`] unless told otherwise), so a hung
//! member fails a test instead of hanging it; a missed deadline surfaces as a
//! `DeadlineExceeded` status with the message `client deadline`.

use std::future::Future;
use std::time::Duration;

use kvd::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use kvd::proto::etcdserverpb::request_op::Request as OpRequest;
use kvd::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, HashKvRequest, HashKvResponse, PutRequest, RangeRequest,
    RequestOp, StatusRequest, StatusResponse, TxnRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Default client-side bound on one call (longer than a member's own request timeout of
/// 5 s + 2 x election timeout, so server-side errors win).
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` with a deadline; a miss becomes `DeadlineExceeded("client deadline")`.
pub async fn within<T>(
    d: Duration,
    f: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => r,
        Err(_) => Err(Status::new(Code::DeadlineExceeded, "client deadline")),
    }
}

/// Outcome of a single-key read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The value, if the key exists.
    pub value: Option<String>,
    /// `mod_revision` of the key (0 when absent).
    pub mod_revision: i64,
    /// Header revision.
    pub revision: i64,
}

/// Reads `key` (linearizable unless `serializable`).
pub async fn get(ch: &Channel, key: &str, serializable: bool) -> Result<Read, Status> {
    let mut kv = KvClient::new(ch.clone());
    let r = within(
        OP_TIMEOUT,
        kv.range(RangeRequest {
            key: key.as_bytes().to_vec(),
            serializable,
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    let kv0 = r.kvs.first();
    Ok(Read {
        value: kv0.map(|k| String::from_utf8_lossy(&k.value).into_owned()),
        mod_revision: kv0.map_or(0, |k| k.mod_revision),
        revision: r.header.map_or(0, |h| h.revision),
    })
}

/// Every key-value under `prefix` as (key, value, mod_revision) (linearizable unless
/// `serializable`).
pub async fn get_prefix(
    ch: &Channel,
    prefix: &str,
    serializable: bool,
) -> Result<Vec<(String, String, i64)>, Status> {
    let mut kv = KvClient::new(ch.clone());
    let r = within(
        OP_TIMEOUT,
        kv.range(RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_end(prefix.as_bytes()),
            serializable,
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    Ok(r.kvs
        .iter()
        .map(|k| {
            (
                String::from_utf8_lossy(&k.key).into_owned(),
                String::from_utf8_lossy(&k.value).into_owned(),
                k.mod_revision,
            )
        })
        .collect())
}

/// The range end that selects every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Puts `key=value`; returns the header revision of the write.
pub async fn put(ch: &Channel, key: &str, value: &str) -> Result<i64, Status> {
    put_within(ch, key, value, OP_TIMEOUT).await
}

/// [`put`] with an explicit client deadline.
pub async fn put_within(ch: &Channel, key: &str, value: &str, d: Duration) -> Result<i64, Status> {
    let mut kv = KvClient::new(ch.clone());
    let r = within(
        d,
        kv.put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    Ok(r.header.map_or(0, |h| h.revision))
}

/// Deletes `key`; returns how many keys were deleted (0 or 1).
pub async fn delete(ch: &Channel, key: &str) -> Result<i64, Status> {
    let mut kv = KvClient::new(ch.clone());
    let r = within(
        OP_TIMEOUT,
        kv.delete_range(DeleteRangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    Ok(r.deleted)
}

/// Compare-and-set: if `key`'s value is `expected` (`None`: the key does not exist), put
/// `new`. Returns whether the comparison succeeded.
pub async fn cas(
    ch: &Channel,
    key: &str,
    expected: Option<&str>,
    new: &str,
) -> Result<bool, Status> {
    let compare = match expected {
        Some(v) => Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: key.as_bytes().to_vec(),
            target_union: Some(TargetUnion::Value(v.as_bytes().to_vec())),
            ..Default::default()
        },
        None => Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: key.as_bytes().to_vec(),
            target_union: Some(TargetUnion::CreateRevision(0)),
            ..Default::default()
        },
    };
    let mut kv = KvClient::new(ch.clone());
    let r = within(
        OP_TIMEOUT,
        kv.txn(TxnRequest {
            compare: vec![compare],
            success: vec![RequestOp {
                request: Some(OpRequest::RequestPut(PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: new.as_bytes().to_vec(),
                    ..Default::default()
                })),
            }],
            failure: vec![],
        }),
    )
    .await?
    .into_inner();
    Ok(r.succeeded)
}

/// `Status` of one member (`etcdctl endpoint status`), bounded by 2 s.
pub async fn status(ch: &Channel) -> Result<StatusResponse, Status> {
    let mut m = MaintenanceClient::new(ch.clone());
    Ok(within(Duration::from_secs(2), m.status(StatusRequest {}))
        .await?
        .into_inner())
}

/// `HashKV` at `revision` (`etcdctl endpoint hashkv --rev`).
pub async fn hash_kv(ch: &Channel, revision: i64) -> Result<HashKvResponse, Status> {
    let mut m = MaintenanceClient::new(ch.clone());
    Ok(within(OP_TIMEOUT, m.hash_kv(HashKvRequest { revision }))
        .await?
        .into_inner())
}
