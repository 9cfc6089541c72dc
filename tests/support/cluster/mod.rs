//! The multi-member process harness shared by the `cluster` and `robustness` test binaries,
//! each of which includes it with `#[path = "../support/cluster/mod.rs"] mod cluster_support;`
//! next to `mod support;` (the harness uses [`crate::support`] for processes and binaries).
//!
//! - [`harness`]: members as child processes ([`harness::Node`], [`harness::Cluster`]);
//! - [`security`]: mutual TLS on client and peer listeners (one test CA);
//! - [`proxy`]: TCP proxies in front of the peer listeners that cut, blackhole, delay and
//!   drop links;
//! - [`client`]: bounded gRPC client calls;
//! - [`checker`]: the linearizability checker.

// Each binary uses only part of the harness, so items one binary leaves unused are expected.
#![allow(dead_code)]

pub mod checker;
pub mod client;
pub mod harness;
pub mod proxy;
pub mod security;
