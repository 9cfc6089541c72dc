//! Multi-member cluster tests: kvd members as separate processes on loopback, driven through
//! kvd's own etcd v3 gRPC clients.
//!
//! Scenarios: the leader SIGKILLed under write load; a member cut off from the others by
//! peer proxies; a learner that needs a snapshot, promoted, and an old member removed; a
//! linearizability check of a concurrent history while members are killed; watches on a
//! follower across a leader kill; a five-member cluster losing two members. Peers speak
//! plain http today; [`security`] is the one place that will add TLS.
//!
//! Every scenario runs alone (they are timing-sensitive on a small machine), on its own
//! runtime, bounded by a deadline; every process it starts is killed when it ends, also on
//! panic. Run: `cargo test --test cluster -- --nocapture` to see the measured figures;
//! `KVD_BIN=/usr/bin/etcd` runs the same scenarios against real etcd 3.4 (which checks the
//! scenarios themselves; only kvd's own error-text assertion in `partition` differs).

#[path = "../support/cluster/mod.rs"]
mod cluster_support;
mod load;
#[path = "../support/mod.rs"]
mod support;
mod watcher;

use cluster_support::{checker, client, harness, security};

mod five_members;
mod force_new_cluster;
mod foreign_member;
mod leader_changed;
mod leader_kill;
mod learner;
mod leases;
mod linearizable;
mod partition;
mod peer_tls_rollout;
mod promote_via_follower;
mod require_leader;
mod watch_failover;

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// [`run`] for a scenario's twin against real etcd 3.4 (the reference); skipped, with a line
/// saying so, when etcd is not installed.
pub fn run_on_etcd(name: &str, limit: Duration, scenario: impl Future<Output = ()>) {
    let etcd = harness::etcd_bin();
    if !etcd.is_file() {
        eprintln!("skipped: {} not installed", etcd.display());
        return;
    }
    run(name, limit, scenario);
}

/// Runs one scenario alone, on its own multi-threaded runtime, failing it after `limit`.
pub fn run(name: &str, limit: Duration, scenario: impl Future<Output = ()>) {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("build tokio runtime");
    let started = Instant::now();
    rt.block_on(async {
        if tokio::time::timeout(limit, scenario).await.is_err() {
            panic!("{name}: scenario did not finish within {limit:?}");
        }
    });
    eprintln!("[{name}] finished in {:.1?}", started.elapsed());
}
