//! kvd: an etcd-compatible, replicated key-value server.
//!
//! # Module map
//!
//! | layer | modules | job |
//! | --- | --- | --- |
//! | start-up | [`config`], [`server`], [`cluster`] | flags, `ETCD_*` and YAML to one validated configuration, which the server takes as it is; listeners and shutdown order; membership and bootstrap |
//! | edge | [`api`], [`gateway`], [`http`], [`tls`] | one file per etcd gRPC service, `api/status.rs` maps every error to etcd's code and text; the JSON gateway; health, version, metrics; TLS with reload, CRL and CN/hostname checks |
//! | consensus | [`raft`] | the task that owns raft-rs's `RawNode`, its log in the WAL, the peer transport |
//! | state machine | [`apply`], [`mvcc`], [`watch`], [`lease`], [`auth`], [`compactor`] | committed entries to revisions, watch events, leases, users and roles |
//! | persistence | [`storage`], [`snapshot`], [`etcd_snapshot`], [`bbolt`] | the WAL and the state backend (sled named in one file), snapshots in etcd's bbolt format |
//! | tools | [`pki`], [`snapshot_cli`], [`metrics`], [`logging`] | `kvd pki`, `kvd snapshot`, Prometheus metrics, etcd-style logs |
//!
//! # A write
//! `api::kv` validates the request and checks permissions that can be checked early, then
//! `api::core::Core::propose` hands it to [`raft`]. The raft task appends it to the WAL
//! (`storage::wal`, one fdatasync per Ready) while it sends it to the followers; once a quorum
//! has it, [`apply`] runs it against [`mvcc`] (and leases, auth, membership), writes the state
//! batch with the applied index to [`storage`], and passes the events to [`watch`]. The waiter of
//! the proposal then answers the client with the revision.
//!
//! # A read
//! A linearizable read asks [`raft`] for a read index (the leader confirms it still leads), waits
//! until [`apply`] has reached it, then reads [`mvcc`]'s in-memory key index and the values from
//! [`storage`]. A serializable read skips the read index.
#![deny(missing_docs)]

pub mod api;
pub mod apply;
pub mod auth;
pub mod bbolt;
pub mod cluster;
pub mod compactor;
pub mod config;
pub mod crc32c;
pub mod etcd_snapshot;
pub mod failpoints;
pub mod gateway;
pub mod http;
pub mod lease;
pub mod logging;
pub mod metrics;
pub mod mvcc;
pub mod pki;
pub mod proto;
pub mod raft;
pub mod server;
#[cfg(test)]
mod sim;
pub mod snapshot;
pub mod snapshot_cli;
pub mod storage;
pub mod tls;
pub mod version;
pub mod watch;
pub(crate) mod x509;
