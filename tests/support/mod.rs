//! Test-harness code shared by the end-to-end test binaries (`etcdctl`, `snapshot`, `tls`,
//! `cluster`), each of which includes it with `#[path = "../support/mod.rs"] mod support;`.
//!
//! Every module has one job; where the suites' copies differed (poll intervals, grace periods,
//! temp-dir prefixes, stdin handling) the difference is a parameter the suite passes in.

// Each test binary compiles this module on its own and uses only part of it, so items (and
// macros) one binary leaves unused are expected rather than dead.
#![allow(dead_code, unused_macros)]

pub mod background;
#[macro_use]
pub mod bins;
pub mod bounded_run;
pub mod etcdctl_json;
pub mod logged_process;
pub mod member;
pub mod output;
pub mod poll;
pub mod ports;
pub mod process;
pub mod readiness;
pub mod temp;
