//! The etcd v3 gRPC services. tonic types stop here: below this module everything is kvd's own.
//! [`status`] holds the one mapping of kvd errors to etcd's gRPC status codes and messages.

pub mod auth;
pub mod cluster;
pub mod core;
pub mod kv;
pub mod leader_monitor;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod status;
pub mod txn_depth;
pub mod v3election;
pub mod v3lock;
pub mod validate;
pub mod watch;

pub use self::core::{Core, Limits};
pub use status::ApiError;
