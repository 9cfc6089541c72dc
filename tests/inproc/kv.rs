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

/// A range over more than 10 000 keys runs on a blocking thread and reads its values with one
/// scan of the revision span: the answer must be the one a lookup per key gives, at the
/// current revision and at an older one, with limits, keys only and counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_over_many_keys_match_single_gets() {
    const KEYS: usize = 10_240;
    let m = Member::start().await;
    let mut kv = m.kv().await;
    within(async {
        let key = |i: usize| format!("big/{i:05}");
        // 128 puts per transaction: the changes share main revisions and differ in sub ones.
        let writer = kv.clone();
        let put_all = |keys: Vec<usize>, prefix: &'static str| {
            let mut kv = writer.clone();
            async move {
                for chunk in keys.chunks(128) {
                    let success = chunk
                        .iter()
                        .map(|&i| RequestOp {
                            request: Some(request_op::Request::RequestPut(put(
                                &key(i),
                                &format!("{prefix}{i}"),
                            ))),
                        })
                        .collect();
                    kv.txn(TxnRequest {
                        success,
                        ..Default::default()
                    })
                    .await
                    .expect("txn");
                }
            }
        };
        put_all((0..KEYS).collect(), "v").await;
        let before = kv.range(get("big/00000")).await.expect("get").into_inner();
        let loaded_at = before.header.expect("header").revision;
        put_all((0..KEYS).step_by(2).collect(), "w").await;
        let all = |revision: i64| RangeRequest {
            key: "big/".into(),
            range_end: "big0".into(),
            revision,
            ..Default::default()
        };
        let now = kv.range(all(0)).await.expect("range").into_inner();
        assert_eq!(
            (now.kvs.len(), now.count, now.more),
            (KEYS, KEYS as i64, false)
        );
        for (i, got) in now.kvs.iter().enumerate() {
            let want = if i % 2 == 0 {
                format!("w{i}")
            } else {
                format!("v{i}")
            };
            assert_eq!(
                (got.key.clone(), got.value.clone()),
                (key(i).into_bytes(), want.into_bytes())
            );
        }
        for i in [0, 1, 5_000, KEYS - 1] {
            let one = kv.range(get(&key(i))).await.expect("get").into_inner();
            assert_eq!(one.kvs[0], now.kvs[i], "key {i} alone and in the range");
        }
        let old = kv.range(all(loaded_at)).await.expect("range").into_inner();
        assert_eq!(old.kvs.len(), KEYS);
        assert!(old
            .kvs
            .iter()
            .enumerate()
            .all(|(i, kv)| kv.value == format!("v{i}").into_bytes() && kv.version == 1));
        let limited = kv
            .range(RangeRequest {
                limit: 10,
                ..all(0)
            })
            .await
            .expect("range")
            .into_inner();
        assert_eq!(
            (limited.kvs.len(), limited.count, limited.more),
            (10, KEYS as i64, true)
        );
        let keys_only = kv
            .range(RangeRequest {
                keys_only: true,
                ..all(0)
            })
            .await
            .expect("range")
            .into_inner();
        assert_eq!(keys_only.kvs.len(), KEYS);
        assert!(keys_only.kvs.iter().all(|kv| kv.value.is_empty()));
        let counted = kv
            .range(RangeRequest {
                count_only: true,
                ..all(0)
            })
            .await
            .expect("range")
            .into_inner();
        assert_eq!((counted.kvs.len(), counted.count), (0, KEYS as i64));
    })
    .await;
}
