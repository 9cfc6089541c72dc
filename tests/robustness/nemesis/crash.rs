//! kvd's crash points (src/failpoints.rs, built with `--features failpoints`): a member is
//! restarted with `FAILPOINTS` arming one point, dies there (SIGKILL at that line) while
//! traffic runs, and is started again without it. Every point a scenario covers must fire
//! at least once, or the scenario reports it.
//!
//! - write path: `raft::before_persist`, `raft::after_persist`, `apply::before_state_write`,
//!   `apply::after_state_write`, each armed to fire after a random number of evaluations,
//!   on whichever member (leader or follower) gets there;
//! - snapshots: the leader armed with `snapshot::before_save` or `snapshot::before_send`, a
//!   follower armed with `snapshot::before_install` or `snapshot::after_install`, and the
//!   follower cut off until it needs a snapshot;
//! - maintenance: `compact::before_apply` and `compact::after_apply` on a member when a
//!   compaction is committed, `defrag::before` and `defrag::after` on a defragment request.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use kvd::proto::etcdserverpb::{DefragmentRequest, MoveLeaderRequest};
use rand::Rng;

use super::network::{snapshot_gap, snapshots_installed, wait_gap, wait_index};
use super::{Ctx, RECOVERY};
use crate::client::{self, within, OP_TIMEOUT};
use crate::traffic::compactor::Compactor;
use crate::traffic::Shared;

/// The write-path points.
pub const WRITE_POINTS: [&str; 4] = [
    "raft::before_persist",
    "raft::after_persist",
    "apply::before_state_write",
    "apply::after_state_write",
];

/// How many times each point has fired in member `i`'s log so far.
fn fired(ctx: &Ctx<'_>, i: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for line in ctx.cluster.nodes[i].log_text().lines() {
        if let Some(rest) = line.split("failpoint ").nth(1) {
            if let Some(point) = rest.strip_suffix(": killing the process") {
                *out.entry(point.to_string()).or_default() += 1;
            }
        }
    }
    out
}

/// The point that killed member `i` most recently, given the counts before.
fn new_point(ctx: &Ctx<'_>, i: usize, before: &HashMap<String, usize>) -> Option<String> {
    fired(ctx, i)
        .into_iter()
        .find(|(p, n)| before.get(p).copied().unwrap_or(0) < *n)
        .map(|(p, _)| p)
}

/// Stops member `i` cleanly and starts it with `failpoints` armed (not waiting).
async fn arm(ctx: &mut Ctx<'_>, i: usize, failpoints: &str) {
    ctx.cluster.nodes[i].terminate(Duration::from_secs(10));
    ctx.cluster.nodes[i].launch_armed(failpoints);
}

/// Waits until member `i` exits; false after `timeout`.
async fn wait_exit(ctx: &mut Ctx<'_>, i: usize, timeout: Duration) -> bool {
    ctx.cluster.nodes[i].wait_exit(timeout).await.is_some()
}

