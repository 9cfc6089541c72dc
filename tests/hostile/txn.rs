//! Nested txns: etcd applies a chain nested 50 (and 128) levels deep, and refuses one deeper
//! than its operation budget allows (each level spends one of `--max-txn-ops`, 128) with
//! `too many operations in txn request` — at 129 levels as at 5000.

use std::time::Duration;

use kvd::proto::etcdserverpb::request_op::Request;
use kvd::proto::etcdserverpb::{PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest};
use prost::Message;
use tonic::Code;

use crate::raw;
use crate::server::Server;

/// The encoding of `levels` nested txns (each in its parent's success branch), the innermost
/// putting `key`: built iteratively, as encoding a deep value would recurse.
fn chain(levels: usize, key: &str) -> Vec<u8> {
    let mut bytes = TxnRequest {
        success: vec![RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.as_bytes().to_vec(),
                value: b"deep".to_vec(),
                ..Default::default()
            })),
        }],
        ..Default::default()
    }
    .encode_to_vec();
    for _ in 1..levels {
        let mut op = Vec::new();
        prost::encoding::bytes::encode(4, &bytes, &mut op);
        let mut txn = Vec::new();
        prost::encoding::bytes::encode(2, &op, &mut txn);
        bytes = txn;
    }
    bytes
}

#[test]
fn nested_txns_are_applied_or_refused_as_etcd_does() {
    for (label, bin) in crate::servers() {
        crate::run("nested_txns", Duration::from_secs(60), async {
            let mut server = Server::start(label, &bin, &[]).await;
            let ch = server.channel().await;
            for levels in [50, 128] {
                let key = format!("nested/{levels}");
                let answer = raw::unary(&ch, "/etcdserverpb.KV/Txn", chain(levels, &key))
                    .await
                    .unwrap_or_else(|e| panic!("{label}: {levels} levels: {e:?}"));
                assert!(!answer.is_empty(), "{label}: a txn response");
                let got = raw::unary(
                    &ch,
                    "/etcdserverpb.KV/Range",
                    RangeRequest {
                        key: key.clone().into_bytes(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                )
                .await
                .expect("range");
                let got = RangeResponse::decode(got).expect("range response");
                assert_eq!(got.kvs.len(), 1, "{label}: {levels} levels applied");
                assert_eq!(got.kvs[0].value, b"deep");
            }
            for levels in [129, 5000] {
                let refused = raw::unary(&ch, "/etcdserverpb.KV/Txn", chain(levels, "nested/no"))
                    .await
                    .expect_err("over the operation budget");
                assert_eq!(
                    (refused.code(), refused.message()),
                    (
                        Code::InvalidArgument,
                        "etcdserver: too many operations in txn request"
                    ),
                    "{label}: {levels} levels"
                );
            }
            server.assert_serving().await;
        });
    }
}
