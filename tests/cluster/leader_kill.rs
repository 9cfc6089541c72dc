//! The leader is SIGKILLed under a write load: a new leader is elected within a few
//! election timeouts, no acknowledged write is lost, the killed member catches up after a
//! restart on its data dir, and `hashkv` agrees on all members.

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::harness::{Cluster, ClusterOpts, ELECTION_MS};
use crate::load::{self, Load};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn leader_killed_under_write_load() {
    crate::run("leader_kill", Duration::from_secs(150), async {
        let mut c = Cluster::start(ClusterOpts::kvd(3)).await;
        let all = [0, 1, 2];
        let leader = c.wait_leader(&all, None, WAIT).await;
        let old_id = c.nodes[leader].id;
        let channels: Vec<Channel> = c.nodes.iter().map(|n| n.channel()).collect();
        let load = Load::start("load/", 3, channels, 5_000);
        load.wait_acked(60, WAIT).await;

        let before = load.acked();
        let killed_at = Instant::now();
        c.nodes[leader].kill9();
        let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        let new_leader = c.wait_leader(&survivors, Some(old_id), WAIT).await;
        let election = killed_at.elapsed();
        eprintln!(
            "[leader_kill] killed {} (leader); {} elected after {election:?} (election timeout {ELECTION_MS} ms)",
            c.nodes[leader].spec.name, c.nodes[new_leader].spec.name
        );
        assert!(
            election <= Duration::from_millis(5 * ELECTION_MS),
            "new leader only after {election:?}"
        );
        // the survivors keep taking writes
        load.wait_acked(load.acked() + 60, WAIT).await;
        let summary = load.stop().await;
        eprintln!(
            "[leader_kill] {} writes acknowledged ({before} before the kill), {} failed",
            summary.acked.len(),
            summary.failed.len()
        );
        for &i in &survivors {
            let n = &c.nodes[i];
            load::assert_all_present(&n.channel(), &n.spec.name, "load/", &summary, false).await;
        }

        // the killed member comes back on its data dir and catches up
        let restarted_at = Instant::now();
        c.nodes[leader].restart().await;
        let (rev, hash) = c.assert_hashes_agree(&all, WAIT).await;
        eprintln!(
            "[leader_kill] {} caught up in {:?}; hashkv {hash:#x} at revision {rev} on all members",
            c.nodes[leader].spec.name,
            restarted_at.elapsed()
        );
        let n = &c.nodes[leader];
        load::assert_all_present(&n.channel(), &n.spec.name, "load/", &summary, true).await;
    });
}
