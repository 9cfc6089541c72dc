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

/// Problems of one check, with at most `MAX_SHOWN` of each kind spelled out (a problem's
/// kind is its first word when that word ends with a colon, as in `reliable: ...`).
pub fn capped(check: &str, problems: Vec<String>) -> Vec<String> {
    const MAX_SHOWN: usize = 8;
    let kind = |p: &str| -> String {
        match p.split_once(": ") {
            Some((k, _))
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                k.to_string()
            }
            _ => check.to_string(),
        }
    };
    let mut shown: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for p in problems {
        let n = shown.entry(kind(&p)).or_default();
        *n += 1;
        if *n <= MAX_SHOWN {
            out.push(format!("[{check}] {p}"));
        }
    }
    for (k, n) in shown {
        if n > MAX_SHOWN {
            out.push(format!(
                "[{check}] ... and {} more {k} problems",
                n - MAX_SHOWN
            ));
        }
    }
    out
}
