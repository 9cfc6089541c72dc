use kvd::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    PutRequest, RangeRequest,
};

use crate::common::{within, Member};

#[tokio::test]
async fn grant_attach_revoke_and_errors() {
    let m = Member::start().await;
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let g = lease
            .lease_grant(LeaseGrantRequest { ttl: 1, id: 0 })
            .await
            .expect("grant")
            .into_inner();
        assert_eq!(g.ttl, 2, "the minimum TTL is ceil(1.5 x election timeout)");
        assert!(g.id > 0);
        kv.put(PutRequest {
            key: "l".into(),
            value: "v".into(),
            lease: g.id,
            ..Default::default()
        })
        .await
        .expect("put with lease");
        let ttl = lease
            .lease_time_to_live(LeaseTimeToLiveRequest {
                id: g.id,
                keys: true,
            })
            .await
            .expect("ttl")
            .into_inner();
        assert_eq!(ttl.keys, vec![b"l".to_vec()]);
        assert_eq!(ttl.granted_ttl, 2);
        lease
            .lease_revoke(LeaseRevokeRequest { id: g.id })
            .await
            .expect("revoke");
        let r = kv
            .range(RangeRequest {
                key: "l".into(),
                ..Default::default()
            })
            .await
            .expect("range")
            .into_inner();
        assert!(r.kvs.is_empty(), "revoking deletes attached keys");
        let err = lease
            .lease_revoke(LeaseRevokeRequest { id: g.id })
            .await
            .expect_err("gone");
        assert_eq!(err.message(), "etcdserver: requested lease not found");
        let err = kv
            .put(PutRequest {
                key: "x".into(),
                lease: 12345,
                ..Default::default()
            })
            .await
            .expect_err("unknown lease");
        assert_eq!(err.message(), "etcdserver: requested lease not found");
        let ttl = lease
            .lease_time_to_live(LeaseTimeToLiveRequest {
                id: 12345,
                keys: false,
            })
            .await
            .expect("ttl")
            .into_inner();
        assert_eq!(ttl.ttl, -1, "an unknown lease answers TTL -1");
    })
    .await;
}

#[tokio::test]
async fn keep_alive_and_expiry() {
    let m = Member::start().await;
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let g = lease
            .lease_grant(LeaseGrantRequest { ttl: 2, id: 0 })
            .await
            .expect("grant")
            .into_inner();
        let reqs = tokio_stream::iter(vec![LeaseKeepAliveRequest { id: g.id }]);
        let mut resp = lease
            .lease_keep_alive(reqs)
            .await
            .expect("keepalive")
            .into_inner();
        let first = resp.message().await.expect("stream").expect("one response");
        assert_eq!((first.id, first.ttl), (g.id, 2));
        kv.put(PutRequest {
            key: "e".into(),
            value: "v".into(),
            lease: g.id,
            ..Default::default()
        })
        .await
        .expect("put");
        // The key must vanish once the lease expires (deadline bounded by `within`).
        loop {
            let r = kv
                .range(RangeRequest {
                    key: "e".into(),
                    ..Default::default()
                })
                .await
                .expect("range")
                .into_inner();
            if r.kvs.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let ttl = lease
            .lease_time_to_live(LeaseTimeToLiveRequest {
                id: g.id,
                keys: false,
            })
            .await
            .expect("ttl")
            .into_inner();
        assert_eq!(ttl.ttl, -1);
    })
    .await;
}

/// A clean stop saves the key index and the next start loads it (`member/kvd/key-index`):
/// everything a rebuild would give must come back, the keys attached to leases included.
#[tokio::test]
async fn a_clean_restart_keeps_keys_history_and_lease_attachments() {
    let mut m = Member::start().await;
    let image = m.dir.path().join("member").join("kvd").join("key-index");
    let lease_id = within(async {
        let mut lease = m.lease().await;
        let mut kv = m.kv().await;
        let g = lease
            .lease_grant(LeaseGrantRequest { ttl: 60, id: 0 })
            .await
            .expect("grant")
            .into_inner();
        for (key, value, lease) in [
            ("a", "1", 0),
            ("a", "2", 0),
            ("b", "1", g.id),
            ("c", "1", g.id),
        ] {
            kv.put(PutRequest {
                key: key.into(),
                value: value.into(),
                lease,
                ..Default::default()
            })
            .await
            .expect("put");
        }
        g.id
    })
    .await;
    m.stop().await;
    assert!(image.exists(), "a clean stop saves the key index");
    m.start_again().await;
    assert!(!image.exists(), "the next start takes it");
    within(async {
        let mut lease = m.lease().await;
        let mut kv = m.kv().await;
        let old = kv
            .range(RangeRequest {
                key: "a".into(),
                revision: 2,
                ..Default::default()
            })
            .await
            .expect("range at an old revision")
            .into_inner();
        assert_eq!(old.kvs[0].value, b"1", "history is kept");
        let ttl = lease
            .lease_time_to_live(LeaseTimeToLiveRequest {
                id: lease_id,
                keys: true,
            })
            .await
            .expect("ttl")
            .into_inner();
        assert_eq!(ttl.keys, vec![b"b".to_vec(), b"c".to_vec()]);
        lease
            .lease_revoke(LeaseRevokeRequest { id: lease_id })
            .await
            .expect("revoke");
        let all = kv
            .range(RangeRequest {
                key: "a".into(),
                range_end: "z".into(),
                ..Default::default()
            })
            .await
            .expect("range")
            .into_inner();
        let keys: Vec<_> = all.kvs.iter().map(|kv| kv.key.clone()).collect();
        assert_eq!(
            keys,
            vec![b"a".to_vec()],
            "revoking deletes the attached keys"
        );
        assert_eq!(all.header.expect("header").revision, 6);
    })
    .await;
}