/// Moves leadership to member `target` (MoveLeader on the leader); true once it leads.
async fn move_leader(ctx: &mut Ctx<'_>, target: usize) -> bool {
    let deadline = Instant::now() + RECOVERY;
    let id = ctx.cluster.nodes[target].id;
    while Instant::now() < deadline {
        let leader = ctx.leader().await;
        if leader == target {
            return true;
        }
        let mut m = MaintenanceClient::new(ctx.cluster.nodes[leader].channel());
        if let Err(e) = within(
            OP_TIMEOUT,
            m.move_leader(MoveLeaderRequest { target_id: id }),
        )
        .await
        {
            eprintln!("[nemesis] move leader to {}: {e}", ctx.name(target));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    false
}

/// The member that leads now, if the running members agree quickly (for the report).
async fn leader_id(ctx: &Ctx<'_>) -> u64 {
    for i in ctx.members() {
        if ctx.cluster.nodes[i].is_running() && !ctx.paused.contains(&i) {
            if let Ok(s) = client::status(&ctx.cluster.nodes[i].channel()).await {
                if s.leader != 0 {
                    return s.leader;
                }
            }
        }
    }
    0
}

/// Write-path crash points: every member armed in turn; a member that dies is armed again
/// with the next point until the traffic deadline, then started without points.
pub async fn write_path(ctx: &mut Ctx<'_>) {
    let mut count: HashMap<&str, usize> = WRITE_POINTS.iter().map(|p| (*p, 0)).collect();
    let mut armed: HashMap<usize, &str> = HashMap::new();
    let mut before: HashMap<usize, HashMap<String, usize>> = HashMap::new();
    let choose = |count: &HashMap<&str, usize>, armed: &HashMap<usize, &str>, r: usize| {
        WRITE_POINTS
            .iter()
            .copied()
            .find(|p| count[p] == 0 && !armed.values().any(|a| a == p))
            .unwrap_or(WRITE_POINTS[r % WRITE_POINTS.len()])
    };
    for i in ctx.members() {
        let point = choose(&count, &armed, ctx.rng.gen_range(0..4));
        let n = ctx.rng.gen_range(30..300);
        before.insert(i, fired(ctx, i));
        arm(ctx, i, &format!("{point}={n}*off->return")).await;
        armed.insert(i, point);
        ctx.fault(format!(
            "{} restarted with {point} armed after {n} evaluations",
            ctx.name(i)
        ));
        let d = ctx.ms(800, 1500);
        ctx.sleep(d).await;
    }
    let mut leader = 0;
    let mut last_look = Instant::now() - Duration::from_secs(1);
    while ctx.left() > Duration::from_secs(2) {
        if last_look.elapsed() >= Duration::from_millis(500) {
            leader = leader_id(ctx).await;
            last_look = Instant::now();
        }
        for i in ctx.members() {
            if ctx.cluster.nodes[i].exited().is_none() {
                continue;
            }
            let role = if ctx.cluster.nodes[i].id == leader {
                "leader"
            } else {
                "follower"
            };
            let was = armed.remove(&i);
            match new_point(ctx, i, &before.remove(&i).unwrap_or_default()) {
                Some(p) => {
                    if let Some(c) = count.get_mut(p.as_str()) {
                        *c += 1;
                    }
                    ctx.fault(format!("{} ({role}) died at {p}", ctx.name(i)));
                }
                None => {
                    let tail = ctx.cluster.nodes[i].log_tail(15);
                    ctx.problems.push(format!(
                        "{} ({role}, armed with {was:?}) exited but no crash point fired; log tail:\n{tail}",
                        ctx.name(i)
                    ));
                }
            }
            before.insert(i, fired(ctx, i));
            if ctx.left() > Duration::from_secs(5) {
                let point = choose(&count, &armed, ctx.rng.gen_range(0..4));
                let n = ctx.rng.gen_range(30..300);
                ctx.cluster.nodes[i].launch_armed(&format!("{point}={n}*off->return"));
                armed.insert(i, point);
                ctx.fault(format!(
                    "{} started with {point} armed after {n} evaluations",
                    ctx.name(i)
                ));
            } else {
                ctx.cluster.nodes[i].launch();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // disarm the survivors, one at a time
    for (i, point) in armed {
        if ctx.cluster.nodes[i].exited().is_some() {
            if let Some(p) = new_point(ctx, i, &before.remove(&i).unwrap_or_default()) {
                if let Some(c) = count.get_mut(p.as_str()) {
                    *c += 1;
                }
                ctx.fault(format!("{} died at {p}", ctx.name(i)));
            }
            ctx.cluster.nodes[i].launch();
        } else {
            ctx.cluster.nodes[i].terminate(Duration::from_secs(10));
            ctx.cluster.nodes[i].launch();
            ctx.fault(format!("{} restarted without {point}", ctx.name(i)));
        }
        ctx.up(i, RECOVERY).await;
    }
    for (p, n) in count {
        if n == 0 {
            ctx.problems
                .push(format!("crash point {p} was armed but never fired"));
        }
    }
}

/// Snapshot crash points: two rounds, each with a leader armed with a snapshot-sending point
/// and a follower armed with an installing point, the follower cut off until it needs a
/// snapshot and then healed.
pub async fn snapshot(ctx: &mut Ctx<'_>) {
    let net = ctx
        .cluster
        .net
        .clone()
        .expect("the snapshot crash scenario needs a proxied cluster");
    let count = ctx
        .snapshot_count
        .expect("the snapshot crash scenario sets --snapshot-count");
    let gap = snapshot_gap(false, count);
    let rounds = [
        ("snapshot::before_save", "snapshot::before_install"),
        ("snapshot::before_send", "snapshot::after_install"),
    ];
    for (lp, fp) in rounds {
        ctx.check_exits().await;
        let leader = ctx.leader().await;
        let followers: Vec<usize> = ctx.members().into_iter().filter(|&i| i != leader).collect();
        let (x, f) = (followers[0], followers[1]);
        let bx = fired(ctx, x);
        let bf = fired(ctx, f);
        arm(ctx, x, &format!("{lp}=return")).await;
        if !ctx.up(x, RECOVERY).await {
            ctx.problems
                .push(format!("{} armed with {lp} did not come up", ctx.name(x)));
        }
        arm(ctx, f, &format!("{fp}=return")).await;
        if !ctx.up(f, RECOVERY).await {
            ctx.problems
                .push(format!("{} armed with {fp} did not come up", ctx.name(f)));
        }
        if !move_leader(ctx, x).await {
            ctx.problems.push(format!(
                "leadership did not move to {} (armed with {lp})",
                ctx.name(x)
            ));
        }
        ctx.fault(format!(
            "{} leads with {lp} armed; {} follows with {fp} armed",
            ctx.name(x),
            ctx.name(f)
        ));
        let cut = Instant::now();
        net.isolate(f);
        let top = wait_gap(ctx, f, gap, RECOVERY).await;
        net.heal(f);
        ctx.fault(format!(
            "{} cut off for {:.1?} until it needs a snapshot (raft index {top:?})",
            ctx.name(f),
            cut.elapsed()
        ));
        for (i, point, b) in [(x, lp, &bx), (f, fp, &bf)] {
            if wait_exit(ctx, i, RECOVERY).await {
                match new_point(ctx, i, b) {
                    Some(p) => ctx.fault(format!("{} died at {p}", ctx.name(i))),
                    None => ctx.problems.push(format!(
                        "{} exited without firing {point}; log tail:\n{}",
                        ctx.name(i),
                        ctx.cluster.nodes[i].log_tail(15)
                    )),
                }
                ctx.cluster.nodes[i].launch();
            } else {
                ctx.problems.push(format!(
                    "crash point {point} armed on {} never fired within {RECOVERY:?}",
                    ctx.name(i)
                ));
                ctx.cluster.nodes[i].terminate(Duration::from_secs(10));
                ctx.cluster.nodes[i].launch();
            }
        }
        let installed_before = snapshots_installed(ctx, f);
        for i in [x, f] {
            if !ctx.up(i, RECOVERY).await {
                ctx.problems
                    .push(format!("{} did not come back after its crash", ctx.name(i)));
            }
        }
        if let Some(top) = top {
            if wait_index(ctx, f, top, RECOVERY).await {
                ctx.fault(format!(
                    "{} caught up; {} more snapshot(s) installed since its restart",
                    ctx.name(f),
                    snapshots_installed(ctx, f) - installed_before
                ));
            } else {
                ctx.problems.push(format!(
                    "{} did not catch up to raft index {top} after restarting",
                    ctx.name(f)
                ));
            }
        }
    }
    tokio::time::sleep(ctx.left()).await;
}

/// Maintenance crash points: a member armed with each point in turn (the leader for the
/// first of each pair), then a compaction or a defragment request to it.
pub async fn maintenance(ctx: &mut Ctx<'_>) {
    let shared = Shared {
        slots: ctx.slots.clone(),
        clock: ctx.clock,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let mut compactor = Compactor::new(ctx.positions.clone());
    let rounds = [
        ("compact::before_apply", true),
        ("compact::after_apply", true),
        ("defrag::before", false),
        ("defrag::after", false),
    ];
    for (round, (point, compaction)) in rounds.into_iter().enumerate() {
        let d = ctx.ms(500, 1500);
        ctx.sleep(d).await;
        ctx.check_exits().await;
        let (v, role) = ctx.victim(round).await;
        let before = fired(ctx, v);
        arm(ctx, v, &format!("{point}=return")).await;
        if !ctx.up(v, RECOVERY).await {
            ctx.problems.push(format!(
                "{} armed with {point} did not come up",
                ctx.name(v)
            ));
        }
        if role == "leader" && !move_leader(ctx, v).await {
            ctx.problems
                .push(format!("leadership did not move back to {}", ctx.name(v)));
        }
        ctx.fault(format!("{} ({role}) armed with {point}", ctx.name(v)));
        let target = ctx.target(v);
        let deadline = Instant::now() + RECOVERY;
        let mut died = false;
        while Instant::now() < deadline {
            if compaction {
                let recs = compactor.round(&target, &shared).await;
                ctx.records.extend(recs);
            } else {
                let mut m = MaintenanceClient::new(target.channel.clone());
                let r = within(OP_TIMEOUT, m.defragment(DefragmentRequest {})).await;
                eprintln!("[nemesis] defragment {}: {:?}", ctx.name(v), r.map(|_| ()));
            }
            if wait_exit(ctx, v, Duration::from_millis(500)).await {
                died = true;
                break;
            }
        }
        match (died, new_point(ctx, v, &before)) {
            (true, Some(p)) => ctx.fault(format!("{} died at {p}", ctx.name(v))),
            (true, None) => ctx.problems.push(format!(
                "{} exited without firing {point}; log tail:\n{}",
                ctx.name(v),
                ctx.cluster.nodes[v].log_tail(15)
            )),
            (false, _) => {
                ctx.problems.push(format!(
                    "crash point {point} armed on {} never fired within {RECOVERY:?}",
                    ctx.name(v)
                ));
                ctx.cluster.nodes[v].terminate(Duration::from_secs(10));
            }
        }
        ctx.cluster.nodes[v].launch();
        if !ctx.up(v, RECOVERY).await {
            ctx.problems
                .push(format!("{} did not come back after its crash", ctx.name(v)));
        }
    }
    tokio::time::sleep(ctx.left()).await;
}
