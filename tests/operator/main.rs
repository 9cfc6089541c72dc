//! What operators watch and run, end to end: `/metrics` compared with etcd 3.5.1's, a real
//! Prometheus scraping a three-member mutual-TLS cluster and evaluating etcd-mixin's alert
//! expressions, the health endpoints, etcd's logging flags, and the metrics and HTTP-only
//! listeners. Tests that need etcd 3.5.1, Prometheus or promtool skip with a line saying so
//! when they are missing (`scripts/test-all` installs them).
//!
//! Run: `cargo nextest run --test operator`.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;
#[macro_use]
mod harness;
mod expo;

mod health;
mod listeners;
mod logs;
mod metrics;
mod prometheus;
