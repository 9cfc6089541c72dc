//! Leases in a cluster: the leader keeps them. A lease granted and kept alive through a
//! follower stays alive past its TTL; when the leader is killed the new leader gives every
//! lease its full TTL again plus an election timeout (etcd's `Promote`), so a lease about to
//! expire survives the change; without keep-alives the lease expires and its key is deleted on
//! every member.
//!
//! The same scenario runs against real etcd 3.4 as the reference.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::lease_client::LeaseClient;
use kvd::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseTimeToLiveRequest, PutRequest,
};
use tonic::transport::Channel;

use crate::client::{self, within, OP_TIMEOUT};
use crate::harness::{etcd_bin, kvd_bin, Cluster, ClusterOpts, ELECTION_MS};

const WAIT: Duration = Duration::from_secs(30);
const TTL: i64 = 4;

async fn grant_with_key(ch: &Channel, key: &str) -> i64 {
    let id = within(
        OP_TIMEOUT,
        LeaseClient::new(ch.clone()).lease_grant(LeaseGrantRequest { ttl: TTL, id: 0 }),
    )
    .await
    .expect("lease grant")
    .into_inner()
    .id;
    within(
        OP_TIMEOUT,
        KvClient::new(ch.clone()).put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            lease: id,
            ..Default::default()
        }),
    )
    .await
    .expect("put with lease");
    id
}

/// Remaining TTL of lease `id` as member `ch` reports it (-1 once it is gone).
async fn ttl(ch: &Channel, id: i64) -> i64 {
    within(
        OP_TIMEOUT,
        LeaseClient::new(ch.clone()).lease_time_to_live(LeaseTimeToLiveRequest { id, keys: false }),
    )
    .await
    .expect("lease time-to-live")
    .into_inner()
    .ttl
}

/// Waits until `key` is gone on every member in `members`; the time it took.
async fn wait_deleted(c: &Cluster, members: &[usize], key: &str, label: &str) -> Duration {
    let t = Instant::now();
    for &i in members {
        let ch = c.nodes[i].channel();
        loop {
            let r = client::get(&ch, key, true)
                .await
                .expect("serializable read");
            if r.value.is_none() {
                break;
            }
            assert!(
                t.elapsed() < WAIT,
                "{label}: {key} still on {} after {WAIT:?}",
                c.nodes[i].spec.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    t.elapsed()
}

async fn scenario(bin: PathBuf, label: &str) {
    let mut opts = ClusterOpts::kvd(3);
    opts.bin = bin;
    let mut c = Cluster::start(opts).await;
    let all = [0, 1, 2];
    let leader = c.wait_leader(&all, None, WAIT).await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let fch = c.nodes[follower].channel();

    // kept alive through a follower: alive well past its TTL
    let kept = grant_with_key(&fch, "lease/kept").await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // queued before the call: etcd sends the response headers only with its first answer
    tx.send(LeaseKeepAliveRequest { id: kept })
        .await
        .expect("queue keep-alive");
    let mut stream = LeaseClient::new(fch.clone())
        .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("keep-alive stream")
        .into_inner();
    let until = Instant::now() + Duration::from_secs(TTL as u64 + 2);
    loop {
        let resp = within(OP_TIMEOUT, stream.message())
            .await
            .expect("keep-alive answer")
            .expect("keep-alive stream open");
        assert_eq!(
            (resp.id, resp.ttl),
            (kept, TTL),
            "{label}: keep-alive answer"
        );
        if Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(LeaseKeepAliveRequest { id: kept })
            .await
            .expect("send keep-alive");
    }
    let remaining = ttl(&c.nodes[other].channel(), kept).await;
    assert!(
        remaining >= TTL - 2,
        "{label}: the leader saw the keep-alives sent to a follower (remaining TTL {remaining})"
    );
    drop(tx);
    drop(stream);

    // a lease close to expiry when the leader dies gets its TTL back from the new leader
    let expiring = grant_with_key(&fch, "lease/expiring").await;
    tokio::time::sleep(Duration::from_millis((TTL as u64 - 1) * 1000)).await;
    let old_id = c.nodes[leader].id;
    c.nodes[leader].kill9();
    let killed_at = Instant::now();
    let survivors = [follower, other];
    c.wait_leader(&survivors, Some(old_id), WAIT).await;
    let after = ttl(&fch, expiring).await;
    assert!(
        after >= TTL - 1,
        "{label}: the new leader extends the lease (remaining TTL {after} after the change)"
    );
    let gone_after =
        killed_at.elapsed() + wait_deleted(&c, &survivors, "lease/expiring", label).await;
    assert!(
        gone_after >= Duration::from_secs(TTL as u64 - 1),
        "{label}: the lease expired {gone_after:?} after the leader change, before its renewed TTL"
    );
    // and the lease kept alive earlier expires once nobody keeps it alive
    wait_deleted(&c, &survivors, "lease/kept", label).await;
    assert_eq!(ttl(&fch, kept).await, -1, "{label}: expired lease is gone");

    // the killed member comes back without the expired keys
    c.nodes[leader].restart().await;
    wait_deleted(&c, &all, "lease/expiring", label).await;
    c.assert_hashes_agree(&all, WAIT).await;
    eprintln!(
        "[{label}] remaining TTL {after}s right after the leader change (TTL {TTL}s, election timeout {ELECTION_MS} ms); expired {gone_after:?} after the kill"
    );
}

#[test]
fn leases_follow_the_leader() {
    crate::run("leases", Duration::from_secs(120), async {
        scenario(kvd_bin(), "leases").await;
    });
}

#[test]
fn leases_follow_the_leader_etcd_reference() {
    crate::run_on_etcd("leases-etcd", Duration::from_secs(120), async {
        scenario(etcd_bin(), "leases-etcd").await;
    });
}
