//! kvd: an etcd-compatible, replicated key-value server.
//!
//! # Module map
//!
//! | layer | modules | job |
//! | --- | --- | --- |
//! | start-up | [`config`], [`server`], `cluster` | flags, `ETCD_*` and YAML to one validated configuration, which the server takes as it is; listeners and shutdown order; membership and bootstrap |
//! | edge | `api`, `gateway`, `http`, [`tls`] | one file per etcd gRPC service, `api/status.rs` maps every error to etcd's code and text; the JSON gateway; health, version, metrics; TLS with reload, CRL and CN/hostname checks |
//! | consensus | `raft` | the task that owns raft-rs's `RawNode`, its log in the WAL, the peer transport |
//! | state machine | `apply`, `mvcc`, `watch`, `lease`, `auth`, `compactor` | committed entries to revisions, watch events, leases, users and roles |
//! | persistence | `storage`, `snapshot`, [`etcd_snapshot`], [`bbolt`] | the WAL and the state backend (sled named in one file), snapshots in etcd's bbolt format |
//! | tools | [`pki`], [`snapshot_cli`], `metrics`, [`logging`] | `kvd pki`, `kvd snapshot`, Prometheus metrics, etcd-style logs |
//! | shared | [`proto`], [`version`], [`failpoints`], `crc32c`, `x509` | etcd's protobuf messages and gRPC services, the etcd version kvd reports, crash points for the robustness tests, checksums, certificate chains |
//!
//! ## Public and internal modules
//!
//! The modules linked above are kvd's public API, what the `kvd` binary (`src/main.rs`), the
//! integration tests (`tests/`) and the benchmark (`benches/`) use:
//! - the binary: [`config`] (`load`, `Config`), [`server`] (`start`), [`logging`],
//!   [`failpoints`], [`version`], and the subcommands [`pki`] and [`snapshot_cli`];
//! - the tests: [`proto`] (every client), [`config`] and [`server`] (in-process members),
//!   [`tls`] (listener handshakes), [`bbolt`] and [`etcd_snapshot`] (snapshot files checked
//!   against real etcd), [`version`];
//! - [`internals`]: the few internal types an in-process test, the etcdctl JWT test and the
//!   MVCC benchmark reach directly.
//!
//! The others (in code spans) are internal to the crate.
//!
//! # A write
//! `api::kv` validates the request and checks permissions that can be checked early, then
//! `api::core::Core::propose` hands it to `raft`. The raft task appends it to the WAL
//! (`storage::wal`, one fdatasync per Ready) while it sends it to the followers; once a quorum
//! has it, `apply` runs it against `mvcc` (and leases, auth, membership), writes the state
//! batch with the applied index to `storage`, and passes the events to `watch`. The waiter of
//! the proposal then answers the client with the revision.
//!
//! # A read
//! A linearizable read asks `raft` for a read index (the leader confirms it still leads), waits
//! until `apply` has reached it, then reads `mvcc`'s in-memory key index and the values from
//! `storage`. A serializable read skips the read index.
#![deny(missing_docs)]

mod api;
mod apply;
mod auth;
pub mod bbolt;
mod cluster;
mod compactor;
pub mod config;
mod crc32c;
pub mod etcd_snapshot;
pub mod failpoints;
mod gateway;
mod http;
mod lease;
pub mod logging;
mod metrics;
mod mvcc;
pub mod pki;
pub mod proto;
mod raft;
pub mod server;
#[cfg(test)]
mod sim;
mod snapshot;
pub mod snapshot_cli;
mod storage;
pub mod tls;
pub mod version;
mod watch;
mod x509;

/// Internal types that the integration tests and the MVCC benchmark reach directly: the KV
/// range an in-process test runs under a caller's credentials, kvd's JWT keys compared with
/// etcd's tokens, and the MVCC store, state engine and watch hub the benchmark measures. They
/// are not an interface for other users.
pub mod internals {
    pub use crate::api::{kv::range, ApiError};
    pub use crate::auth::{check::Need, credentials::scoped, jwt::JwtKeys, Credentials};
    pub use crate::mvcc::{Event, MvccStore};
    pub use crate::storage::{Engine, StateBatch};
    pub use crate::watch::{WatchHub, WatchSpec};
}
