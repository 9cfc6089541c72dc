//! The watch hub: which watchers want which keys, live delivery of applied events, and catch-up
//! from history for watchers that start in the past or fell behind.
//!
//! A watcher is *synced* when it has seen everything up to the store's current revision; apply
//! hands each revision's events to synced watchers without ever blocking (a full channel makes
//! the watcher unsynced). Unsynced watchers are caught up from MVCC history by a background task.
//! Each watcher remembers the next revision it needs, so no event is lost or repeated when it
//! moves between the two states.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, Notify};
use tracing::warn;

use crate::mvcc::{Event, EventKind, MvccStore};

/// Identifies a watcher: its stream and its watch ID on that stream.
pub type WatcherKey = (u64, i64);

/// What a watch stream receives from the hub.
#[derive(Debug, Clone)]
pub struct WatchBatch {
    /// The watch ID on the stream.
    pub watch_id: i64,
    /// Events, in revision order.
    pub events: Vec<Event>,
    /// The store revision when sent.
    pub revision: i64,
    /// Set when the watcher was cancelled because its next revision was compacted.
    pub compact_revision: i64,
}

/// A watcher's wishes.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// Start of the key range.
    pub key: Vec<u8>,
    /// End of the key range (empty = the key alone, `"\0"` = all keys from `key` on).
    pub range_end: Vec<u8>,
    /// Skip put events.
    pub no_put: bool,
    /// Skip delete events.
    pub no_delete: bool,
}

impl WatchSpec {
    fn matches(&self, ev: &Event) -> bool {
        match ev.kind {
            EventKind::Put if self.no_put => return false,
            EventKind::Delete if self.no_delete => return false,
            _ => {}
        }
        let k = ev.kv.key.as_slice();
        if self.range_end.is_empty() {
            k == self.key.as_slice()
        } else if self.range_end == [0] {
            k >= self.key.as_slice()
        } else {
            k >= self.key.as_slice() && k < self.range_end.as_slice()
        }
    }
}

struct Watcher {
    spec: WatchSpec,
    tx: mpsc::Sender<WatchBatch>,
    next_rev: i64,
    synced: bool,
}

/// All watchers of this member.
pub struct WatchHub {
    watchers: Mutex<HashMap<WatcherKey, Watcher>>,
    mvcc: Arc<RwLock<MvccStore>>,
    unsynced: Notify,
}

impl WatchHub {
    /// A hub reading history from `mvcc`.
    pub fn new(mvcc: Arc<RwLock<MvccStore>>) -> Arc<Self> {
        Arc::new(Self {
            watchers: Mutex::new(HashMap::new()),
            mvcc,
            unsynced: Notify::new(),
        })
    }

    /// Adds a watcher that wants events from `start_rev` on (0 = from the next revision).
    /// Returns the current revision.
    pub fn watch(
        &self,
        key: WatcherKey,
        spec: WatchSpec,
        start_rev: i64,
        tx: mpsc::Sender<WatchBatch>,
    ) -> i64 {
        let mut watchers = self.watchers.lock();
        let current = self.mvcc.read().current_rev();
        let next_rev = if start_rev <= 0 {
            current + 1
        } else {
            start_rev
        };
        let synced = next_rev > current;
        watchers.insert(
            key,
            Watcher {
                spec,
                tx,
                next_rev,
                synced,
            },
        );
        drop(watchers);
        if !synced {
            self.unsynced.notify_one();
        }
        current
    }

    /// Makes every watcher catch up from history again (after the state was replaced by a
    /// snapshot): each resumes from the revision it needs next, or is told it was compacted.
    pub fn resync_all(&self) {
        for w in self.watchers.lock().values_mut() {
            w.synced = false;
        }
        self.unsynced.notify_one();
    }

    /// Removes a watcher; true if it existed.
    pub fn cancel(&self, key: WatcherKey) -> bool {
        self.watchers.lock().remove(&key).is_some()
    }

