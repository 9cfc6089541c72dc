//! kvd: an etcd-compatible key-value server.
pub mod proto;
