//! One scenario: a cluster, recorded traffic of one profile, watchers, one nemesis, then
//! every check. [`Scenario::run`] returns a [`Report`]; [`Scenario::run_rounds`] runs it
//! [`crate::rounds`] times and fails the test with every problem found.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use crate::client;
use crate::final_checks;
use crate::harness::{Cluster, ClusterOpts};
use crate::history::History;
use crate::nemesis::{self, Ctx, Kind};
use crate::record::{Clock, Record};
use crate::slots::{Slots, Target};
use crate::traffic::compactor::Compactor;
use crate::traffic::{etcd as etcd_traffic, Profile, Traffic};
use crate::validate;
use crate::watch::{Positions, WatchSpec, Watcher, NODELETE};

/// How long the end of a scenario may wait for members, watchers and leases.
const SETTLE: Duration = Duration::from_secs(30);

/// What to run.
pub struct Scenario {
    /// Name in messages.
    pub name: String,
    /// Server binary (kvd, or etcd for a twin).
    pub bin: PathBuf,
    /// Traffic profile.
    pub profile: Profile,
    /// The fault.
    pub nemesis: Kind,
    /// Extra member flags.
    pub flags: Vec<String>,
    /// Put the peer proxies in place.
    pub proxied: bool,
    /// Interval of kube-apiserver-style compaction (`None`: no compactor).
    pub compaction: Option<Duration>,
    /// Interval between the watchers' RequestProgress calls.
    pub progress_every: Duration,
    /// How long traffic runs.
    pub traffic: Duration,
}

/// What a run did and found.
pub struct Report {
    /// One line: operations, watch events, revisions, faults.
    pub summary: String,
    /// Every problem found.
    pub problems: Vec<String>,
}

impl Scenario {
    /// A scenario of `nemesis` with `profile` traffic on kvd (or `KVD_BIN`).
    pub fn new(name: &str, profile: Profile, nemesis: Kind) -> Scenario {
        Scenario {
            name: name.to_string(),
            bin: crate::harness::kvd_bin(),
            profile,
            nemesis,
            flags: Vec::new(),
            proxied: matches!(
                nemesis,
                Kind::Blackhole | Kind::DelayDrop | Kind::SnapshotCatchUp | Kind::CrashSnapshot
            ),
            compaction: (profile == Profile::Kube).then_some(Duration::from_secs(3)),
            progress_every: Duration::from_millis(1000),
            traffic: crate::traffic_time(),
        }
    }

    /// The same scenario against real etcd 3.4.
    pub fn on_etcd(mut self) -> Scenario {
        self.bin = crate::harness::etcd_bin();
        self.name.push_str("-etcd");
        self
    }

