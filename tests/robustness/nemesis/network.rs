//! Peer network faults through the proxies in front of every peer listener: blackholes (of
//! the leader, of a follower, or only of what the leader sends), delays and message drops,
//! and a follower cut off until the leader compacted its log past it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Ctx, RECOVERY};
use crate::proxy::Net;

fn net(ctx: &Ctx<'_>) -> Arc<Net> {
    ctx.cluster
        .net
        .clone()
        .expect("a network nemesis needs a proxied cluster")
}

/// Blackholes, in turn, every link of the leader, every link of a follower, and what the
/// leader sends (it still hears the others), for 2-4 s each.
pub async fn blackhole(ctx: &mut Ctx<'_>) {
    let net = net(ctx);
    let mut round = 0;
    while ctx.left() > Duration::from_secs(6) {
        let d = ctx.ms(1000, 2000);
        ctx.sleep(d).await;
        ctx.check_exits().await;
        let mode = round % 3;
        let (v, role) = ctx.victim(if mode == 1 { 1 } else { 0 }).await;
        round += 1;
        let dur = ctx.ms(2000, 4000);
        let what = if mode == 2 {
            net.blackhole_outgoing(v);
            "what it sends"
        } else {
            net.blackhole(v);
            "both ways"
        };
        ctx.fault(format!(
            "blackhole {} ({role}) {what} for {dur:.1?}",
            ctx.name(v)
        ));
        ctx.sleep(dur).await;
        net.heal(v);
        let _ = ctx.leader().await;
    }
}

/// Delays (100-300 ms, plus up to 100 ms) or drops (1 % of chunks, each taking its
/// connection down) the peer traffic of the leader or of a follower, 3 s at a time.
pub async fn delay_drop(ctx: &mut Ctx<'_>) {
    let net = net(ctx);
    let mut round = 0;
    while ctx.left() > Duration::from_secs(5) {
        let d = ctx.ms(500, 1500);
        ctx.sleep(d).await;
        ctx.check_exits().await;
        let (v, role) = ctx.victim(round).await;
        let dur = Duration::from_secs(3);
        if (round / 2) % 2 == 0 {
            let delay = ctx.ms(100, 300);
            net.delay(v, delay, Duration::from_millis(100));
            ctx.fault(format!(
                "delay {} ({role}) by {delay:.0?} + up to 100ms for {dur:.0?}",
                ctx.name(v)
            ));
        } else {
            net.drop_messages(v, 0.01);
            ctx.fault(format!(
                "drop 1% of {}'s ({role}) peer traffic for {dur:.0?}",
                ctx.name(v)
            ));
        }
        round += 1;
        ctx.sleep(dur).await;
        net.heal(v);
    }
}

/// The log line a member writes when it installs a snapshot from the leader.
fn snapshot_marker(etcd: bool) -> &'static str {
    if etcd {
        "applying snapshot"
    } else {
        "installing snapshot from the leader"
    }
}

/// How far (in raft entries) the leader must be ahead of a follower before the follower
/// can only catch up with a snapshot: the leader keeps `min(5000, snapshot count)` entries
/// after each compaction (etcd 3.4 always keeps 5000) and compacts every `snapshot count`.
pub fn snapshot_gap(etcd: bool, count: u64) -> u64 {
    let kept = if etcd { 5000 } else { count.min(5000) };
    kept + count + 50
}

/// Waits until the leader's raft index is `gap` entries past member `f`'s; the leader's
/// index then, or `None` after `timeout`.
pub async fn wait_gap(ctx: &Ctx<'_>, f: usize, gap: u64, timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    let behind = ctx.raft_index(f).await.unwrap_or(0);
    loop {
        let mut top = 0;
        for i in ctx.members().into_iter().filter(|&i| i != f) {
            top = top.max(ctx.raft_index(i).await.unwrap_or(0));
        }
        if top >= behind + gap {
            return Some(top);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until member `i`'s raft index reaches `index`; false after `timeout`.
pub async fn wait_index(ctx: &Ctx<'_>, i: usize, index: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while ctx.raft_index(i).await.unwrap_or(0) < index {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// How many snapshots member `i` installed so far (its log lines).
pub fn snapshots_installed(ctx: &Ctx<'_>, i: usize) -> usize {
    ctx.cluster.nodes[i]
        .log_text()
        .matches(snapshot_marker(ctx.etcd))
        .count()
}

/// Twice: cuts a follower off (its peer connections closed and new ones refused) until the
/// leader's log was compacted past it, heals it, and checks that it caught up by installing
/// a snapshot.
///
/// Not with a blackhole: the bytes a blackhole holds back are delivered when it heals, and
/// with them the appends the leader queued for the follower meanwhile (kvd queues up to 4096
/// messages per peer), so a blackholed follower may catch up from those without needing a
/// snapshot.
pub async fn snapshot_catch_up(ctx: &mut Ctx<'_>) {
    let net = net(ctx);
    let count = ctx
        .snapshot_count
        .expect("the snapshot scenario sets --snapshot-count");
    let gap = snapshot_gap(ctx.etcd, count);
    for round in 0..2 {
        let d = ctx.ms(1000, 2000);
        ctx.sleep(d).await;
        ctx.check_exits().await;
        let (f, _) = ctx.victim(1).await;
        let before = snapshots_installed(ctx, f);
        let cut_at = Instant::now();
        net.isolate(f);
        let Some(top) = wait_gap(ctx, f, gap, RECOVERY).await else {
            ctx.problems.push(format!(
                "the leader did not get {gap} entries ahead of the cut-off {} within {RECOVERY:?}",
                ctx.name(f)
            ));
            net.heal(f);
            continue;
        };
        net.heal(f);
        ctx.fault(format!(
            "{} cut off for {:.1?} (round {round}), until the others were {gap} entries ahead (raft index {top})",
            ctx.name(f),
            cut_at.elapsed()
        ));
        let healed = Instant::now();
        if !wait_index(ctx, f, top, RECOVERY).await {
            ctx.problems.push(format!(
                "{} did not catch up to raft index {top} within {RECOVERY:?} of healing",
                ctx.name(f)
            ));
            continue;
        }
        let installed = snapshots_installed(ctx, f) - before;
        if installed == 0 {
            ctx.problems.push(format!(
                "{} caught up without installing a snapshot (no {:?} in its log)",
                ctx.name(f),
                snapshot_marker(ctx.etcd)
            ));
        }
        ctx.fault(format!(
            "{} caught up {:.1?} after healing, with {installed} snapshot(s) installed",
            ctx.name(f),
            healed.elapsed()
        ));
    }
    tokio::time::sleep(ctx.left()).await;
}
