//! The checks of a recorded scenario, each returning the problems it found (an empty list
//! when the guarantee held):
//! - [`linearizable`]: the per-key KV history is linearizable (the porcupine-style checker);
//! - [`writes`]: every acknowledged write is in the history exactly once, at the revision it
//!   was acknowledged with; no value is applied twice; every event was asked for;
//! - [`reads`]: every answer (gets, txn compares and their else-reads, deletes, list pages at
//!   fixed revisions) matches the replayed history at its revision;
//! - [`order`]: revisions respect real time (an operation that started after another one
//!   returned is ordered after it);
//! - [`watch`]: etcd's watch guarantees on every watcher.

pub mod linearizable;
pub mod order;
pub mod reads;
pub mod watch;
pub mod writes;

/// Problems of one check, with at most `MAX_SHOWN` of them spelled out.
pub fn capped(check: &str, mut problems: Vec<String>) -> Vec<String> {
    const MAX_SHOWN: usize = 8;
    let n = problems.len();
    if n > MAX_SHOWN {
        problems.truncate(MAX_SHOWN);
        problems.push(format!("... and {} more {check} problems", n - MAX_SHOWN));
    }
    problems
        .into_iter()
        .map(|p| format!("[{check}] {p}"))
        .collect()
}
