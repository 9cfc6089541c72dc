//! A deterministic in-process cluster harness (tests only), in the way raft-rs's `harness/`
//! works: real members in one process, over an in-memory network that can drop, delay,
//! reorder, duplicate, hold and partition messages, on virtual time (the runtime's clock is
//! paused), so an election or a lease expiry takes no wall time and runs the same way every time.
//!
//! - [`network`]: links and message rules, held messages, counts by message type;
//! - [`cluster`]: starting members, stopping and restarting them from their own storage, adding
//!   and removing them through configuration changes, and waits bounded in virtual time;
//! - scenarios by area: `raft_scenarios` (elections, replication, snapshots, membership),
//!   `apply_scenarios` (kvd's apply path through each member's `Core`), `watch_scenarios` and
//!   `lease_scenarios`.
//!
//! Every scenario runs under `#[tokio::test(start_paused = true)]`. The process-level suites
//! under `tests/` stay for what only real processes show (sockets, TLS, crashes, fsync).

pub mod cluster;
pub mod kv;
pub mod network;

mod apply_scenarios;
mod lease_scenarios;
mod raft_scenarios;
mod watch_scenarios;
