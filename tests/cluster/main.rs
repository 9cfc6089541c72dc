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

use cluster_support::{checker, client, harness, run, run_on_etcd, security};

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
