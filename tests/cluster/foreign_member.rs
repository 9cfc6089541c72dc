//! A member of another cluster (another token, so another cluster ID) that is pointed at a
//! running member's peer URL is refused: the running member logs whom it refused and why,
//! the foreign member logs the refusal it got, and the cluster keeps serving undisturbed.

use std::time::{Duration, Instant};

use crate::client;
use crate::harness::{stable_port, testing_kvd, Cluster, ClusterOpts, Node, Spec};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_member_of_another_cluster_is_refused_and_logged_on_both_sides() {
    if !testing_kvd() {
        eprintln!("skipped: checks kvd's own log lines");
        return;
    }
    crate::run("foreign-member", Duration::from_secs(90), async {
        let c = Cluster::start(ClusterOpts::kvd(3)).await;
        let all = [0, 1, 2];
        let leader = c.wait_leader(&all, None, WAIT).await;
        let target = (leader + 1) % 3;
        let port = stable_port();
        let spec = Spec {
            name: "intruder".into(),
            client_port: stable_port(),
            peer_port: port,
            advertised_peer_port: port,
            peer_scheme: c.opts().peer_scheme,
        };
        // a two-member "cluster" of its own whose other member is a running member of ours
        let initial = format!(
            "intruder={},{}={}",
            spec.peer_url(),
            c.nodes[target].spec.name,
            c.nodes[target].spec.peer_url()
        );
        let mut flags = c.opts().flags.clone();
        flags.extend(["--initial-cluster-token".into(), "another-cluster".into()]);
        let intruder = Node::spawn(3, &c.opts().bin, spec, &initial, "new", &flags, None);

        let deadline = Instant::now() + WAIT;
        let (ours, theirs) = loop {
            let ours = c.nodes[target].log_text();
            let theirs = intruder.log_text();
            if ours.contains("rejected a peer of another cluster")
                && theirs.contains("peer refused our raft messages")
            {
                break (ours, theirs);
            }
            assert!(
                Instant::now() < deadline,
                "no refusal logged within {WAIT:?}; ours:\n{}\ntheirs:\n{}",
                c.nodes[target].log_tail(10),
                intruder.log_tail(10)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let line = ours
            .lines()
            .find(|l| l.contains("rejected a peer of another cluster"))
            .expect("refusal line");
        assert!(
            line.contains("their_cluster=") && line.contains("our_cluster="),
            "the refusal names both clusters: {line}"
        );
        let line = theirs
            .lines()
            .find(|l| l.contains("peer refused our raft messages"))
            .expect("refused line");
        assert!(
            line.contains("not to this cluster"),
            "the refused member is told why: {line}"
        );
        // the cluster is undisturbed
        let rev = client::put(&c.nodes[target].channel(), "foreign/after", "1")
            .await
            .expect("the cluster keeps serving");
        for &i in &all {
            c.wait_revision(i, rev, WAIT).await;
        }
        assert_eq!(c.member_list(target).await.len(), 3);
        drop(intruder);
    });
}
