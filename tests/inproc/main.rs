//! In-process tests: a member started through `kvd::server::start`, driven by kvd's own
//! generated gRPC clients.

mod auth;
mod common;
mod durability;
mod gateway;
mod h2_settings;
mod kv;
mod lease;
mod lock_elect;
mod progress;
mod watch;
