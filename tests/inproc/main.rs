//! In-process tests: a member started through `kvd::server::start`, driven by kvd's own
//! generated gRPC clients.

mod common;
mod kv;
mod lease;
mod watch;
