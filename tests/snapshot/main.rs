//! Backups and migration: snapshot files moving between real etcd 3.4 and kvd.
//!
//! A snapshot saved from etcd must restore into kvd (with `kvd snapshot restore`, or with
//! `etcdctl snapshot restore` and kvd started on the etcd data dir) and serve the same keys,
//! revisions, compaction, leases, users and roles; a snapshot saved from kvd must do the same
//! in etcd. `kvd snapshot status` and `etcdctl snapshot status` agree on each other's files, a
//! three-member kvd cluster starts from one snapshot, damaged or foreign files are refused
//! without writing anything, and a snapshot taken under writes is one point in time.
//!
//! Without etcd/etcdctl installed every test prints `skipped: ...` and passes.
//!
//! Run: `cargo test --test snapshot` (add `KVD_BIN=/path/to/kvd` to test another binary;
//! `SNAP_TRACE=1 ... -- --nocapture` prints every etcdctl run with its duration).

#[macro_use]
mod harness;
mod ids;
mod observe;
mod snapfile;
#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod consistency;
mod etcd_to_kvd;
mod kvd_to_etcd;
mod refusals;
mod status;
