//! The multi-member process harness shared by the `cluster` and `robustness` test binaries,
//! each of which includes it with `#[path = "../support/cluster/mod.rs"] mod cluster_support;`
//! next to `mod support;` (the harness uses [`crate::support`] for processes and binaries).
//!
//! - [`harness`]: members as child processes ([`harness::Node`], [`harness::Cluster`]);
//! - [`security`]: mutual TLS on client and peer listeners (one test CA);
//! - [`proxy`]: TCP proxies in front of the peer listeners that cut, blackhole, delay and
//!   drop links;
//! - [`client`]: bounded gRPC client calls;
//! - [`checker`]: the linearizability checker;
//! - [`run`] / [`run_on_etcd`]: one scenario alone on its own runtime, bounded by a deadline.

// Each binary uses only part of the harness, so items one binary leaves unused are expected.
#![allow(dead_code)]

pub mod checker;
pub mod client;
pub mod harness;
pub mod proxy;
pub mod security;

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

/// Runs one scenario alone (scenarios are timing-sensitive on a small machine), on its own
/// multi-threaded runtime, failing it after `limit`.
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
