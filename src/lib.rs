//! kvd: an etcd-compatible key-value server.
pub mod api;
pub mod apply;
pub mod bbolt;
pub mod cluster;
pub mod compactor;
pub mod config;
pub mod etcd_snapshot;
pub mod http;
pub mod lease;
pub mod mvcc;
pub mod pki;
pub mod proto;
pub mod raft;
pub mod server;
pub mod snapshot;
pub mod storage;
pub mod watch;
