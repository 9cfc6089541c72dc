//! End-to-end tests that drive a server binary with the real `etcdctl` 3.4.
//!
//! Most tests are differential: the same scenario runs against real etcd 3.4 and against
//! the server under test (`KVD_BIN`, else the `kvd` binary of this package), and the
//! normalised transcripts must be equal. Scenarios also assert exact values known from
//! etcd, so a behaviour both servers get wrong still fails. Without etcd/etcdctl
//! installed every test prints `skipped: etcdctl not installed` and passes.
//!
//! Run: `cargo test --test etcdctl` (add `KVD_BIN=/path/to/server` to test another binary).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;
#[macro_use]
mod harness;
mod differential;
mod normalize;

mod auth;
mod checkperf;
mod cluster;
mod compaction;
mod errors;
mod kv;
mod lease;
mod lock_elect;
mod maintenance;
mod restart;
mod txn;
mod v35;
mod watch;
