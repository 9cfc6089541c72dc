//! Scenarios over kvd members: writes go through each member's real `Core` (proposal, fence
//! term, exactly-once retry) and kvd's applier (MVCC, leases, membership, snapshots).

use raft::prelude::MessageType;

use super::cluster::{within, Machine, Options, SimCluster};
use super::kv::{self, get, put, rev, same_state_everywhere, state};
use super::network::Link;
use crate::api::status::ApiError;
use crate::raft::MemberChange;

fn kvd(snapshot_count: u64) -> Options {
    Options {
        machine: Machine::Kvd,
        snapshot_count,
        ..Options::default()
    }
}

fn others(all: &[u64], but: &[u64]) -> Vec<u64> {
    all.iter().copied().filter(|id| !but.contains(id)).collect()
}

/// Puts through every member in turn get consecutive revisions, and every member ends with
/// the same revision and the same history hash.
#[tokio::test(start_paused = true)]
async fn writes_through_any_member_give_one_history() {
    let c = SimCluster::start_kvd(3);
    c.leader().await;
    let mut revisions = Vec::new();
    for i in 0..30u64 {
        let through = 1 + i % 3;
        revisions.push(put(&c, through, &format!("k{}", i % 7), &format!("v{i}")).await);
    }
    assert_eq!(revisions, (2..32).collect::<Vec<i64>>());
    let (current, _, _) = same_state_everywhere(&c).await;
    assert_eq!(current, 31);
    for id in c.ids() {
        let kv = get(&c, id, "k0").expect("k0");
        assert_eq!(kv.value, b"v28");
        assert_eq!(kv.version, 5);
    }
    c.shutdown().await;
}

/// A put sent through a follower whose forwarded proposal is delayed past a leader change:
/// `Core::propose` sees the later term, learns its attempt is void and proposes again; the
/// late copy is fenced. The key is written once (version 1), at the revision the put answered.
#[tokio::test(start_paused = true)]
async fn a_put_in_flight_across_a_leader_change_is_applied_once() {
    let c = SimCluster::start_kvd(3);
    let all = c.ids();
    let old = c.leader().await;
    let f = others(&all, &[old])[0];
    let third = others(&all, &[old, f])[0];
    c.net.set_link(f, old, Link::Held);
    let core = c.core(f).clone();
    let put_task = tokio::spawn(async move {
        crate::api::kv::put(
            &core,
            crate::proto::etcdserverpb::PutRequest {
                key: b"once".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            },
        )
        .await
    });
    c.wait_until("the proposal is held", |c| {
        c.net.held_of(MessageType::MsgPropose) == 1
    })
    .await;
    c.isolate(old, Link::Cut);
    c.net.set_both(f, third, Link::Open);
    let new = c.leader_among(&[f, third]).await;
    assert_ne!(new, old);
    c.isolate(old, Link::Open);
    c.wait_until("the old leader follows", |c| {
        c.handle(old).status().leader == new
    })
    .await;
    c.net.release();
    let answered = kv::revision_of(within(put_task).await.expect("task").expect("put"));
    same_state_everywhere(&c).await;
    for id in all {
        let kv = get(&c, id, "once").expect("written");
        assert_eq!((kv.version, kv.mod_revision), (1, answered), "member {id}");
    }
    assert_eq!(rev(&c, old), 2, "exactly one revision was written");
    c.shutdown().await;
}

/// A put through a leader cut off from the others fails (it is not acknowledged), and it is
/// never applied: the new leader's log replaces the old leader's.
#[tokio::test(start_paused = true)]
async fn an_unacknowledged_put_on_an_isolated_leader_never_applies() {
    let c = SimCluster::start_kvd(3);
    let all = c.ids();
    let old = c.leader().await;
    put(&c, old, "k", "before").await;
    c.isolate(old, Link::Cut);
    let refused = kv::try_put(&c, old, "k", "lost", 0).await;
    assert!(
        matches!(
            refused,
            Err(ApiError::Timeout | ApiError::TimeoutDueToLeaderFail | ApiError::NoLeader)
        ),
        "{refused:?}"
    );
    let new = c.leader_among(&others(&all, &[old])).await;
    put(&c, new, "k", "after").await;
    c.isolate(old, Link::Open);
    same_state_everywhere(&c).await;
    for id in all {
        let kv = get(&c, id, "k").expect("k");
        assert_eq!(
            (kv.value.as_slice(), kv.version),
            (&b"after"[..], 2),
            "member {id}"
        );
    }
    c.shutdown().await;
}

