//! A linearizable read waiting on a follower when the leader is cut off: once the others
//! elect a new leader, the read is answered with etcd's retryable `etcdserver: leader changed`
//! (code Unavailable), as etcd 3.4 does — the old leader's answer can never come.
//!
//! The same scenario runs against real etcd 3.4 as the reference for the text and code.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tonic::Status;

use crate::client;
use crate::harness::{etcd_bin, kvd_bin, Cluster, ClusterOpts};

const WAIT: Duration = Duration::from_secs(30);

/// The read's error and how long it waited.
async fn scenario(bin: PathBuf, label: &str) -> (Status, Duration) {
    let mut opts = ClusterOpts::kvd(3);
    opts.bin = bin;
    opts.proxied = true;
    let c = Cluster::start(opts).await;
    let net = c.net.clone().expect("proxied cluster");
    let all = [0, 1, 2];
    let leader = c.wait_leader(&all, None, WAIT).await;
    let ch: Vec<_> = c.nodes.iter().map(|n| n.channel()).collect();
    let rev = client::put(&ch[leader], "lc/key", "1")
        .await
        .expect("put before the cut");
    for &i in &all {
        c.wait_revision(i, rev, WAIT).await;
    }
    let follower = (leader + 1) % 3;
    let old_leader_id = c.nodes[leader].id;
    net.isolate(leader);
    let t = Instant::now();
    let read = client::get(&ch[follower], "lc/key", false).await;
    let took = t.elapsed();
    let err = match read {
        Ok(r) => panic!("{label}: a read pending on a cut-off leader was answered: {r:?}"),
        Err(e) => e,
    };
    // the others did elect a new leader, and then serve the same read
    let majority: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    c.wait_leader(&majority, Some(old_leader_id), WAIT).await;
    let again = client::get(&ch[follower], "lc/key", false)
        .await
        .unwrap_or_else(|e| panic!("{label}: the retried read failed: {e}"));
    assert_eq!(again.value.as_deref(), Some("1"), "{label}");
    eprintln!(
        "[{label}] pending read answered after {took:?}: {:?}: {}",
        err.code(),
        err.message()
    );
    (err, took)
}

fn assert_leader_changed(label: &str, err: &Status) {
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::Unavailable, "etcdserver: leader changed"),
        "{label}"
    );
}

#[test]
fn a_read_pending_on_a_lost_leader_gets_leader_changed() {
    crate::run("leader-changed", Duration::from_secs(120), async {
        let (err, _) = scenario(kvd_bin(), "leader-changed").await;
        assert_leader_changed("leader-changed", &err);
    });
}

#[test]
fn a_read_pending_on_a_lost_leader_gets_leader_changed_etcd_reference() {
    crate::run_on_etcd("leader-changed-etcd", Duration::from_secs(120), async {
        let (err, _) = scenario(etcd_bin(), "leader-changed-etcd").await;
        assert_leader_changed("leader-changed-etcd", &err);
    });
}
