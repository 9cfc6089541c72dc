//! kvd: an etcd-compatible key-value server.
pub mod mvcc;
pub mod proto;
pub mod storage;
pub mod lease;
pub mod raft;
pub mod cluster;
pub mod watch;
pub mod apply;
pub mod api;
pub mod http;
pub mod compactor;
pub mod config;
pub mod pki;
pub mod server;
pub mod snapshot;