    /// Removes every watcher of a stream.
    pub fn cancel_stream(&self, stream: u64) {
        self.watchers.lock().retain(|(s, _), _| *s != stream);
    }

    /// True when every watcher of the stream is synced (a progress notification may be sent).
    pub fn stream_synced(&self, stream: u64) -> bool {
        self.watchers
            .lock()
            .iter()
            .all(|((s, _), w)| *s != stream || w.synced)
    }

    /// Delivers the events of applied revision `rev` to synced watchers. Never blocks.
    pub fn notify(&self, rev: i64, events: &[Event]) {
        let mut watchers = self.watchers.lock();
        let mut fell_behind = false;
        for ((_, watch_id), w) in watchers.iter_mut() {
            if !w.synced || rev < w.next_rev {
                continue;
            }
            let matched: Vec<Event> = events
                .iter()
                .filter(|e| w.spec.matches(e))
                .cloned()
                .collect();
            if matched.is_empty() {
                w.next_rev = rev + 1;
                continue;
            }
            let batch = WatchBatch {
                watch_id: *watch_id,
                events: matched,
                revision: rev,
                compact_revision: 0,
            };
            match w.tx.try_send(batch) {
                Ok(()) => w.next_rev = rev + 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.synced = false;
                    fell_behind = true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => w.synced = false,
            }
        }
        drop(watchers);
        if fell_behind {
            self.unsynced.notify_one();
        }
    }

    /// Catches up unsynced watchers from history until cancelled; run as a background task.
    pub async fn run_sync(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let more = self.sync_once();
            if more {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.unsynced.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// One catch-up pass. Returns true if some watcher is still unsynced.
    fn sync_once(&self) -> bool {
        const MAX_REVS_PER_PASS: i64 = 1000;
        let pending: Vec<(WatcherKey, i64)> = self
            .watchers
            .lock()
            .iter()
            .filter(|(_, w)| !w.synced)
            .map(|(k, w)| (*k, w.next_rev))
            .collect();
        if pending.is_empty() {
            return false;
        }
        let mut still_unsynced = false;
        for (key, from) in pending {
            let (current, compact, upto, events) = {
                let mvcc = self.mvcc.read();
                let current = mvcc.current_rev();
                let compact = mvcc.compact_rev();
                let upto = current.min(from.saturating_add(MAX_REVS_PER_PASS - 1));
                let events = if from < compact || from > current {
                    Ok(Vec::new())
                } else {
                    mvcc.events_between(from, upto)
                };
                (current, compact, upto, events)
            };
            let mut watchers = self.watchers.lock();
            let Some(w) = watchers.get_mut(&key) else {
                continue;
            };
            if w.next_rev != from || w.synced {
                continue;
            }
            if from < compact {
                let batch = WatchBatch {
                    watch_id: key.1,
                    events: Vec::new(),
                    revision: current,
                    compact_revision: compact,
                };
                if w.tx.try_send(batch).is_ok() {
                    watchers.remove(&key);
                } else {
                    still_unsynced = true;
                }
                continue;
            }
            let events = match events {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "watch catch-up failed to read history");
                    still_unsynced = true;
                    continue;
                }
            };
            let matched: Vec<Event> = events.into_iter().filter(|e| w.spec.matches(e)).collect();
            if !matched.is_empty() {
                let batch = WatchBatch {
                    watch_id: key.1,
                    events: matched,
                    revision: current,
                    compact_revision: 0,
                };
                if w.tx.try_send(batch).is_err() {
                    still_unsynced = true;
                    continue;
                }
            }
            w.next_rev = if from > current { from } else { upto + 1 };
            // Synced only if nothing was applied since we read: apply notifies synced watchers
            // after it updated the store, under this same lock.
            if w.next_rev > self.mvcc.read().current_rev() {
                w.synced = true;
            } else {
                still_unsynced = true;
            }
        }
        still_unsynced
    }
}
