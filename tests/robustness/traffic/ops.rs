//! Executing one [`Request`] against a member and recording it.

use kvd::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::lease_client::LeaseClient;
use kvd::proto::etcdserverpb::request_op::Request as OpRequest;
use kvd::proto::etcdserverpb::response_op::Response as OpResponse;
use kvd::proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest,
    PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Status;

use crate::client::{within, OP_TIMEOUT};
use crate::record::{Clock, Cond, Kv, Record, Request, Response, Then};
use crate::slots::Target;

/// Sends `req` to `target` and records the call as client `client`.
pub async fn call(client: usize, target: &Target, clock: &Clock, req: Request) -> Record {
    let started = clock.now();
    let resp = execute(&target.channel, &req).await;
    let ret = resp.as_ref().ok().map(|_| clock.now());
    Record {
        client,
        member: target.name.clone(),
        call: started,
        ret,
        req,
        resp: resp.map_err(|s| format!("{:?}: {}", s.code(), s.message())),
    }
}

fn compare(key: &str, cond: &Cond) -> Compare {
    let key = key.as_bytes().to_vec();
    let equal = CompareResult::Equal as i32;
    match cond {
        Cond::Value(Some(v)) => Compare {
            result: equal,
            target: CompareTarget::Value as i32,
            key,
            target_union: Some(TargetUnion::Value(v.as_bytes().to_vec())),
            ..Default::default()
        },
        Cond::Value(None) => Compare {
            result: equal,
            target: CompareTarget::Create as i32,
            key,
            target_union: Some(TargetUnion::CreateRevision(0)),
            ..Default::default()
        },
        Cond::ModRevision { rev, .. } => Compare {
            result: equal,
            target: CompareTarget::Mod as i32,
            key,
            target_union: Some(TargetUnion::ModRevision(*rev)),
            ..Default::default()
        },
        Cond::Version(v) => Compare {
            result: equal,
            target: CompareTarget::Version as i32,
            key,
            target_union: Some(TargetUnion::Version(*v)),
            ..Default::default()
        },
    }
}

/// Runs `req` on `ch`, bounded by the client deadline.
pub async fn execute(ch: &Channel, req: &Request) -> Result<Response, Status> {
    let mut kv = KvClient::new(ch.clone());
    match req {
        Request::Get { key } => {
            let r = within(
                OP_TIMEOUT,
                kv.range(RangeRequest {
                    key: key.as_bytes().to_vec(),
                    ..Default::default()
                }),
            )
            .await?
            .into_inner();
            Ok(Response::Get {
                kv: r.kvs.first().map(Kv::from),
                revision: r.header.map_or(0, |h| h.revision),
            })
        }
        Request::Put { key, value, lease } => {
            let r = within(
                OP_TIMEOUT,
                kv.put(PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: value.as_bytes().to_vec(),
                    lease: *lease,
                    ..Default::default()
                }),
            )
            .await?
            .into_inner();
            Ok(Response::Put {
                revision: r.header.map_or(0, |h| h.revision),
            })
        }
        Request::Delete { key } => {
            let r = within(
                OP_TIMEOUT,
                kv.delete_range(DeleteRangeRequest {
                    key: key.as_bytes().to_vec(),
                    ..Default::default()
                }),
            )
            .await?
            .into_inner();
            Ok(Response::Delete {
                deleted: r.deleted,
                revision: r.header.map_or(0, |h| h.revision),
            })
        }
        Request::Txn { key, cond, then } => {
            let bkey = key.as_bytes().to_vec();
            let success = match then {
                Then::Put(v) => OpRequest::RequestPut(PutRequest {
                    key: bkey.clone(),
                    value: v.as_bytes().to_vec(),
                    ..Default::default()
                }),
                Then::Delete => OpRequest::RequestDeleteRange(DeleteRangeRequest {
                    key: bkey.clone(),
                    ..Default::default()
                }),
            };
            let r = within(
                OP_TIMEOUT,
                kv.txn(TxnRequest {
                    compare: vec![compare(key, cond)],
                    success: vec![RequestOp {
                        request: Some(success),
                    }],
                    failure: vec![RequestOp {
                        request: Some(OpRequest::RequestRange(RangeRequest {
                            key: bkey,
                            ..Default::default()
                        })),
                    }],
                }),
            )
            .await?
            .into_inner();
            let else_kv = if r.succeeded {
                None
            } else {
                match r.responses.first().and_then(|o| o.response.as_ref()) {
                    Some(OpResponse::ResponseRange(rr)) => rr.kvs.first().map(Kv::from),
                    other => {
                        return Err(Status::internal(format!(
                            "txn failure branch answered {other:?}, not a range"
                        )))
                    }
                }
            };
            Ok(Response::Txn {
                succeeded: r.succeeded,
                revision: r.header.map_or(0, |h| h.revision),
                else_kv,
            })
        }
        Request::List {
            start,
            end,
            limit,
            revision,
        } => {
            let r = within(
                OP_TIMEOUT,
                kv.range(RangeRequest {
                    key: start.as_bytes().to_vec(),
                    range_end: end.as_bytes().to_vec(),
                    limit: *limit,
                    revision: *revision,
                    ..Default::default()
                }),
            )
            .await?
            .into_inner();
            Ok(Response::List {
                kvs: r.kvs.iter().map(Kv::from).collect(),
                more: r.more,
                revision: r.header.map_or(0, |h| h.revision),
            })
        }
        Request::LeaseGrant { ttl } => {
            let mut lc = LeaseClient::new(ch.clone());
            let r = within(
                OP_TIMEOUT,
                lc.lease_grant(LeaseGrantRequest { ttl: *ttl, id: 0 }),
            )
            .await?
            .into_inner();
            if !r.error.is_empty() {
                return Err(Status::unknown(r.error));
            }
            Ok(Response::LeaseGrant {
                id: r.id,
                ttl: r.ttl,
            })
        }
        Request::LeaseKeepAlive { id } => {
            let mut lc = LeaseClient::new(ch.clone());
            let (tx, rx) = mpsc::channel(1);
            tx.send(LeaseKeepAliveRequest { id: *id })
                .await
                .map_err(|_| Status::internal("keep-alive queue closed"))?;
            let r = within(OP_TIMEOUT, async {
                let mut stream = lc
                    .lease_keep_alive(ReceiverStream::new(rx))
                    .await?
                    .into_inner();
                stream
                    .message()
                    .await?
                    .ok_or_else(|| Status::unavailable("keep-alive stream ended without an answer"))
            })
            .await?;
            drop(tx);
            Ok(Response::LeaseKeepAlive { ttl: r.ttl })
        }
        Request::Compact { revision } => {
            let r = within(
                OP_TIMEOUT,
                kv.compact(CompactionRequest {
                    revision: *revision,
                    physical: false,
                }),
            )
            .await?
            .into_inner();
            Ok(Response::Compact {
                revision: r.header.map_or(0, |h| h.revision),
            })
        }
    }
}
