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
