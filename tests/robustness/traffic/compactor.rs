//! kube-apiserver's compactor: every round, `Txn(If Version(compact_rev_key) == t Then
//! Put(compact_rev_key, ...) Else Get(compact_rev_key))`; when it succeeds, `Compact` to the
//! revision the previous round saw. Here it also never compacts past the lowest revision a
//! watcher would resume from, so that the watchers' history stays complete.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::ops::call;
use super::{Shared, COMPACTOR_CLIENT};
use crate::record::{Cond, Record, Request, Response, Then};
use crate::slots::Target;
use crate::watch::Positions;

/// The key kube-apiserver keeps its compaction state in.
pub const COMPACT_KEY: &str = "compact_rev_key";

/// The compactor's state.
pub struct Compactor {
    /// `Version(compact_rev_key)` as last seen.
    version: i64,
    /// The header revision of the previous round's txn (the next compaction target).
    last_rev: i64,
    round: u64,
    positions: Positions,
    /// The highest revision compacted so far (shared with the scenario).
    pub compacted: Arc<AtomicI64>,
    /// Slot of the member the next round talks to (rotates).
    slot: usize,
}

impl Compactor {
    /// A compactor that stays below `positions`.
    pub fn new(positions: Positions) -> Compactor {
        Compactor {
            version: 0,
            last_rev: 0,
            round: 0,
            positions,
            compacted: Arc::new(AtomicI64::new(0)),
            slot: 0,
        }
    }

    /// Rounds every `every` until `shared.stop`; returns the records.
    pub async fn run(mut self, shared: Shared, every: Duration) -> Vec<Record> {
        let mut out = Vec::new();
        loop {
            // interruptible wait, so a stop is not delayed by a whole interval
            let until = tokio::time::Instant::now() + every;
            while tokio::time::Instant::now() < until {
                if shared.stop.load(Ordering::SeqCst) {
                    return out;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let target = shared.slots.get(self.slot);
            self.slot += 1;
            out.extend(self.round(&target, &shared).await);
        }
    }

    /// One round against `target`; returns its records (the txn, and the compaction if one
    /// was sent).
    pub async fn round(&mut self, target: &Target, shared: &Shared) -> Vec<Record> {
        self.round += 1;
        let mut out = Vec::new();
        let txn = call(
            COMPACTOR_CLIENT,
            target,
            &shared.clock,
            Request::Txn {
                key: COMPACT_KEY.to_string(),
                cond: Cond::Version(self.version),
                then: Then::Put(format!("compact-{}-{}", self.round, self.last_rev)),
            },
        )
        .await;
        let resp = txn.resp.clone();
        out.push(txn);
        match resp {
            Ok(Response::Txn {
                succeeded: true,
                revision,
                ..
            }) => {
                self.version += 1;
                let floor = self.positions.min();
                let to = self.last_rev.min(floor);
                self.last_rev = revision;
                if to > self.compacted.load(Ordering::SeqCst) {
                    let c = call(
                        COMPACTOR_CLIENT,
                        target,
                        &shared.clock,
                        Request::Compact { revision: to },
                    )
                    .await;
                    if c.resp.is_ok() {
                        self.compacted.fetch_max(to, Ordering::SeqCst);
                    }
                    out.push(c);
                }
            }
            Ok(Response::Txn {
                succeeded: false,
                revision,
                else_kv,
            }) => {
                self.version = else_kv.map_or(0, |kv| kv.version);
                self.last_rev = revision;
            }
            _ => {}
        }
        out
    }
}