    /// Adds member flags.
    pub fn flags(mut self, flags: &[&str]) -> Scenario {
        self.flags.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    fn is_etcd(&self) -> bool {
        self.bin == crate::harness::etcd_bin()
    }

    fn snapshot_count(&self) -> Option<u64> {
        let at = self.flags.iter().position(|f| f == "--snapshot-count")?;
        self.flags.get(at + 1)?.parse().ok()
    }

    /// Runs [`crate::rounds`] rounds; panics with every problem of every round.
    pub async fn run_rounds(self) {
        let mut failed = Vec::new();
        for round in 1..=crate::rounds() {
            let report = self.run().await;
            eprintln!("[{}] round {round}: {}", self.name, report.summary);
            if !report.problems.is_empty() {
                failed.push(format!(
                    "round {round}: {}\n{}",
                    report.summary,
                    report.problems.join("\n")
                ));
            }
        }
        assert!(
            failed.is_empty(),
            "{}: {} round(s) failed:\n{}",
            self.name,
            failed.len(),
            failed.join("\n\n")
        );
    }

    /// Runs the scenario once.
    pub async fn run(&self) -> Report {
        let etcd = self.is_etcd();
        let mut opts = ClusterOpts::kvd(3);
        opts.bin = self.bin.clone();
        opts.proxied = self.proxied;
        opts.flags.extend(self.flags.iter().cloned());
        let mut cluster = Cluster::start(opts).await;
        let clock = Clock::start();
        let targets: Vec<Target> = cluster
            .nodes
            .iter()
            .map(|n| Target {
                name: n.spec.name.clone(),
                channel: n.channel(),
            })
            .collect();
        let slots = Slots::new(targets);
        let positions = Positions::default();

        let mut specs = vec![
            WatchSpec::history("history-1", 0),
            WatchSpec::history("history-2", 1),
        ];
        match self.profile {
            Profile::Etcd => {
                specs.push(WatchSpec::prefix("prefix", etcd_traffic::PREFIX, 2));
                let mut puts = WatchSpec::prefix("puts-only", etcd_traffic::PREFIX, 1);
                puts.filters = vec![NODELETE];
                puts.prev_kv = false;
                specs.push(puts);
            }
            Profile::Kube => {
                for (i, slot) in [(1, 1), (2, 2)] {
                    let mut w =
                        WatchSpec::prefix(&format!("kube-{i}"), self.profile.prefix(), slot);
                    w.hasleader = true;
                    specs.push(w);
                }
            }
        }
        let watchers: Vec<Watcher> = specs
            .into_iter()
            .map(|mut s| {
                s.progress_every = self.progress_every;
                Watcher::start(s, slots.clone(), clock, &positions, 1)
            })
            .collect();
        let compactor = self
            .compaction
            .map(|every| (Compactor::new(positions.clone()), every));
        let traffic = Traffic::start(self.profile, slots.clone(), clock, compactor);
        let until = Instant::now() + self.traffic;

        let mut ctx = Ctx {
            cluster: &mut cluster,
            slots: slots.clone(),
            slot_nodes: vec![0, 1, 2],
            clock,
            until,
            positions: positions.clone(),
            removed: HashSet::new(),
            paused: HashSet::new(),
            broken: HashSet::new(),
            faults: Vec::new(),
            problems: Vec::new(),
            records: Vec::new(),
            etcd,
            rng: rand::rngs::StdRng::from_entropy(),
            snapshot_count: self.snapshot_count(),
        };
        nemesis::run(self.nemesis, &mut ctx).await;
        tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
        let Ctx {
            faults,
            mut problems,
            records: nemesis_records,
            removed,
            broken,
            ..
        } = ctx;
        let traffic_secs = clock.secs();
        let mut records = traffic.stop().await;
        records.extend(nemesis_records);

        let members: Vec<usize> = (0..cluster.nodes.len())
            .filter(|i| !removed.contains(i) && !broken.contains(i))
            .collect();
        let live: Vec<Target> = members
            .iter()
            .map(|&i| Target {
                name: cluster.nodes[i].spec.name.clone(),
                channel: cluster.nodes[i].channel(),
            })
            .collect();
        if self.profile == Profile::Etcd {
            problems.extend(wait_leases_expired(&live[0]).await);
        }
        let leader = cluster.wait_leader(&members, None, SETTLE).await;
        let final_rev = cluster.revision(leader).await;
        for &i in &members {
            cluster.wait_revision(i, final_rev, SETTLE).await;
        }

        // the history watchers first, then the others up to the history's last event of
        // theirs
        let (history_w, other_w): (Vec<Watcher>, Vec<Watcher>) =
            watchers.into_iter().partition(|w| w.spec.history);
        let mut reports = Vec::new();
        for w in history_w {
            if !w.wait_event(final_rev, SETTLE).await {
                problems.push(format!(
                    "watcher {} did not receive revision {final_rev} within {SETTLE:?} (last event {})",
                    w.spec.name,
                    w.last_event()
                ));
            }
            reports.push(w.stop().await);
        }
        let mut history_problems = Vec::new();
        let history = History::build(&reports, final_rev, &mut history_problems);
        for w in other_w {
            let last = history
                .events()
                .filter(|e| e.revision() <= final_rev && w.spec.matches(&e.kv.key, e.delete))
                .map(|e| e.revision())
                .last()
                .unwrap_or(0);
            if !w.wait_event(last, SETTLE).await {
                problems.push(format!(
                    "watcher {} did not receive revision {last} within {SETTLE:?} (last event {})",
                    w.spec.name,
                    w.last_event()
                ));
            }
            reports.push(w.stop().await);
        }
        problems.extend(validate::capped("history", history_problems));

        let (hash_problems, compacted) = final_checks::hashes(&live, final_rev).await;
        problems.extend(validate::capped("hashkv", hash_problems));
        problems.extend(validate::capped(
            "past reads",
            final_checks::past_reads(&live, &history, compacted).await,
        ));
        problems.extend(validate::capped(
            "resumed watches",
            final_checks::resumed_watches(&live, &history, compacted, clock).await,
        ));

        let keys = self.profile.register_keys();
        let label = self.name.clone();
        let check_bookmarkable = !etcd;
        let (offline, skipped, history, records, reports) =
            tokio::task::spawn_blocking(move || {
                let mut p = Vec::new();
                p.extend(validate::capped(
                    "exactly once",
                    validate::writes::check(&records, &history),
                ));
                p.extend(validate::capped(
                    "reads",
                    validate::reads::check(&records, &history),
                ));
                p.extend(validate::capped(
                    "real-time order",
                    validate::order::check(&records),
                ));
                p.extend(validate::capped(
                    "linearizable",
                    validate::linearizable::check(&records, &history, &keys, &label),
                ));
                let w = validate::watch::check(&reports, &history, check_bookmarkable);
                p.extend(validate::capped("watch", w.problems));
                (p, w.skipped_bookmarkable, history, records, reports)
            })
            .await
            .expect("validation task");
        problems.extend(offline);

        if !problems.is_empty() {
            problems.push(keep_logs(&self.name, &cluster));
        }
        let summary = summary(
            &records,
            &reports,
            &history,
            compacted,
            traffic_secs,
            &faults,
            skipped,
            etcd,
        );
        Report { summary, problems }
    }
}

/// Copies every member's log out of its temp dir (removed with the cluster) for a failure
/// report; the line saying where they are.
fn keep_logs(scenario: &str, cluster: &Cluster) -> String {
    let mut kept = Vec::new();
    for n in &cluster.nodes {
        let path =
            std::env::temp_dir().join(format!("kvd-robustness-{scenario}-{}.log", n.spec.name));
        match std::fs::write(&path, n.log_text()) {
            Ok(()) => kept.push(path.display().to_string()),
            Err(e) => kept.push(format!("({} not kept: {e})", n.spec.name)),
        }
    }
    format!("member logs: {}", kept.join(", "))
}

/// After traffic: waits until every key put with a lease is gone (the leases expired); the
/// problems if not.
async fn wait_leases_expired(member: &Target) -> Vec<String> {
    let prefix = etcd_traffic::lease_prefix();
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = client::get_prefix(&member.channel, &prefix, false).await;
        match left {
            Ok(kvs) if kvs.is_empty() => return Vec::new(),
            Ok(kvs) if Instant::now() >= deadline => {
                return vec![format!(
                    "[leases] {} keys put with leases of TTL {} s still exist {SETTLE:?} after traffic stopped: {:?}",
                    kvs.len(),
                    etcd_traffic::LEASE_TTL,
                    kvs.iter().take(5).collect::<Vec<_>>()
                )]
            }
            Err(e) if Instant::now() >= deadline => {
                return vec![format!("[leases] cannot read {prefix} on {}: {e}", member.name)]
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn summary(
    records: &[Record],
    reports: &[crate::watch::WatchReport],
    history: &History,
    compacted: i64,
    traffic_secs: f64,
    faults: &[String],
    skipped_bookmarkable: usize,
    etcd: bool,
) -> String {
    let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in records {
        let e = kinds.entry(r.req.kind()).or_default();
        if r.resp.is_ok() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let acked: usize = kinds.values().map(|k| k.0).sum();
    let failed: usize = kinds.values().map(|k| k.1).sum();
    let by_kind = kinds
        .iter()
        .map(|(k, (ok, bad))| format!("{k} {ok}/{}", ok + bad))
        .collect::<Vec<_>>()
        .join(", ");
    let events: usize = reports.iter().map(|r| r.events().count()).sum();
    let watches: usize = reports.iter().map(|r| r.ops.len()).sum();
    let progress: usize = reports
        .iter()
        .flat_map(|r| r.ops.iter())
        .flat_map(|o| o.responses.iter())
        .filter(|r| r.progress)
        .count();
    let no_leader = reports
        .iter()
        .flat_map(|r| r.ops.iter())
        .filter(|o| o.ended.as_deref().is_some_and(|e| e.contains("no leader")))
        .count();
    let mut s = format!(
        "{} operations in {traffic_secs:.1}s ({acked} ok, {failed} failed or timed out: {by_kind}); {} watches, {events} events, {progress} progress notifications, {no_leader} ended with 'no leader'; history of {} events to revision {}, compacted at {compacted}; faults: [{}]",
        records.len(),
        watches,
        history.len(),
        history.final_rev,
        faults.join("; ")
    );
    if etcd {
        s.push_str(&format!(
            "; bookmarkable not checked on etcd 3.4.23 (etcd #15220, fixed in 3.4.24): {skipped_bookmarkable} violations seen"
        ));
    }
    s
}
