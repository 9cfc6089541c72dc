//! Bad input and hostile clients, answered as etcd answers them: deeply nested txns, a huge
//! auth token, an oversized gateway body, garbage on the client port, thousands of idle
//! connections, a watcher that never reads, and password guessing. Each probe runs against a
//! kvd member and a real etcd 3.4 member (the reference) with the same steps; the member must
//! stay up with its data intact and keep serving other clients.

#[path = "../support/mod.rs"]
mod support;

mod raw;
mod server;

mod connections;
mod gateway;
mod token;
mod txn;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs one probe alone on its own runtime, failing it after `limit`.
pub fn run(name: &str, limit: Duration, probe: impl Future<Output = ()>) {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        if tokio::time::timeout(limit, probe).await.is_err() {
            panic!("{name}: did not finish within {limit:?}");
        }
    });
}

/// The servers a probe runs against: kvd, and etcd when it is installed.
pub fn servers() -> Vec<(&'static str, std::path::PathBuf)> {
    let mut out = vec![("kvd", support::bins::kvd_bin())];
    let etcd = support::bins::etcd_bin();
    if etcd.is_file() {
        out.push(("etcd", etcd));
    } else {
        eprintln!("etcd reference skipped: {} not installed", etcd.display());
    }
    out
}
