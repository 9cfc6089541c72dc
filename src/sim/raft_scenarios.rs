//! Raft scenarios over recorder members: elections, replication under a hostile network,
//! catch-up by log and by snapshot, restarts and membership changes.

use std::time::Duration;

use raft::prelude::MessageType;

use super::cluster::{within, Applied, Options, SimCluster, ELECTION};
use super::network::Link;
use crate::raft::{MemberChange, ProposeError};

fn count(log: &[Applied], item: &Applied) -> usize {
    log.iter().filter(|a| *a == item).count()
}

/// The normal entries' data, in applied order.
fn normals(log: &[Applied]) -> Vec<Vec<u8>> {
    log.iter()
        .filter_map(|a| match a {
            Applied::Normal(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn items(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect()
}

fn others(all: &[u64], but: &[u64]) -> Vec<u64> {
    all.iter().copied().filter(|id| !but.contains(id)).collect()
}

async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Waits until every member in `among` applied exactly `expected` as its normal entries.
async fn wait_normals(c: &SimCluster, among: &[u64], expected: &[Vec<u8>]) {
    for id in among {
        c.wait_applied(*id, |log| normals(log).len() >= expected.len())
            .await;
        assert_eq!(normals(&c.applied(*id)), expected, "member {id}");
    }
}

/// A follower's proposal forwarded to the leader, delivered only after another leader was
/// elected and the leader it was sent to learnt of it (so it forwards the proposal on):
/// the late copy is fenced on every member, and a second proposal of the same bytes (what
/// a proposer does once its first attempt is provably void) is applied exactly once.
#[tokio::test(start_paused = true)]
async fn a_forwarded_proposal_delivered_after_a_leader_change_is_fenced() {
    let c = SimCluster::start(3);
    let all = [1, 2, 3];
    let old_leader = c.leader_among(&all).await;
    let follower = others(&all, &[old_leader])[0];
    let third = others(&all, &[old_leader, follower])[0];

    // The proposal leaves the follower but does not arrive yet.
    c.net.set_link(follower, old_leader, Link::Held);
    let fence = c.propose(follower, b"put k v1").await;
    pause(Duration::from_millis(50)).await;
    assert_eq!(c.net.held_of(MessageType::MsgPropose), 1);

    // The old leader is cut off; the other two elect a new leader of a later term.
    c.isolate(old_leader, Link::Cut);
    c.net.set_both(follower, third, Link::Open);
    let new_leader = c.leader_among(&[follower, third]).await;
    assert!(c.handle(new_leader).status().term > fence);

    // The old leader hears of the new one first, then gets the stale proposal and
    // forwards it to the new leader, which appends it in its own term.
    c.isolate(old_leader, Link::Open);
    c.wait_until("the old leader follows", |c| {
        c.handle(old_leader).status().leader == new_leader
    })
    .await;
    c.net.release();

    let stale = Applied::Fenced(b"put k v1".to_vec());
    for id in all {
        c.wait_applied(id, |log| log.contains(&stale)).await;
    }
    // Proposed again (the proposer's second attempt): applied once, everywhere.
    c.propose(follower, b"put k v1").await;
    let fresh = Applied::Normal(b"put k v1".to_vec());
    for id in all {
        c.wait_applied(id, |log| log.contains(&fresh)).await;
        let log = c.applied(id);
        assert_eq!(count(&log, &fresh), 1, "member {id}: {log:?}");
        assert_eq!(count(&log, &stale), 1, "member {id}: {log:?}");
    }
    c.shutdown().await;
}

/// A proposal made and appended in the same term is applied normally, once, everywhere.
#[tokio::test(start_paused = true)]
async fn proposals_in_a_stable_term_are_applied_once_everywhere() {
    let c = SimCluster::start(3);
    let leader = c.leader_among(&[1, 2, 3]).await;
    for id in [1, 2, 3] {
        c.propose(id, format!("from {id}").as_bytes()).await;
    }
    for id in [1, 2, 3] {
        c.wait_applied(id, |log| normals(log).len() == 3).await;
        let log = c.applied(id);
        assert!(
            log.iter().all(|a| matches!(a, Applied::Normal(_))),
            "{log:?}"
        );
        assert_eq!(log, c.applied(leader), "member {id}");
    }
    assert_eq!(c.handle(leader).status().leader, leader);
    c.shutdown().await;
}

/// A leader cut off from the others: they elect a new leader of a later term, the old one
/// steps down (check quorum), and when it comes back it follows without raising the term.
#[tokio::test(start_paused = true)]
async fn an_isolated_leader_is_replaced_and_rejoins_without_disruption() {
    let c = SimCluster::start(3);
    let all = [1, 2, 3];
    let old = c.leader().await;
    let term = c.handle(old).status().term;
    c.isolate(old, Link::Cut);
    let rest = others(&all, &[old]);
    let new = c.leader_among(&rest).await;
    assert_ne!(new, old);
    let new_term = c.handle(new).status().term;
    assert!(new_term > term);
    c.wait_until("the old leader steps down", |c| {
        c.handle(old).status().leader != old
    })
    .await;
    c.isolate(old, Link::Open);
    assert_eq!(c.leader().await, new);
    pause(5 * ELECTION).await;
    for id in all {
        let st = c.handle(id).status();
        assert_eq!((st.leader, st.term), (new, new_term), "member {id}");
    }
    c.shutdown().await;
}

/// While a quorum is healthy nobody campaigns: the leader and term stay for a long (virtual)
/// while, and no vote of any kind is requested.
#[tokio::test(start_paused = true)]
async fn no_election_while_the_quorum_is_healthy() {
    let c = SimCluster::start(3);
    let leader = c.leader().await;
    let term = c.handle(leader).status().term;
    let before = c.net.counts();
    for i in 0..20 {
        c.propose(leader, format!("p{i}").as_bytes()).await;
        pause(Duration::from_millis(1000)).await;
    }
    let after = c.net.counts();
    for kind in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
        assert_eq!(after.sent(kind), before.sent(kind), "{kind:?}");
    }
    for id in [1, 2, 3] {
        let st = c.handle(id).status();
        assert_eq!((st.leader, st.term), (leader, term), "member {id}");
    }
    wait_normals(&c, &[1, 2, 3], &items("p", 20)).await;
    c.shutdown().await;
}

/// A follower cut off campaigns only with pre-votes, which fail: the term does not move,
/// and when it comes back the leader is the same.
#[tokio::test(start_paused = true)]
async fn an_isolated_follower_does_not_raise_the_term() {
    let c = SimCluster::start(5);
    let leader = c.leader().await;
    let term = c.handle(leader).status().term;
    let f = others(&c.ids(), &[leader])[0];
    let before = c.net.counts();
    c.isolate(f, Link::Cut);
    pause(10 * ELECTION).await;
    let after = c.net.counts();
    assert!(
        after.dropped(MessageType::MsgRequestPreVote)
            > before.dropped(MessageType::MsgRequestPreVote)
    );
    assert_eq!(
        after.sent(MessageType::MsgRequestVote),
        before.sent(MessageType::MsgRequestVote)
    );
    c.isolate(f, Link::Open);
    c.propose(leader, b"after").await;
    wait_normals(&c, &c.ids(), &[b"after".to_vec()]).await;
    for id in c.ids() {
        let st = c.handle(id).status();
        assert_eq!((st.leader, st.term), (leader, term), "member {id}");
    }
    c.shutdown().await;
}

/// A leader in a two-member minority of five cannot commit: what it appended there is never
/// applied anywhere, while the majority elects a leader and commits; after the partition heals
/// every member applies the majority's entries only.
#[tokio::test(start_paused = true)]
async fn a_minority_cannot_commit() {
    let c = SimCluster::start(5);
    let all = c.ids();
    let old = c.leader().await;
    let buddy = others(&all, &[old])[0];
    let majority = others(&all, &[old, buddy]);
    c.net.partition(&[&[old, buddy], &majority[..]]);
    c.propose(old, b"minority").await;
    pause(3 * ELECTION).await;
    for id in [old, buddy] {
        assert!(normals(&c.applied(id)).is_empty(), "member {id}");
    }
    let new = c.leader_among(&majority).await;
    c.propose(new, b"majority").await;
    wait_normals(&c, &majority, &[b"majority".to_vec()]).await;
    c.net.heal();
    wait_normals(&c, &all, &[b"majority".to_vec()]).await;
    assert_eq!(c.leader().await, new);
    c.shutdown().await;
}

/// Appends held on the way to a follower and delivered after it caught up some other way are
/// ignored: the follower applies every entry once, in order.
#[tokio::test(start_paused = true)]
async fn late_appends_are_ignored() {
    let c = SimCluster::start(3);
    let l = c.leader().await;
    let f = others(&[1, 2, 3], &[l])[0];
    c.net.set_link(l, f, Link::Held);
    c.propose(l, b"a").await;
    c.propose(l, b"b").await;
    let ab = [b"a".to_vec(), b"b".to_vec()];
    wait_normals(&c, &others(&[1, 2, 3], &[f]), &ab).await;
    assert!(c.net.held_of(MessageType::MsgAppend) >= 1);
    c.net.set_link(l, f, Link::Open);
    c.propose(l, b"c").await;
    wait_normals(&c, &[f], &[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]).await;
    c.net.release_reversed();
    c.propose(l, b"d").await;
    let expected: Vec<Vec<u8>> = ["a", "b", "c", "d"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    wait_normals(&c, &[1, 2, 3], &expected).await;
    pause(ELECTION).await;
    for id in [1, 2, 3] {
        assert_eq!(normals(&c.applied(id)), expected, "member {id}");
    }
    c.shutdown().await;
}

/// A follower cut off while 20 entries commit gets them from the log when it comes back (no
/// snapshot needed), in order.
#[tokio::test(start_paused = true)]
async fn a_lagging_follower_catches_up_by_log() {
    let c = SimCluster::start(3);
    let l = c.leader().await;
    let f = others(&[1, 2, 3], &[l])[0];
    c.isolate(f, Link::Cut);
    let expected = items("e", 20);
    for e in &expected {
        c.propose(l, e).await;
    }
    wait_normals(&c, &others(&[1, 2, 3], &[f]), &expected).await;
    assert!(normals(&c.applied(f)).is_empty());
    c.isolate(f, Link::Open);
    wait_normals(&c, &[f], &expected).await;
    assert_eq!(c.net.counts().sent(MessageType::MsgSnapshot), 0);
    assert_eq!(c.member(f).recording.lock().restores, 0);
    c.shutdown().await;
}

/// With a short log (`--snapshot-count` 5) a follower that missed 30 entries gets a snapshot
/// of the leader's state, installs it, and ends with the same state as everyone.
#[tokio::test(start_paused = true)]
async fn a_follower_behind_a_compacted_log_installs_a_snapshot() {
    let c = SimCluster::start_with(
        3,
        Options {
            snapshot_count: 5,
            ..Options::default()
        },
    );
    let l = c.leader().await;
    let f = others(&[1, 2, 3], &[l])[0];
    c.isolate(f, Link::Cut);
    let expected = items("s", 30);
    for e in &expected {
        c.propose(l, e).await;
    }
    wait_normals(&c, &others(&[1, 2, 3], &[f]), &expected).await;
    c.isolate(f, Link::Open);
    wait_normals(&c, &[f], &expected).await;
    assert!(c.net.counts().sent(MessageType::MsgSnapshot) >= 1);
    assert_eq!(c.member(f).recording.lock().restores, 1);
    c.propose(l, b"after").await;
    let mut all = expected.clone();
    all.push(b"after".to_vec());
    wait_normals(&c, &[1, 2, 3], &all).await;
    c.shutdown().await;
}

async fn stream_through(c: &SimCluster, n: usize) -> Vec<Vec<u8>> {
    let l = c.leader().await;
    let term = c.handle(l).status().term;
    let expected = items("m", n);
    for e in &expected {
        c.propose(l, e).await;
        pause(Duration::from_millis(20)).await;
    }
    wait_normals(c, &c.ids(), &expected).await;
    assert_eq!(c.handle(l).status().term, term, "the leader changed");
    expected
}

/// Messages delayed at random (0-80 ms, so they overtake each other) change nothing: every
/// member applies the leader's entries once each, in proposal order.
#[tokio::test(start_paused = true)]
async fn reordered_messages_do_not_change_the_applied_sequence() {
    let c = SimCluster::start(3);
    c.leader().await;
    c.net
        .set_all(&c.ids(), Link::Jitter(Duration::from_millis(80)));
    stream_through(&c, 30).await;
    c.shutdown().await;
}

/// Every message delivered twice changes nothing.
#[tokio::test(start_paused = true)]
async fn duplicated_messages_do_not_change_the_applied_sequence() {
    let c = SimCluster::start(3);
    c.leader().await;
    c.net.set_all(&c.ids(), Link::Duplicate);
    stream_through(&c, 30).await;
    c.shutdown().await;
}

/// One message in five lost: raft resends, and every member applies the same sequence, each
/// entry once.
#[tokio::test(start_paused = true)]
async fn lost_messages_are_made_up_for() {
    let c = SimCluster::start(3);
    c.leader().await;
    c.net.set_all(&c.ids(), Link::Lossy(200));
    stream_through(&c, 20).await;
    assert!(c.net.counts().dropped(MessageType::MsgAppend) > 0);
    c.shutdown().await;
}

/// Every message delayed by 1.5 heartbeats (well under the election timeout): no election, and
/// proposals still commit everywhere.
#[tokio::test(start_paused = true)]
async fn delays_across_a_heartbeat_cause_no_election() {
    let c = SimCluster::start(3);
    let l = c.leader().await;
    let before = c.net.counts().sent(MessageType::MsgRequestPreVote);
    c.net
        .set_all(&c.ids(), Link::Delay(Duration::from_millis(150)));
    stream_through(&c, 10).await;
    pause(10 * ELECTION).await;
    assert_eq!(c.net.counts().sent(MessageType::MsgRequestPreVote), before);
    assert_eq!(c.leader().await, l);
    c.shutdown().await;
}

/// A leader whose messages take 3 s (longer than an election) is replaced; what it appended
/// after that is never applied, its late messages of the old term are ignored, and it ends up
/// with the new leader's log.
#[tokio::test(start_paused = true)]
async fn a_leader_slower_than_the_election_timeout_is_replaced() {
    let c = SimCluster::start(3);
    let all = c.ids();
    let old = c.leader().await;
    for other in others(&all, &[old]) {
        c.net
            .set_link(old, other, Link::Delay(Duration::from_secs(3)));
    }
    c.propose(old, b"slow").await;
    let new = c.leader_among(&others(&all, &[old])).await;
    assert_ne!(new, old);
    c.propose(new, b"fast").await;
    wait_normals(&c, &all, &[b"fast".to_vec()]).await;
    pause(5 * ELECTION).await;
    for id in all {
        assert_eq!(
            normals(&c.applied(id)),
            vec![b"fast".to_vec()],
            "member {id}"
        );
    }
    c.shutdown().await;
}

/// A read on a leader cut off from the others never answers with a stale index: it fails or
/// waits, and answers only after the member learnt of what the new leader committed.
#[tokio::test(start_paused = true)]
async fn a_read_on_an_isolated_old_leader_does_not_serve_stale_data() {
    let c = SimCluster::start(3);
    let all = c.ids();
    let old = c.leader().await;
    c.isolate(old, Link::Cut);
    let h = c.handle(old).clone();
    let read = tokio::spawn(async move { h.read_index().await });
    let new = c.leader_among(&others(&all, &[old])).await;
    c.propose(new, b"w").await;
    wait_normals(&c, &others(&all, &[old]), &[b"w".to_vec()]).await;
    pause(3 * ELECTION).await;
    if read.is_finished() {
        let r = within(read).await.expect("task");
        assert!(r.is_err(), "a stale read succeeded: {r:?}");
    } else {
        c.isolate(old, Link::Open);
        match within(read).await.expect("task") {
            Ok(_) => assert_eq!(normals(&c.applied(old)), vec![b"w".to_vec()]),
            Err(e) => assert_eq!(e, ProposeError::LeaderChanged),
        }
    }
    c.isolate(old, Link::Open);
    within(c.handle(old).read_index()).await.expect("read");
    assert_eq!(normals(&c.applied(old)), vec![b"w".to_vec()]);
    c.shutdown().await;
}

/// A follower stopped and started again from its WAL replays its log to the same applied
/// sequence, then follows what was committed while it was down.
#[tokio::test(start_paused = true)]
async fn a_restarted_member_replays_its_log() {
    let mut c = SimCluster::start(3);
    let l = c.leader().await;
    let f = others(&[1, 2, 3], &[l])[0];
    let first = items("r", 10);
    for e in &first {
        c.propose(l, e).await;
    }
    wait_normals(&c, &[1, 2, 3], &first).await;
    c.stop_member(f).await;
    let second = items("t", 5);
    for e in &second {
        c.propose(l, e).await;
    }
    c.restart_member(f);
    let all: Vec<Vec<u8>> = first.iter().chain(&second).cloned().collect();
    wait_normals(&c, &[1, 2, 3], &all).await;
    assert_eq!(c.applied(f), c.applied(l));
    c.shutdown().await;
}

/// The whole cluster stopped and started again: a leader of a later term, and the same
/// applied sequence everywhere, then new entries on top.
#[tokio::test(start_paused = true)]
async fn a_whole_cluster_restart_keeps_every_entry() {
    let mut c = SimCluster::start(3);
    let l = c.leader().await;
    let term = c.handle(l).status().term;
    let first = items("w", 5);
    for e in &first {
        c.propose(l, e).await;
    }
    wait_normals(&c, &[1, 2, 3], &first).await;
    for id in [1, 2, 3] {
        c.stop_member(id).await;
    }
    for id in [1, 2, 3] {
        c.restart_member(id);
    }
    let l2 = c.leader().await;
    assert!(c.handle(l2).status().term > term);
    c.propose(l2, b"again").await;
    let mut all = first.clone();
    all.push(b"again".to_vec());
    wait_normals(&c, &[1, 2, 3], &all).await;
    c.shutdown().await;
}

/// A member down while the log was compacted past what it has: after its restart it replays
/// what it has, then installs a snapshot.
#[tokio::test(start_paused = true)]
async fn a_member_restarted_behind_a_compacted_log_installs_a_snapshot() {
    let mut c = SimCluster::start_with(
        3,
        Options {
            snapshot_count: 5,
            ..Options::default()
        },
    );
    let l = c.leader().await;
    let f = others(&[1, 2, 3], &[l])[0];
    c.propose(l, b"early").await;
    wait_normals(&c, &[1, 2, 3], &[b"early".to_vec()]).await;
    c.stop_member(f).await;
    let mut all = vec![b"early".to_vec()];
    for e in items("late", 25) {
        c.propose(l, &e).await;
        all.push(e);
    }
    wait_normals(&c, &others(&[1, 2, 3], &[f]), &all).await;
    c.restart_member(f);
    wait_normals(&c, &[f], &all).await;
    assert_eq!(c.member(f).recording.lock().restores, 1);
    c.shutdown().await;
}

/// A learner added through a configuration change catches up (by snapshot: it starts with an
/// empty log) and receives new entries, but cannot take leadership.
#[tokio::test(start_paused = true)]
async fn a_learner_catches_up_but_cannot_lead() {
    let mut c = SimCluster::start(3);
    let l = c.leader().await;
    let first = items("x", 3);
    for e in &first {
        c.propose(l, e).await;
    }
    c.add_member(4);
    c.change_members(l, MemberChange::AddLearner(4)).await;
    c.propose(l, b"y").await;
    let mut all = first.clone();
    all.push(b"y".to_vec());
    wait_normals(&c, &[1, 2, 3, 4], &all).await;
    assert!(c.member(4).recording.lock().restores >= 1);
    within(c.handle(l).transfer_leader(4)).await.expect("sent");
    pause(3 * ELECTION).await;
    assert_eq!(c.leader().await, l);
    let progress = within(c.handle(l).progress()).await.expect("progress");
    assert!(progress.contains_key(&4));
    c.shutdown().await;
}

/// A learner promoted to voter can lead, and commits with the others.
#[tokio::test(start_paused = true)]
async fn a_promoted_learner_can_lead() {
    let mut c = SimCluster::start(3);
    let l = c.leader().await;
    c.add_member(4);
    c.change_members(l, MemberChange::AddLearner(4)).await;
    c.propose(l, b"one").await;
    wait_normals(&c, &[4], &[b"one".to_vec()]).await;
    c.change_members(l, MemberChange::AddVoter(4)).await;
    c.wait_index(&[4], c.handle(l).status().applied).await;
    c.transfer_leader(l, 4).await;
    c.propose(4, b"two").await;
    wait_normals(&c, &[1, 2, 3, 4], &[b"one".to_vec(), b"two".to_vec()]).await;
    c.shutdown().await;
}

/// A follower removed from the configuration: the leader stops tracking it, and the two left
/// commit on their own.
#[tokio::test(start_paused = true)]
async fn a_removed_follower_no_longer_counts() {
    let mut c = SimCluster::start(3);
    let l = c.leader().await;
    let f = others(&[1, 2, 3], &[l])[0];
    let stay = others(&[1, 2, 3], &[l, f])[0];
    c.change_members(l, MemberChange::Remove(f)).await;
    let progress = within(c.handle(l).progress()).await.expect("progress");
    let tracked: std::collections::BTreeSet<u64> = progress.keys().copied().collect();
    assert_eq!(tracked, [l, stay].into_iter().collect());
    c.stop_member(f).await;
    c.propose(l, b"two left").await;
    wait_normals(&c, &[l, stay], &[b"two left".to_vec()]).await;
    c.shutdown().await;
}

/// The leader removes itself: it stops once the change is applied, and the others elect a
/// leader among themselves and go on.
#[tokio::test(start_paused = true)]
async fn a_removed_leader_stops_and_the_rest_go_on() {
    let mut c = SimCluster::start(3);
    let l = c.leader().await;
    c.propose(l, b"before").await;
    within(
        c.handle(l)
            .propose_conf_change(vec![MemberChange::Remove(l)], Vec::new()),
    )
    .await
    .expect("accepted");
    assert_eq!(c.wait_exited(l).await, Err("removed".to_string()));
    let rest = c.ids();
    let new = c.leader_among(&rest).await;
    assert_ne!(new, l);
    c.propose(new, b"after").await;
    wait_normals(&c, &rest, &[b"before".to_vec(), b"after".to_vec()]).await;
    for id in &rest {
        let confs = c
            .applied(*id)
            .iter()
            .filter(|a| **a == Applied::Conf(vec![MemberChange::Remove(l)]))
            .count();
        assert_eq!(confs, 1, "member {id}");
    }
    c.shutdown().await;
}

/// Five members split 2-2-1: no side has a quorum and nothing commits; once healed, a leader
/// commits what is proposed then.
#[tokio::test(start_paused = true)]
async fn no_side_of_a_three_way_split_commits() {
    let c = SimCluster::start(5);
    let l = c.leader().await;
    c.net.partition(&[&[1, 2], &[3, 4], &[5]]);
    c.propose(l, b"split").await;
    pause(5 * ELECTION).await;
    for id in c.ids() {
        assert!(normals(&c.applied(id)).is_empty(), "member {id}");
        assert_ne!(c.handle(id).status().leader, id, "member {id} leads");
    }
    c.net.heal();
    let l2 = c.leader().await;
    c.propose(l2, b"healed").await;
    // "split" may still commit (if its leader wins again, raft commits its log), but once
    // at most, and every member applies the same sequence.
    for id in c.ids() {
        c.wait_applied(id, |log| normals(log).contains(&b"healed".to_vec()))
            .await;
    }
    pause(ELECTION).await;
    let reference = normals(&c.applied(l2));
    for id in c.ids() {
        let n = normals(&c.applied(id));
        assert_eq!(n, reference, "member {id}");
        assert_eq!(n.iter().filter(|d| d.as_slice() == b"healed").count(), 1);
        assert!(n.iter().filter(|d| d.as_slice() == b"split").count() <= 1);
    }
    c.shutdown().await;
}

/// Leadership handed over on request: the new leader has a later term, and entries proposed
/// before and after are applied once each, in order.
#[tokio::test(start_paused = true)]
async fn leadership_transfer_keeps_every_entry_once() {
    let c = SimCluster::start(3);
    let l = c.leader().await;
    let term = c.handle(l).status().term;
    let to = others(&[1, 2, 3], &[l])[0];
    c.propose(l, b"before").await;
    wait_normals(&c, &[to], &[b"before".to_vec()]).await;
    c.transfer_leader(l, to).await;
    assert!(c.handle(to).status().term > term);
    c.propose(to, b"after").await;
    wait_normals(&c, &[1, 2, 3], &[b"before".to_vec(), b"after".to_vec()]).await;
    c.shutdown().await;
}

/// With every heartbeat lost, appends alone keep followers from campaigning while proposals
/// flow; once the leader goes idle they elect another leader.
#[tokio::test(start_paused = true)]
async fn appends_alone_keep_a_leader_without_heartbeats() {
    let c = SimCluster::start(3);
    let l = c.leader().await;
    let term = c.handle(l).status().term;
    c.net.set_kind(MessageType::MsgHeartbeat, Link::Cut);
    let expected = items("h", 20);
    for e in &expected {
        c.propose(l, e).await;
        pause(Duration::from_millis(300)).await;
    }
    wait_normals(&c, &c.ids(), &expected).await;
    for id in c.ids() {
        assert_eq!(c.handle(id).status().term, term, "member {id}");
    }
    pause(3 * ELECTION).await;
    c.wait_until("an election after the leader went idle", |c| {
        c.ids().iter().any(|id| c.handle(*id).status().term > term)
    })
    .await;
    c.net.clear_kind(MessageType::MsgHeartbeat);
    let l2 = c.leader().await;
    c.propose(l2, b"later").await;
    let mut all = expected.clone();
    all.push(b"later".to_vec());
    wait_normals(&c, &c.ids(), &all).await;
    c.shutdown().await;
}
