use kvd::proto::etcdserverpb::{
    compare, request_op, CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};

use crate::common::{within, Member};

fn put(k: &str, v: &str) -> PutRequest {
    PutRequest {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    }
}

fn get(k: &str) -> RangeRequest {
    RangeRequest {
        key: k.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn put_get_delete_follow_etcd_revisions() {
    let m = Member::start().await;
    let mut kv = m.kv().await;
    within(async {
        let r = kv.range(get("a")).await.expect("range").into_inner();
        assert_eq!(
            r.header.expect("header").revision,
            1,
            "a fresh member is at revision 1"
        );
        let p = kv.put(put("a", "1")).await.expect("put").into_inner();
        assert_eq!(p.header.expect("header").revision, 2);
        kv.put(put("a", "2")).await.expect("put");
        let r = kv.range(get("a")).await.expect("range").into_inner();
        let kv0 = &r.kvs[0];
        assert_eq!(
            (kv0.create_revision, kv0.mod_revision, kv0.version),
            (2, 3, 2)
        );
        assert_eq!(r.count, 1);
        let d = kv
            .delete_range(DeleteRangeRequest {
                key: "a".into(),
                prev_kv: true,
                ..Default::default()
            })
            .await
            .expect("delete")
            .into_inner();
        assert_eq!(d.deleted, 1);
        assert_eq!(d.prev_kvs[0].value, b"2");
        let d = kv
            .delete_range(DeleteRangeRequest {
                key: "missing".into(),
                ..Default::default()
            })
            .await
            .expect("delete")
            .into_inner();
        assert_eq!(
            (d.deleted, d.header.expect("header").revision),
            (0, 4),
            "no revision for nothing deleted"
        );
        let err = kv.put(put("", "x")).await.expect_err("empty key");
        assert_eq!(err.message(), "etcdserver: key is not provided");
    })
    .await;
}

#[tokio::test]
async fn txn_compares_branches_and_errors() {
    let m = Member::start().await;
    let mut kv = m.kv().await;
    within(async {
        kv.put(put("k", "v1")).await.expect("put");
        let t = TxnRequest {
            compare: vec![Compare {
                key: "k".into(),
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Value as i32,
                target_union: Some(compare::TargetUnion::Value("v1".into())),
                ..Default::default()
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(put("k", "v2"))),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(get("k"))),
            }],
        };
        let r = kv.txn(t.clone()).await.expect("txn").into_inner();
        assert!(r.succeeded);
        assert_eq!(r.header.expect("header").revision, 3);
        let r = kv.txn(t).await.expect("txn").into_inner();
        assert!(!r.succeeded, "the value is v2 now");
        let dup = TxnRequest {
            success: vec![
                RequestOp {
                    request: Some(request_op::Request::RequestPut(put("a", "1"))),
                },
                RequestOp {
                    request: Some(request_op::Request::RequestPut(put("a", "2"))),
                },
            ],
            ..Default::default()
        };
        let err = kv.txn(dup).await.expect_err("duplicate");
        assert_eq!(
            err.message(),
            "etcdserver: duplicate key given in txn request"
        );
    })
    .await;
}

#[tokio::test]
async fn compaction_and_revision_errors_and_restart() {
    let mut m = Member::start().await;
    let mut kv = m.kv().await;
    within(async {
        for v in ["1", "2", "3"] {
            kv.put(put("c", v)).await.expect("put");
        }
        kv.compact(CompactionRequest {
            revision: 3,
            physical: true,
        })
        .await
        .expect("compact");
        let err = kv
            .range(RangeRequest {
                key: "c".into(),
                revision: 2,
                ..Default::default()
            })
            .await
            .expect_err("compacted");
        assert_eq!(
            err.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let err = kv
            .range(RangeRequest {
                key: "c".into(),
                revision: 99,
                ..Default::default()
            })
            .await
            .expect_err("future");
        assert_eq!(
            err.message(),
            "etcdserver: mvcc: required revision is a future revision"
        );
    })
    .await;
    m.restart().await;
    let mut kv = m.kv().await;
    within(async {
        let r = kv.range(get("c")).await.expect("range").into_inner();
        assert_eq!(r.kvs[0].value, b"3");
        assert_eq!(r.header.expect("header").revision, 4);
        let err = kv
            .range(RangeRequest {
                key: "c".into(),
                revision: 2,
                ..Default::default()
            })
            .await
            .expect_err("compacted");
        assert_eq!(
            err.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
    })
    .await;
}
