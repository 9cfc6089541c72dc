//! A five-member cluster loses two members (the leader among them) to SIGKILL: the other
//! three elect a leader and keep serving reads and writes; the two come back on their data
//! dirs and catch up, and `hashkv` agrees on all five.

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::harness::{Cluster, ClusterOpts};
use crate::load::{self, Load};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn five_members_survive_two_failures() {
    crate::run("five_members", Duration::from_secs(150), async {
        let started = Instant::now();
        let mut c = Cluster::start(ClusterOpts::kvd(5)).await;
        let all = [0, 1, 2, 3, 4];
        eprintln!("[five_members] 5 members ready in {:?}", started.elapsed());
        let leader = c.wait_leader(&all, None, WAIT).await;
        let old_id = c.nodes[leader].id;
        let channels: Vec<Channel> = c.nodes.iter().map(|n| n.channel()).collect();
        let load = Load::start("five/", 3, channels, 5_000);
        load.wait_acked(60, WAIT).await;

        let down = [leader, (leader + 2) % 5];
        let killed_at = Instant::now();
        for &i in &down {
            c.nodes[i].kill9();
        }
        let up: Vec<usize> = all.iter().copied().filter(|i| !down.contains(i)).collect();
        let new_leader = c.wait_leader(&up, Some(old_id), WAIT).await;
        eprintln!(
            "[five_members] killed {} and {}; {} elected after {:?}",
            c.nodes[down[0]].spec.name,
            c.nodes[down[1]].spec.name,
            c.nodes[new_leader].spec.name,
            killed_at.elapsed()
        );
        load.wait_acked(load.acked() + 60, WAIT).await;
        let summary = load.stop().await;
        for &i in &up {
            let n = &c.nodes[i];
            load::assert_all_present(&n.channel(), &n.spec.name, "five/", &summary, false).await;
        }

        let restarted_at = Instant::now();
        for &i in &down {
            c.nodes[i].restart().await;
        }
        let (rev, hash) = c.assert_hashes_agree(&all, WAIT).await;
        eprintln!(
            "[five_members] {} writes acknowledged ({} failed); restarted members caught up in {:?}; hashkv {hash:#x} at revision {rev} on all five",
            summary.acked.len(),
            summary.failed.len(),
            restarted_at.elapsed()
        );
        for &i in &down {
            let n = &c.nodes[i];
            load::assert_all_present(&n.channel(), &n.spec.name, "five/", &summary, true).await;
        }
    });
}
