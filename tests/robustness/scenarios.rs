//! The scenarios: one test per fault (and per server for the etcd twins). Each runs
//! [`crate::rounds`] rounds of [`crate::traffic_time`] traffic; the limit covers start-up,
//! the nemesis, the settling and the checks.

use std::time::Duration;

use crate::nemesis::Kind;
use crate::scenario::Scenario;
use crate::traffic::Profile;

/// The bound on one scenario test (all its rounds).
fn limit() -> Duration {
    let per_round = crate::traffic_time() + Duration::from_secs(100);
    per_round * u32::try_from(crate::rounds()).unwrap_or(1)
}

/// The snapshot count of the snapshot scenarios: small, so that a follower cut off for a
/// few seconds needs a snapshot.
const SNAPSHOT_COUNT: &str = "200";

fn kvd(name: &str, scenario: Scenario) {
    crate::run(name, limit(), scenario.run_rounds());
}

fn etcd(name: &str, scenario: Scenario) {
    crate::run_on_etcd(name, limit(), scenario.on_etcd().run_rounds());
}

fn crash(name: &str, scenario: Scenario) {
    if !cfg!(feature = "failpoints") {
        eprintln!("skipped: crash points need `--features failpoints`");
        return;
    }
    if !crate::harness::testing_kvd() {
        eprintln!("skipped: crash points are kvd's own");
        return;
    }
    kvd(name, scenario);
}

fn kill() -> Scenario {
    Scenario::new("kill", Profile::Etcd, Kind::Kill)
}

#[test]
fn kill_leader_and_follower() {
    kvd("kill", kill());
}

#[test]
fn kill_leader_and_follower_etcd() {
    etcd("kill-etcd", kill());
}

fn pause() -> Scenario {
    Scenario::new("pause", Profile::Etcd, Kind::Pause)
}

#[test]
fn pause_leader_and_follower() {
    kvd("pause", pause());
}

#[test]
fn pause_leader_and_follower_etcd() {
    etcd("pause-etcd", pause());
}

fn blackhole() -> Scenario {
    Scenario::new("blackhole", Profile::Kube, Kind::Blackhole)
}

#[test]
fn peer_blackhole() {
    kvd("blackhole", blackhole());
}

#[test]
fn peer_blackhole_etcd() {
    etcd("blackhole-etcd", blackhole());
}

fn delay_drop() -> Scenario {
    Scenario::new("delay-drop", Profile::Etcd, Kind::DelayDrop)
}

#[test]
fn peer_delay_and_drop() {
    kvd("delay-drop", delay_drop());
}

#[test]
fn peer_delay_and_drop_etcd() {
    etcd("delay-drop-etcd", delay_drop());
}

#[test]
fn follower_needs_snapshot() {
    kvd(
        "snapshot",
        Scenario::new("snapshot", Profile::Kube, Kind::SnapshotCatchUp)
            .flags(&["--snapshot-count", SNAPSHOT_COUNT]),
    );
}

fn replace() -> Scenario {
    Scenario::new("replace", Profile::Etcd, Kind::Replace)
}

#[test]
fn member_replaced_under_load() {
    kvd("replace", replace());
}

#[test]
fn member_replaced_under_load_etcd() {
    etcd("replace-etcd", replace());
}

fn rolling() -> Scenario {
    Scenario::new("rolling", Profile::Kube, Kind::RollingRestart)
}

#[test]
fn rolling_restart() {
    kvd("rolling", rolling());
}

#[test]
fn rolling_restart_etcd() {
    etcd("rolling-etcd", rolling());
}

#[test]
fn crash_points_on_the_write_path() {
    crash(
        "crash-write",
        Scenario::new("crash-write", Profile::Etcd, Kind::CrashWrite),
    );
}

#[test]
fn crash_points_around_snapshots() {
    crash(
        "crash-snapshot",
        Scenario::new("crash-snapshot", Profile::Kube, Kind::CrashSnapshot)
            .flags(&["--snapshot-count", SNAPSHOT_COUNT]),
    );
}

#[test]
fn crash_points_in_compaction_and_defrag() {
    crash(
        "crash-maintenance",
        Scenario::new("crash-maintenance", Profile::Etcd, Kind::CrashMaintenance),
    );
}

/// No fault; watchers ask for progress every 50 ms while clients write: a progress
/// notification must never run ahead of an event not yet delivered on its stream.
fn progress() -> Scenario {
    let mut s = Scenario::new("progress", Profile::Kube, Kind::None);
    s.progress_every = Duration::from_millis(50);
    s.traffic = Duration::from_secs(10);
    s
}

#[test]
fn progress_requests_under_writes() {
    kvd("progress", progress());
}

#[test]
fn progress_requests_under_writes_etcd() {
    etcd("progress-etcd", progress());
}
