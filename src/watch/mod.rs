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
    /// A progress notification rather than events: every event up to `revision` of the
    /// watchers it covers was queued on the stream before it (see [`WatchHub::progress`]).
    pub progress: bool,
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
    /// The next revision this watcher needs: every matching event before it was queued.
    next_rev: i64,
    /// The revision it asked to start from (0 = now).
    start_rev: i64,
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
                start_rev,
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

    /// Queues a progress notification on `tx`, the events channel of `stream`, covering the
    /// stream's watchers (or only watcher `only`): answered with `watch_id`. Its revision is the
    /// one every covered watcher has had all its events up to queued on `tx` — and since the
    /// notification is queued behind them under the hub's lock, it can never run ahead of an
    /// event not yet delivered (etcd's "bookmarkable" guarantee). Returns false, queuing
    /// nothing, while a covered watcher is catching up or waits for a future start revision,
    /// or when the stream has no such watcher (etcd then sends nothing either).
    pub fn progress(
        &self,
        stream: u64,
        only: Option<i64>,
        watch_id: i64,
        tx: &mpsc::Sender<WatchBatch>,
    ) -> bool {
        let watchers = self.watchers.lock();
        let current = self.mvcc.read().current_rev();
        let mut revision: Option<i64> = None;
        for ((s, id), w) in watchers.iter() {
            if *s != stream || only.is_some_and(|o| o != *id) {
                continue;
            }
            if !w.synced || w.start_rev > current {
                return false;
            }
            let delivered = w.next_rev - 1;
            revision = Some(revision.map_or(delivered, |r| r.min(delivered)));
        }
        let Some(revision) = revision else {
            return false;
        };
        tx.try_send(WatchBatch {
            watch_id,
            events: Vec::new(),
            revision,
            compact_revision: 0,
            progress: true,
        })
        .is_ok()
    }

    /// How many watchers there are, and how many of them are behind (unsynced).
    pub fn counts(&self) -> (usize, usize) {
        let watchers = self.watchers.lock();
        let behind = watchers.values().filter(|w| !w.synced).count();
        (watchers.len(), behind)
    }

    /// Delivers the events of applied revision `rev` to synced watchers. Never blocks.
    pub fn notify(&self, rev: i64, events: &[Event]) {
        let mut watchers = self.watchers.lock();
        let mut fell_behind = false;
        for ((_, watch_id), w) in watchers.iter_mut() {
            if !w.synced || rev < w.next_rev {
                continue;
            }
            if rev > w.next_rev {
                // A revision this watcher needs reached the store without passing here (the
                // state was replaced): catch up from history rather than leave a gap.
                w.synced = false;
                fell_behind = true;
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
            let queued = matched.len();
            let batch = WatchBatch {
                watch_id: *watch_id,
                events: matched,
                revision: rev,
                compact_revision: 0,
                progress: false,
            };
            match w.tx.try_send(batch) {
                Ok(()) => {
                    w.next_rev = rev + 1;
                    crate::metrics::mvcc::events_queued(queued);
                }
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
                    progress: false,
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
                let queued = matched.len();
                let batch = WatchBatch {
                    watch_id: key.1,
                    events: matched,
                    revision: current,
                    compact_revision: 0,
                    progress: false,
                };
                if w.tx.try_send(batch).is_err() {
                    still_unsynced = true;
                    continue;
                }
                crate::metrics::mvcc::events_queued(queued);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Engine, StateBatch};

    fn hub() -> (Arc<RwLock<MvccStore>>, Arc<WatchHub>) {
        let store = MvccStore::open(Engine::temporary().expect("engine")).expect("store");
        let mvcc = Arc::new(RwLock::new(store));
        let hub = WatchHub::new(mvcc.clone());
        (mvcc, hub)
    }

    /// Applies one put and notifies the hub, as apply does.
    fn put(mvcc: &Arc<RwLock<MvccStore>>, hub: &WatchHub, key: &str) -> i64 {
        let (rev, events) = {
            let mut store = mvcc.write();
            let mut batch = StateBatch::default();
            let mut txn = store.write(&mut batch);
            txn.put(key.as_bytes(), b"v", 0).expect("put");
            let (events, _) = txn.finish();
            store.engine().apply_state(batch).expect("apply");
            (store.current_rev(), events)
        };
        hub.notify(rev, &events);
        rev
    }

    fn spec(key: &str, end: &str) -> WatchSpec {
        WatchSpec {
            key: key.into(),
            range_end: end.into(),
            no_put: false,
            no_delete: false,
        }
    }

    fn revisions(rx: &mut mpsc::Receiver<WatchBatch>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok(b) = rx.try_recv() {
            out.extend(b.events.iter().map(|e| e.kv.mod_revision));
        }
        out
    }

    #[test]
    fn a_watch_on_a_future_revision_skips_earlier_events() {
        let (mvcc, hub) = hub();
        let (tx, mut rx) = mpsc::channel(16);
        hub.watch((1, 0), spec("k", ""), 4, tx);
        for _ in 0..4 {
            put(&mvcc, &hub, "k");
        }
        assert_eq!(
            revisions(&mut rx),
            vec![4, 5],
            "revisions 2 and 3 come before the start"
        );
    }

    #[test]
    fn a_revision_that_skipped_the_hub_is_caught_up_not_left_out() {
        let (mvcc, hub) = hub();
        let (tx, mut rx) = mpsc::channel(16);
        hub.watch((1, 0), spec("k", ""), 0, tx);
        // revision 2 reaches the store without notify (as a replaced state would)
        {
            let mut store = mvcc.write();
            let mut batch = StateBatch::default();
            let mut txn = store.write(&mut batch);
            txn.put(b"k", b"v", 0).expect("put");
            txn.finish();
            store.engine().apply_state(batch).expect("apply");
        }
        put(&mvcc, &hub, "k");
        assert!(
            revisions(&mut rx).is_empty(),
            "revision 3 is not delivered ahead of revision 2"
        );
        assert!(!hub.progress(1, None, -1, &mpsc::channel(1).0), "unsynced");
    }

    #[test]
    fn filters_and_ranges_select_events() {
        let (mvcc, hub) = hub();
        let (tx, mut rx) = mpsc::channel(16);
        let mut no_put = spec("a", "c");
        no_put.no_put = true;
        hub.watch((1, 0), no_put, 0, tx.clone());
        hub.watch((1, 1), spec("b", ""), 0, tx);
        put(&mvcc, &hub, "b");
        put(&mvcc, &hub, "c");
        let batches: Vec<WatchBatch> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            batches.len(),
            1,
            "the no-put watcher sees nothing; `c` is outside both"
        );
        assert_eq!(batches[0].watch_id, 1);
    }

    #[tokio::test]
    async fn a_slow_watcher_catches_up_without_loss_or_repeat() {
        let (mvcc, hub) = hub();
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(hub.clone().run_sync(shutdown.clone()));
        // A channel of one batch: most live events find it full and the watcher falls behind.
        let (tx, mut rx) = mpsc::channel(1);
        hub.watch((1, 0), spec("k", ""), 0, tx);
        let mut last = 0;
        for _ in 0..50 {
            last = put(&mvcc, &hub, "k");
        }
        let mut seen = Vec::new();
        while seen.last() != Some(&last) {
            let batch = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
                .await
                .expect("caught up in time")
                .expect("open");
            seen.extend(batch.events.iter().map(|e| e.kv.mod_revision));
        }
        assert_eq!(seen, (2..=last).collect::<Vec<i64>>());
        shutdown.cancel();
    }

    /// Drains `rx`: (event revisions, progress revisions) in arrival order, as one list.
    fn arrivals(rx: &mut mpsc::Receiver<WatchBatch>) -> Vec<(bool, i64)> {
        let mut out = Vec::new();
        while let Ok(b) = rx.try_recv() {
            if b.progress {
                out.push((true, b.revision));
            } else {
                out.extend(b.events.iter().map(|e| (false, e.kv.mod_revision)));
            }
        }
        out
    }

    #[test]
    fn a_progress_notification_is_queued_behind_every_event_it_covers() {
        let (mvcc, hub) = hub();
        let (tx, mut rx) = mpsc::channel(64);
        hub.watch((1, 0), spec("a", ""), 0, tx.clone());
        hub.watch((1, 1), spec("b", ""), 0, tx.clone());
        put(&mvcc, &hub, "a");
        let last = put(&mvcc, &hub, "b");
        assert!(hub.progress(1, None, -1, &tx));
        put(&mvcc, &hub, "a");
        assert_eq!(
            arrivals(&mut rx),
            vec![(false, 2), (false, 3), (true, last), (false, 4)],
            "the notification follows the events up to its revision and precedes later ones"
        );
        assert!(
            !hub.progress(2, None, -1, &tx),
            "a stream without watchers gets no notification, as from etcd"
        );
    }

    #[tokio::test]
    async fn a_progress_request_waits_while_a_watcher_catches_up() {
        let (mvcc, hub) = hub();
        for _ in 0..5 {
            put(&mvcc, &hub, "k");
        }
        let (tx, mut rx) = mpsc::channel(64);
        hub.watch((1, 0), spec("k", ""), 2, tx.clone());
        assert!(
            !hub.progress(1, None, -1, &tx),
            "unsynced: revision 6 would run ahead of events 2..=6 not yet delivered"
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(hub.clone().run_sync(shutdown.clone()));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !hub.progress(1, None, -1, &tx) {
            assert!(tokio::time::Instant::now() < deadline, "never synced");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let got = arrivals(&mut rx);
        assert_eq!(got.last(), Some(&(true, 6)), "{got:?}");
        let events: Vec<i64> = got.iter().filter(|(p, _)| !p).map(|(_, r)| *r).collect();
        assert_eq!(events, vec![2, 3, 4, 5, 6]);
        shutdown.cancel();
    }

    #[test]
    fn a_watcher_on_a_future_revision_gets_no_progress_yet() {
        let (mvcc, hub) = hub();
        let (tx, mut rx) = mpsc::channel(16);
        hub.watch((1, 0), spec("k", ""), 4, tx.clone());
        assert!(!hub.progress(1, None, -1, &tx));
        for _ in 0..3 {
            put(&mvcc, &hub, "k");
        }
        assert!(hub.progress(1, Some(0), 0, &tx), "revision 4 reached");
        assert_eq!(arrivals(&mut rx), vec![(false, 4), (true, 4)]);
    }

    #[tokio::test]
    async fn a_start_revision_below_the_compaction_is_answered_with_it() {
        let (mvcc, hub) = hub();
        for _ in 0..3 {
            put(&mvcc, &hub, "k");
        }
        {
            let mut store = mvcc.write();
            let mut batch = StateBatch::default();
            store.compact(3, &mut batch).expect("compact");
            store.engine().apply_state(batch).expect("apply");
        }
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(hub.clone().run_sync(shutdown.clone()));
        let (tx, mut rx) = mpsc::channel(4);
        hub.watch((1, 7), spec("k", ""), 2, tx);
        let batch = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("answered in time")
            .expect("open");
        assert_eq!((batch.watch_id, batch.compact_revision), (7, 3));
        assert!(!hub.cancel((1, 7)), "a compacted watcher is removed");
        shutdown.cancel();
    }
}
