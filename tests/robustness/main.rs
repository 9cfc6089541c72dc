//! kvd's robustness suite, modelled on etcd's tests/robustness: three-member clusters (mutual
//! TLS on client and peer listeners, heartbeat 100 ms, election 1 s) as separate processes
//! take recorded client traffic while a nemesis injects one kind of fault; then the history
//! is validated.
//!
//! - [`traffic`]: two profiles, etcd-like (put, linearizable get, delete, compare-and-swap
//!   txn, leases with keep-alive and expiry) and Kubernetes-like (paginated lists at a fixed
//!   revision, optimistic `Txn(If ModRevision(k)==rev Then Put|Delete Else Get)` updates,
//!   kube-apiserver's compaction); six clients, each pinned to one member.
//! - [`watch`]: watchers that resume on another member after a break, from the last
//!   revision they saw plus one, with prev_kv, progress notifications and RequestProgress
//!   (the Kubernetes ones with the `hasleader: true` metadata).
//! - [`nemesis`]: the faults: SIGKILL, SIGSTOP, peer blackhole/delay/drop through the peer
//!   proxies, a follower cut off until it needs a snapshot, member replacement, rolling
//!   restarts and kvd's crash points.
//! - [`history`] and [`validate`]: the revision history merged from the watchers and
//!   replayed; then linearizability, exactly-once writes, reads against the replay,
//!   real-time order of revisions and etcd's watch guarantees. [`final_checks`] asks the
//!   members themselves: hashkv, reads at past revisions, watches resumed from past
//!   revisions.
//! - [`disk`]: a member whose data dir fills up, and one that cannot read it.
//!
//! Every scenario runs alone on its own runtime, bounded by a deadline; every process it
//! starts is killed when it ends, also on panic. `KVD_ROBUSTNESS_SOAK=1` runs each scenario
//! for more rounds with longer traffic. The `*_etcd` twins run the same scenario against
//! real etcd 3.4 (the reference: a failing etcd run means the test is wrong). See
//! `README.md` here for the table of scenarios and results.

#[path = "../support/cluster/mod.rs"]
mod cluster_support;
#[path = "../support/mod.rs"]
mod support;

mod disk;
mod final_checks;
mod history;
mod nemesis;
mod record;
mod scenario;
mod scenarios;
mod slots;
mod traffic;
mod validate;
mod watch;

use cluster_support::{checker, client, harness, proxy, run, run_on_etcd};

use std::time::Duration;

/// True under `KVD_ROBUSTNESS_SOAK=1`: more rounds, longer traffic.
pub fn soak() -> bool {
    std::env::var("KVD_ROBUSTNESS_SOAK").is_ok_and(|v| v == "1")
}

/// Rounds of each scenario: 1, or 3 in soak mode.
pub fn rounds() -> usize {
    if soak() {
        3
    } else {
        1
    }
}

/// How long clients send traffic in one round: 20 s, or 40 s in soak mode.
pub fn traffic_time() -> Duration {
    if soak() {
        Duration::from_secs(40)
    } else {
        Duration::from_secs(20)
    }
}
