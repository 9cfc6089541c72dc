//! The faults injected while traffic runs, one kind per scenario:
//! - [`process`]: SIGKILL, SIGSTOP/SIGCONT and rolling restarts (SIGTERM) of the leader and
//!   of followers;
//! - [`network`]: peer blackholes, delays and message drops through the peer proxies, and a
//!   follower cut off until it needs a snapshot;
//! - [`membership`]: a member removed and a fresh one added under load;
//! - [`crash`]: kvd's crash points (src/failpoints.rs): a member dies at the point, is
//!   restarted without it, and the checks run.
//!
//! A nemesis runs until the traffic deadline (a crash-point nemesis until its rounds are
//! done), then [`Ctx::finish`] leaves every member running, unfrozen, unarmed and connected,
//! so that the checks see the whole cluster.

pub mod crash;
pub mod membership;
pub mod network;
pub mod process;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use crate::client;
use crate::harness::Cluster;
use crate::record::{Clock, Record};
use crate::slots::{Slots, Target};
use crate::watch::Positions;

/// How long a member may take to agree on a leader again after a fault.
pub const RECOVERY: Duration = Duration::from_secs(30);

/// The fault of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No fault (traffic and checks only).
    None,
    /// SIGKILL the leader, then a follower, ...; restart each.
    Kill,
    /// SIGSTOP the leader, then a follower, ... for 1-4 s; SIGCONT.
    Pause,
    /// Blackhole the peer links of the leader, a follower, or only what the leader sends.
    Blackhole,
    /// Delay and drop the peer traffic of the leader or a follower.
    DelayDrop,
    /// Cut a follower off until the leader's log was compacted past it; heal.
    SnapshotCatchUp,
    /// Remove a member and add a fresh one.
    Replace,
    /// SIGTERM and restart each member in turn.
    RollingRestart,
    /// Crash points on the write path (raft persist, apply).
    CrashWrite,
    /// Crash points while a snapshot is saved, sent and installed.
    CrashSnapshot,
    /// Crash points during compaction and defragmentation.
    CrashMaintenance,
}

/// What a nemesis works with.
pub struct Ctx<'a> {
    /// The cluster.
    pub cluster: &'a mut Cluster,
    /// The clients' and watchers' slots.
    pub slots: Slots,
    /// For each slot, the member index it points at.
    pub slot_nodes: Vec<usize>,
    /// The scenario clock.
    pub clock: Clock,
    /// When traffic ends.
    pub until: Instant,
    /// The watchers' resume revisions (a nemesis that compacts stays below them).
    pub positions: Positions,
    /// Members removed from the cluster (down for good).
    pub removed: HashSet<usize>,
    /// Members currently frozen by SIGSTOP.
    pub paused: HashSet<usize>,
    /// Members that could not be started again (left out of the final checks).
    pub broken: HashSet<usize>,
    /// Every fault injected, for the report.
    pub faults: Vec<String>,
    /// Problems found by the nemesis itself (a member that exited by itself, a crash point
    /// that never fired).
    pub problems: Vec<String>,
    /// Client records the nemesis produced (compactions it triggered).
    pub records: Vec<Record>,
    /// The server under test is real etcd.
    pub etcd: bool,
    /// Randomness.
    pub rng: StdRng,
    /// `--snapshot-count` of the members, if set.
    pub snapshot_count: Option<u64>,
}