/// A follower behind a compacted log installs the leader's snapshot (kvd's bbolt image) and
/// ends with the same revision, compact revision and history hash.
#[tokio::test(start_paused = true)]
async fn a_snapshot_install_gives_the_same_state() {
    let c = SimCluster::start_with(3, kvd(5));
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    put(&c, l, "gone", "x").await;
    c.isolate(f, Link::Cut);
    for i in 0..30 {
        put(&c, l, &format!("k{}", i % 10), &format!("v{i}")).await;
    }
    within(crate::api::kv::delete_range(
        c.core(l),
        crate::proto::etcdserverpb::DeleteRangeRequest {
            key: b"gone".to_vec(),
            ..Default::default()
        },
    ))
    .await
    .expect("delete");
    c.isolate(f, Link::Open);
    let (current, _, _) = same_state_everywhere(&c).await;
    assert_eq!(current, 33);
    assert!(c.net.counts().sent(MessageType::MsgSnapshot) >= 1);
    assert!(get(&c, f, "gone").is_none());
    assert_eq!(get(&c, f, "k3").expect("k3").value, b"v23");
    assert_eq!(put(&c, f, "next", "v").await, 34);
    same_state_everywhere(&c).await;
    c.shutdown().await;
}

/// A member restarted after it installed a snapshot starts from the installed state (the
/// state backend and the log agree) and follows on.
#[tokio::test(start_paused = true)]
async fn a_member_restarted_after_a_snapshot_install_keeps_the_installed_state() {
    let mut c = SimCluster::start_with(3, kvd(5));
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    c.isolate(f, Link::Cut);
    for i in 0..20 {
        put(&c, l, &format!("k{i}"), "v").await;
    }
    c.isolate(f, Link::Open);
    let before = same_state_everywhere(&c).await;
    c.stop_member(f).await;
    c.restart_member(f);
    assert_eq!(state(&c, f), before);
    put(&c, l, "after", "v").await;
    let after = same_state_everywhere(&c).await;
    assert_eq!(after.0, before.0 + 1);
    c.shutdown().await;
}

/// A follower stopped while writes go on restarts from its own storage and catches up to the
/// same state.
#[tokio::test(start_paused = true)]
async fn a_restarted_member_catches_up_to_the_same_state() {
    let mut c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    for i in 0..5 {
        put(&c, l, &format!("a{i}"), "v").await;
    }
    c.wait_index(&[f], c.handle(l).status().commit).await;
    let at_stop = rev(&c, f);
    c.stop_member(f).await;
    for i in 0..5 {
        put(&c, l, &format!("b{i}"), "v").await;
    }
    c.restart_member(f);
    assert!(
        rev(&c, f) >= at_stop,
        "the restarted member lost applied writes"
    );
    let (current, _, _) = same_state_everywhere(&c).await;
    assert_eq!(current, 11);
    c.shutdown().await;
}

/// Every member stopped and started again: the revision goes on from where it was.
#[tokio::test(start_paused = true)]
async fn revisions_continue_after_a_whole_cluster_restart() {
    let mut c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    for i in 0..5 {
        put(&c, l, &format!("k{i}"), "v").await;
    }
    let before = same_state_everywhere(&c).await;
    for id in [1, 2, 3] {
        c.stop_member(id).await;
    }
    for id in [1, 2, 3] {
        c.restart_member(id);
    }
    let l = c.leader().await;
    assert_eq!(put(&c, l, "again", "v").await, before.0 + 1);
    same_state_everywhere(&c).await;
    c.shutdown().await;
}

/// A compaction is applied on every member: the same compact revision, reads below it refused,
/// and the same hash.
#[tokio::test(start_paused = true)]
async fn a_compaction_applies_on_every_member() {
    let c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    for i in 0..10 {
        put(&c, l, "k", &format!("v{i}")).await;
    }
    kv::compact(&c, l, 6).await;
    let (current, compact, _) = same_state_everywhere(&c).await;
    assert_eq!((current, compact), (11, 6));
    for id in c.ids() {
        let at = |revision| crate::proto::etcdserverpb::RangeRequest {
            key: b"k".to_vec(),
            revision,
            serializable: true,
            ..Default::default()
        };
        let below = within(crate::api::kv::range(c.core(id), &at(5))).await;
        assert_eq!(below.err(), Some(ApiError::Compacted), "member {id}");
        let kept = within(crate::api::kv::range(c.core(id), &at(6)))
            .await
            .expect("range");
        assert_eq!(kept.kvs[0].value, b"v4", "member {id}");
    }
    c.shutdown().await;
}

/// A member added as a learner gets the state by snapshot, refuses writes while a learner,
/// and takes them once promoted.
#[tokio::test(start_paused = true)]
async fn a_new_member_gets_the_state_and_takes_writes_once_promoted() {
    let mut c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    for i in 0..5 {
        put(&c, l, &format!("k{i}"), "v").await;
    }
    c.add_member(4);
    c.change_members(l, MemberChange::AddLearner(4)).await;
    same_state_everywhere(&c).await;
    assert_eq!(
        kv::try_put(&c, 4, "x", "v", 0).await.err(),
        Some(ApiError::NotSupportedForLearner)
    );
    c.change_members(l, MemberChange::AddVoter(4)).await;
    c.wait_until("the promotion reaches member 4", |c| {
        !c.core(4)
            .state
            .membership
            .read()
            .members
            .get(&4)
            .is_some_and(|m| m.is_learner)
    })
    .await;
    let r = put(&c, 4, "x", "v").await;
    assert_eq!(r, 7);
    same_state_everywhere(&c).await;
    c.shutdown().await;
}
