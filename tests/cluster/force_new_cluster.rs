//! `--force-new-cluster`: two of three members are lost for good; the survivor, restarted with
//! the flag, serves again as a one-member cluster with every committed key, its own member ID
//! and the cluster's ID, drops a write it never got committed, and grows back to two members
//! with `member add`.
//!
//! The same scenario runs against real etcd 3.4 as the reference.

use std::path::PathBuf;
use std::time::Duration;

use crate::client;
use crate::harness::{etcd_bin, kvd_bin, Cluster, ClusterOpts};

const WAIT: Duration = Duration::from_secs(30);
const KEYS: usize = 50;

async fn scenario(bin: PathBuf, label: &str) {
    // kvd's own log lines are checked only when the binary is kvd
    let is_kvd = bin != etcd_bin();
    let mut opts = ClusterOpts::kvd(3);
    opts.bin = bin;
    let mut c = Cluster::start(opts).await;
    let all = [0, 1, 2];
    let s = c.wait_leader(&all, None, WAIT).await;
    let ch = c.nodes[s].channel();
    for i in 0..KEYS {
        client::put(&ch, &format!("f/{i:03}"), &format!("v{i}"))
            .await
            .unwrap_or_else(|e| panic!("{label}: put {i}: {e}"));
    }
    let committed_rev = c.revision(s).await;
    let before = client::status(&ch).await.expect("status");
    let cluster_id = before.header.as_ref().map_or(0, |h| h.cluster_id);
    let survivor_id = c.nodes[s].id;

    // the quorum is lost for good: the two followers are gone
    for i in all.iter().copied().filter(|&i| i != s) {
        c.nodes[i].kill9();
    }
    // a write the survivor can no longer commit
    let lost = client::put_within(&ch, "f/lost", "x", Duration::from_secs(3)).await;
    assert!(
        lost.is_err(),
        "{label}: a member without quorum acknowledged a write: {lost:?}"
    );

    // recovery
    c.nodes[s].kill9();
    c.nodes[s].restart_with(&["--force-new-cluster"]).await;
    let ch = c.nodes[s].channel();
    if is_kvd {
        let log = c.nodes[s].log_text();
        assert!(
            log.contains("--force-new-cluster: starting as the only member of the cluster"),
            "{label}: log tail:\n{}",
            c.nodes[s].log_tail(20)
        );
    }
    let members = c.member_list(s).await;
    assert_eq!(
        members.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![survivor_id],
        "{label}: only the survivor is left: {members:?}"
    );
    let after = client::status(&ch).await.expect("status after recovery");
    let header = after.header.expect("status header");
    assert_eq!(header.cluster_id, cluster_id, "{label}: same cluster ID");
    assert_eq!(header.member_id, survivor_id, "{label}: same member ID");
    assert_eq!(after.leader, survivor_id, "{label}: the survivor leads");
    let keys = client::get_prefix(&ch, "f/", false)
        .await
        .expect("read after recovery");
    assert_eq!(keys.len(), KEYS, "{label}: every committed key is kept");
    assert_eq!(
        client::get(&ch, "f/lost", false).await.expect("read").value,
        None,
        "{label}: the uncommitted write is dropped"
    );
    let next = client::put(&ch, "f/after", "1")
        .await
        .expect("the recovered member takes writes");
    assert_eq!(
        next,
        committed_rev + 1,
        "{label}: revisions continue from the last committed one"
    );

    // a second start with the flag changes nothing
    c.nodes[s].kill9();
    c.nodes[s].restart_with(&["--force-new-cluster"]).await;
    if is_kvd {
        assert!(c.nodes[s]
            .log_text()
            .contains("this member already is the only member; nothing to change"));
    }
    assert_eq!(c.member_list(s).await.len(), 1, "{label}");
    assert_eq!(
        client::get(&c.nodes[s].channel(), "f/after", false)
            .await
            .expect("read after the second start")
            .value
            .as_deref(),
        Some("1"),
        "{label}: the write acknowledged by the lone member is kept"
    );

    // the cluster grows again: a new member joins and catches up
    let added = c.add_member("m4", false, s).await;
    assert_eq!(c.member_list(s).await.len(), 2, "{label}");
    client::put(&c.nodes[s].channel(), "f/grown", "1")
        .await
        .expect("write with two members");
    let (rev, hash) = c.assert_hashes_agree(&[s, added], WAIT).await;
    eprintln!(
        "[{label}] recovered {KEYS} keys at revision {committed_rev}; grew back to 2 members, hashkv {hash:#x} at revision {rev}"
    );
}

#[test]
fn force_new_cluster_recovers_a_lone_survivor() {
    crate::run("force-new-cluster", Duration::from_secs(150), async {
        scenario(kvd_bin(), "force-new-cluster").await;
    });
}

#[test]
fn force_new_cluster_recovers_a_lone_survivor_etcd_reference() {
    crate::run_on_etcd("force-new-cluster-etcd", Duration::from_secs(150), async {
        scenario(etcd_bin(), "force-new-cluster-etcd").await;
    });
}
