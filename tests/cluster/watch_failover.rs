//! A watch opened on a follower keeps delivering across a leader kill: every revision
//! written under the prefix arrives exactly once, in order, each acknowledged write with
//! its key and value; a watch replaying the same range on the restarted old leader sees
//! the same events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::harness::{Cluster, ClusterOpts};
use crate::load::{Load, Summary};
use crate::watcher::{Seen, Watcher};

const WAIT: Duration = Duration::from_secs(30);

/// Asserts that `events` are exactly the revisions `from..=to`, once each, and match the
/// writes in `s`.
fn assert_exactly_once(who: &str, events: &[Seen], from: i64, to: i64, s: &Summary) {
    let revs: Vec<i64> = events.iter().map(|e| e.revision).collect();
    for w in revs.windows(2) {
        assert!(
            w[0] < w[1],
            "{who}: revision {} delivered after {}",
            w[1],
            w[0]
        );
    }
    let want: Vec<i64> = (from..=to).collect();
    let missing: Vec<i64> = want.iter().copied().filter(|r| !revs.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "{who}: revisions never delivered: {missing:?}"
    );
    assert_eq!(
        revs, want,
        "{who}: revisions outside {from}..={to} delivered"
    );
    let by_rev: HashMap<i64, &Seen> = events.iter().map(|e| (e.revision, e)).collect();
    for a in &s.acked {
        let e = by_rev
            .get(&a.revision)
            .unwrap_or_else(|| panic!("{who}: no event for acknowledged {a:?}"));
        assert!(
            !e.delete && e.key == a.key && e.value == a.value,
            "{who}: event {e:?} for acknowledged {a:?}"
        );
    }
    let maybe: HashSet<(&str, &str)> = s
        .failed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let acked: HashSet<i64> = s.acked.iter().map(|a| a.revision).collect();
    for e in events {
        assert!(
            acked.contains(&e.revision) || maybe.contains(&(e.key.as_str(), e.value.as_str())),
            "{who}: event {e:?} matches no write"
        );
    }
}

#[test]
fn follower_watch_sees_every_event_once_across_leader_kill() {
    crate::run("watch_failover", Duration::from_secs(150), async {
        let mut c = Cluster::start(ClusterOpts::kvd(3)).await;
        let all = [0, 1, 2];
        let leader = c.wait_leader(&all, None, WAIT).await;
        let old_id = c.nodes[leader].id;
        let follower = (leader + 1) % 3;
        let start = c.revision(follower).await + 1;
        let watcher = Watcher::start(c.nodes[follower].channel(), "w/", start).await;

        let channels: Vec<Channel> = c.nodes.iter().map(|n| n.channel()).collect();
        let load = Load::start("w/", 3, channels, 5_000);
        load.wait_acked(60, WAIT).await;
        let killed_at = Instant::now();
        c.nodes[leader].kill9();
        let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        c.wait_leader(&survivors, Some(old_id), WAIT).await;
        let election = killed_at.elapsed();
        load.wait_acked(load.acked() + 60, WAIT).await;
        let summary = load.stop().await;
        let end = c.revision(follower).await;
        watcher.wait_revision(end, WAIT).await;
        // anything late (a duplicate) would arrive right behind; give it a moment
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            watcher.ended(),
            None,
            "the follower's watch must survive the leader change"
        );
        let events = watcher.events();
        eprintln!(
            "[watch_failover] new leader after {election:?}; {} events for revisions {start}..={end} on {}; {} writes acknowledged, {} failed",
            events.len(),
            c.nodes[follower].spec.name,
            summary.acked.len(),
            summary.failed.len()
        );
        assert_exactly_once(&c.nodes[follower].spec.name, &events, start, end, &summary);

        // the old leader, restarted, replays the same history to a new watch
        c.nodes[leader].restart().await;
        c.wait_revision(leader, end, WAIT).await;
        let replay = Watcher::start(c.nodes[leader].channel(), "w/", start).await;
        replay.wait_revision(end, WAIT).await;
        assert_eq!(replay.events(), events, "replayed history differs");
        c.assert_hashes_agree(&all, WAIT).await;
    });
}