impl Ctx<'_> {
    /// Indices of the members that belong to the cluster (and are not broken).
    pub fn members(&self) -> Vec<usize> {
        (0..self.cluster.nodes.len())
            .filter(|i| !self.removed.contains(i) && !self.broken.contains(i))
            .collect()
    }

    /// Waits until member `i` serves a linearizable read; false if it exits first or after
    /// `timeout`.
    pub async fn up(&mut self, i: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let ch = self.cluster.nodes[i].channel();
        loop {
            if !self.cluster.nodes[i].is_running() || self.cluster.nodes[i].exited().is_some() {
                return false;
            }
            if client::get(&ch, "health", false).await.is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The current leader's index (the members agree on it); panics after [`RECOVERY`].
    pub async fn leader(&self) -> usize {
        let among: Vec<usize> = self
            .members()
            .into_iter()
            .filter(|i| !self.paused.contains(i))
            .collect();
        self.cluster.wait_leader(&among, None, RECOVERY).await
    }

    /// The leader on even rounds, a random follower on odd ones; (index, "leader" or
    /// "follower").
    pub async fn victim(&mut self, round: usize) -> (usize, &'static str) {
        let leader = self.leader().await;
        if round.is_multiple_of(2) {
            return (leader, "leader");
        }
        let followers: Vec<usize> = self
            .members()
            .into_iter()
            .filter(|&i| i != leader)
            .collect();
        let f = followers[self.rng.gen_range(0..followers.len())];
        (f, "follower")
    }

    /// Name of member `i`.
    pub fn name(&self, i: usize) -> String {
        self.cluster.nodes[i].spec.name.clone()
    }

    /// Records a fault.
    pub fn fault(&mut self, what: String) {
        let line = format!("{:.1}s {what}", self.clock.secs());
        eprintln!("[nemesis] {line}");
        self.faults.push(line);
    }

    /// Time left until the traffic deadline.
    pub fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// Sleeps `d`.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// A random duration in `[lo, hi)` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.gen_range(lo..hi))
    }

    /// Records a problem for each member that exited by itself (with its log tail) and
    /// starts it again.
    pub async fn check_exits(&mut self) {
        for i in self.members() {
            if self.cluster.nodes[i].is_running() {
                if let Some(st) = self.cluster.nodes[i].exited() {
                    let tail = self.cluster.nodes[i].log_tail(15);
                    self.problems.push(format!(
                        "{} exited by itself ({st}); log tail:\n{tail}",
                        self.name(i)
                    ));
                    self.cluster.nodes[i].launch();
                }
            }
        }
    }

    /// Leaves the cluster whole: links healed, frozen members resumed, members that are down
    /// started again, every member ready, and a leader. A member that cannot be started
    /// again is a problem; it is left out of the final checks.
    pub async fn finish(&mut self) {
        if let Some(net) = &self.cluster.net {
            net.heal_all();
        }
        for i in std::mem::take(&mut self.paused) {
            self.cluster.nodes[i].resume();
        }
        self.check_exits().await;
        for i in self.members() {
            if !self.cluster.nodes[i].is_running() {
                self.cluster.nodes[i].launch();
            }
        }
        for i in self.members() {
            if !self.up(i, crate::harness::READY_TIMEOUT).await {
                let tail = self.cluster.nodes[i].log_tail(12);
                self.problems.push(format!(
                    "{} does not start again (not ready within {:?}); log tail:\n{tail}",
                    self.name(i),
                    crate::harness::READY_TIMEOUT
                ));
                self.cluster.nodes[i].kill9();
                self.broken.insert(i);
            }
        }
        let _ = self.leader().await;
    }

    /// The member `i` as a slot target.
    pub fn target(&self, i: usize) -> Target {
        Target {
            name: self.name(i),
            channel: self.cluster.nodes[i].channel(),
        }
    }

    /// Raft index (`Status.raft_index`) of member `i`.
    pub async fn raft_index(&self, i: usize) -> Option<u64> {
        client::status(&self.cluster.nodes[i].channel())
            .await
            .ok()
            .map(|s| s.raft_index)
    }
}

/// Runs the nemesis `kind` until the traffic deadline, then [`Ctx::finish`].
pub async fn run(kind: Kind, ctx: &mut Ctx<'_>) {
    match kind {
        Kind::None => {
            tokio::time::sleep(ctx.left()).await;
        }
        Kind::Kill => process::kill(ctx).await,
        Kind::Pause => process::pause(ctx).await,
        Kind::RollingRestart => process::rolling_restart(ctx).await,
        Kind::Blackhole => network::blackhole(ctx).await,
        Kind::DelayDrop => network::delay_drop(ctx).await,
        Kind::SnapshotCatchUp => network::snapshot_catch_up(ctx).await,
        Kind::Replace => membership::replace(ctx).await,
        Kind::CrashWrite => crash::write_path(ctx).await,
        Kind::CrashSnapshot => crash::snapshot(ctx).await,
        Kind::CrashMaintenance => crash::maintenance(ctx).await,
    }
    ctx.finish().await;
}
