//! Watch scenarios over kvd members: watchers on a member's real hub, fed by its applier and
//! caught up from its MVCC history.

use std::time::Duration;

use super::cluster::{Machine, Options, SimCluster, ELECTION};
use super::kv::{self, put, same_state_everywhere};
use super::network::Link;
use crate::mvcc::{Event, EventKind};

fn others(all: &[u64], but: &[u64]) -> Vec<u64> {
    all.iter().copied().filter(|id| !but.contains(id)).collect()
}

fn revisions(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.kv.mod_revision).collect()
}

fn keys(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.kv.key).into_owned())
        .collect()
}

/// A watcher on a follower sees every event once, in revision order, across a leader change:
/// the old leader's writes, then the new leader's.
#[tokio::test(start_paused = true)]
async fn a_watch_sees_every_event_in_order_across_a_leader_change() {
    let c = SimCluster::start_kvd(3);
    let all = c.ids();
    let old = c.leader().await;
    let w = others(&all, &[old])[0];
    let mut rx = kv::watch(&c, w, "k", "l", 0);
    for i in 0..5 {
        put(&c, old, &format!("k{i}"), "old").await;
    }
    c.isolate(old, Link::Cut);
    let new = c.leader_among(&others(&all, &[old])).await;
    for i in 5..10 {
        put(&c, w, &format!("k{i}"), "new").await;
    }
    let (events, compacted) = kv::events(&mut rx, 10).await;
    assert_eq!(compacted, 0);
    assert_eq!(revisions(&events), (2..12).collect::<Vec<i64>>());
    assert_eq!(
        keys(&events),
        (0..10).map(|i| format!("k{i}")).collect::<Vec<_>>()
    );
    c.isolate(old, Link::Open);
    assert_eq!(c.leader().await, new);
    assert!(
        kv::drain(&mut rx, ELECTION).await.is_empty(),
        "events repeated"
    );
    same_state_everywhere(&c).await;
    c.shutdown().await;
}

/// A watch from a revision below the compact revision is cancelled with the compact revision
/// (etcd answers in the watch response, not with an error); one from the compact revision on
/// gets the history that is left.
#[tokio::test(start_paused = true)]
async fn a_watch_from_a_compacted_revision_gets_the_compact_revision() {
    let c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    for i in 0..10 {
        put(&c, l, "k", &format!("v{i}")).await;
    }
    kv::compact(&c, l, 8).await;
    same_state_everywhere(&c).await;
    for id in c.ids() {
        let mut rx = kv::watch(&c, id, "k", "", 3);
        let (events, compacted) = kv::events(&mut rx, 1).await;
        assert!(events.is_empty());
        assert_eq!(compacted, 8, "member {id}");
        assert_eq!(
            c.core(id).state.hub.counts().0,
            0,
            "the compacted watcher stays"
        );
        let mut rx = kv::watch(&c, id, "k", "", 8);
        let (events, _) = kv::events(&mut rx, 4).await;
        assert_eq!(revisions(&events), vec![8, 9, 10, 11], "member {id}");
        c.core(id).state.hub.cancel((1, 0));
    }
    c.shutdown().await;
}

/// prev_kv across a compaction: a live watcher gets each event's previous value, and one that
/// starts at the compact revision gets the previous value that the compaction kept.
#[tokio::test(start_paused = true)]
async fn a_watch_across_a_compaction_keeps_prev_kv() {
    let c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    let mut live = kv::watch(&c, f, "k", "", 0);
    put(&c, l, "k", "v1").await;
    put(&c, l, "k", "v2").await;
    kv::compact(&c, l, 3).await;
    put(&c, l, "k", "v3").await;
    same_state_everywhere(&c).await;
    let (events, _) = kv::events(&mut live, 3).await;
    let prev: Vec<Option<Vec<u8>>> = events
        .iter()
        .map(|e| e.prev_kv.as_ref().map(|p| p.value.clone()))
        .collect();
    assert_eq!(prev, vec![None, Some(b"v1".to_vec()), Some(b"v2".to_vec())]);
    c.core(f).state.hub.cancel((1, 0));
    let mut late = kv::watch(&c, f, "k", "", 4);
    let (events, _) = kv::events(&mut late, 1).await;
    assert_eq!(revisions(&events), vec![4]);
    assert_eq!(
        events[0].prev_kv.as_ref().map(|p| p.value.clone()),
        Some(b"v2".to_vec())
    );
    c.shutdown().await;
}

/// A watcher on a follower that falls behind a compacted log and installs a snapshot gets the
/// events it missed from the installed history, once each, in order.
#[tokio::test(start_paused = true)]
async fn a_watch_on_a_member_that_installs_a_snapshot_misses_nothing() {
    let c = SimCluster::start_with(
        3,
        Options {
            machine: Machine::Kvd,
            snapshot_count: 5,
            ..Options::default()
        },
    );
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    let mut rx = kv::watch(&c, f, "", "\0", 0);
    put(&c, l, "a", "1").await;
    c.isolate(f, Link::Cut);
    for i in 0..25 {
        put(&c, l, &format!("k{}", i % 5), &format!("{i}")).await;
    }
    c.isolate(f, Link::Open);
    same_state_everywhere(&c).await;
    let (events, compacted) = kv::events(&mut rx, 26).await;
    assert_eq!(compacted, 0);
    assert_eq!(revisions(&events), (2..28).collect::<Vec<i64>>());
    assert!(kv::drain(&mut rx, Duration::from_millis(500))
        .await
        .is_empty());
    c.shutdown().await;
}

/// A watcher that starts in the past on a member that was down catches up from history, then
/// follows live writes, without gaps or repeats.
#[tokio::test(start_paused = true)]
async fn a_watch_from_the_past_on_a_restarted_member_catches_up_then_follows() {
    let mut c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    for i in 0..5 {
        put(&c, l, &format!("k{i}"), "v").await;
    }
    c.stop_member(f).await;
    for i in 5..10 {
        put(&c, l, &format!("k{i}"), "v").await;
    }
    c.restart_member(f);
    let mut rx = kv::watch(&c, f, "k", "l", 2);
    for i in 10..15 {
        put(&c, l, &format!("k{i}"), "v").await;
    }
    let (events, _) = kv::events(&mut rx, 15).await;
    assert_eq!(revisions(&events), (2..17).collect::<Vec<i64>>());
    assert!(events.iter().all(|e| e.kind == EventKind::Put));
    assert!(kv::drain(&mut rx, Duration::from_millis(500))
        .await
        .is_empty());
    c.shutdown().await;
}
