//! `etcd_mvcc_*` and `etcd_debugging_mvcc_*`: the database size, operations applied or served,
//! revisions, compaction, hashing, watchers and the events they are sent.
//!
//! As in etcd, puts, deletes and transactions count on every member as they are applied, and
//! ranges count on the member that serves them. A transaction counts in `etcd_mvcc_txn_total`
//! when it runs more than one operation (each compare is a read), as etcd's does.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::{Gauge, Histogram, IntCounter, IntGauge, Registry};

use super::{add, counter, exponential, float_gauge, gauge, histogram};

/// `etcd_mvcc_db_total_size_in_bytes`.
pub static DB_TOTAL_SIZE: LazyLock<Gauge> = LazyLock::new(|| {
    float_gauge(
        "etcd_mvcc_db_total_size_in_bytes",
        "Total size of the underlying database physically allocated in bytes.",
    )
});
/// `etcd_mvcc_db_total_size_in_use_in_bytes`.
pub static DB_TOTAL_SIZE_IN_USE: LazyLock<Gauge> = LazyLock::new(|| {
    float_gauge(
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes.",
    )
});
/// `etcd_mvcc_put_total`.
pub static PUT: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_mvcc_put_total",
        "Total number of puts seen by this member.",
    )
});
/// `etcd_mvcc_range_total`.
pub static RANGE: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_mvcc_range_total",
        "Total number of ranges seen by this member.",
    )
});
/// `etcd_debugging_mvcc_range_total` (etcd keeps the old name too).
pub static DEBUGGING_RANGE: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_debugging_mvcc_range_total",
        "Total number of ranges seen by this member.",
    )
});
/// `etcd_mvcc_delete_total`.
pub static DELETE: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_mvcc_delete_total",
        "Total number of deletes seen by this member.",
    )
});
/// `etcd_mvcc_txn_total`.
pub static TXN: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_mvcc_txn_total",
        "Total number of txns seen by this member.",
    )
});
/// `etcd_debugging_mvcc_total_put_size_in_bytes`.
pub static TOTAL_PUT_SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_debugging_mvcc_total_put_size_in_bytes",
        "The total size of put kv pairs seen by this member.",
    )
});
/// `etcd_debugging_mvcc_keys_total`.
pub static KEYS: LazyLock<IntGauge> =
    LazyLock::new(|| gauge("etcd_debugging_mvcc_keys_total", "Total number of keys."));
/// `etcd_debugging_mvcc_current_revision`.
pub static CURRENT_REVISION: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_debugging_mvcc_current_revision",
        "The current revision of store.",
    )
});
/// `etcd_debugging_mvcc_compact_revision`.
pub static COMPACT_REVISION: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_debugging_mvcc_compact_revision",
        "The revision of the last compaction in store.",
    )
});
/// `etcd_debugging_mvcc_watcher_total`.
pub static WATCHERS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_debugging_mvcc_watcher_total",
        "Total number of watchers.",
    )
});
/// `etcd_debugging_mvcc_watch_stream_total`.
pub static WATCH_STREAMS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_debugging_mvcc_watch_stream_total",
        "Total number of watch streams.",
    )
});
/// `etcd_debugging_mvcc_slow_watcher_total`.
pub static SLOW_WATCHERS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_debugging_mvcc_slow_watcher_total",
        "Total number of unsynced slow watchers.",
    )
});
/// `etcd_debugging_mvcc_events_total`.
pub static EVENTS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_debugging_mvcc_events_total",
        "Total number of events sent by this member.",
    )
});
/// `etcd_debugging_mvcc_pending_events_total`.
pub static PENDING_EVENTS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_debugging_mvcc_pending_events_total",
        "Total number of pending events to be sent.",
    )
});
/// `etcd_debugging_mvcc_db_compaction_keys_total`.
pub static COMPACTION_KEYS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_debugging_mvcc_db_compaction_keys_total",
        "Total number of db keys compacted.",
    )
});
/// `etcd_debugging_mvcc_db_compaction_last`.
pub static COMPACTION_LAST: LazyLock<Gauge> = LazyLock::new(|| {
    float_gauge(
        "etcd_debugging_mvcc_db_compaction_last",
        "The unix time of the last db compaction. Resets to 0 on start.",
    )
});
/// `etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds`.
pub static COMPACTION_PAUSE: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
        "Bucketed histogram of db compaction pause duration.",
        exponential(1.0, 2.0, 13),
    )
});
/// `etcd_debugging_mvcc_db_compaction_total_duration_milliseconds`.
pub static COMPACTION_TOTAL: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
        "Bucketed histogram of db compaction total duration.",
        exponential(100.0, 2.0, 14),
    )
});
/// `etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds`.
pub static INDEX_COMPACTION_PAUSE: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
        "Bucketed histogram of index compaction pause duration.",
        exponential(0.5, 2.0, 14),
    )
});
/// `etcd_mvcc_hash_duration_seconds`.
pub static HASH: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_mvcc_hash_duration_seconds",
        "The latency distribution of storage hash operation.",
        exponential(0.01, 2.0, 15),
    )
});
/// `etcd_mvcc_hash_rev_duration_seconds`.
pub static HASH_REV: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_mvcc_hash_rev_duration_seconds",
        "The latency distribution of storage hash by revision operation.",
        exponential(0.01, 2.0, 15),
    )
});

pub(super) fn register(r: &Registry) {
    add(r, DB_TOTAL_SIZE.clone());
    add(r, DB_TOTAL_SIZE_IN_USE.clone());
    add(r, PUT.clone());
    add(r, RANGE.clone());
    add(r, DEBUGGING_RANGE.clone());
    add(r, DELETE.clone());
    add(r, TXN.clone());
    add(r, TOTAL_PUT_SIZE.clone());
    add(r, KEYS.clone());
    add(r, CURRENT_REVISION.clone());
    add(r, COMPACT_REVISION.clone());
    add(r, WATCHERS.clone());
    add(r, WATCH_STREAMS.clone());
    add(r, SLOW_WATCHERS.clone());
    add(r, EVENTS.clone());
    add(r, PENDING_EVENTS.clone());
    add(r, COMPACTION_KEYS.clone());
    add(r, COMPACTION_LAST.clone());
    add(r, COMPACTION_PAUSE.clone());
    add(r, COMPACTION_TOTAL.clone());
    add(r, INDEX_COMPACTION_PAUSE.clone());
    add(r, HASH.clone());
    add(r, HASH_REV.clone());
}

/// The key-value state sampled at a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// The database size the quota is checked against (what `endpoint status` reports).
    pub db_size: u64,
    /// The part of it in use (kvd's storage reclaims space itself: the same number).
    pub db_size_in_use: u64,
    /// Live keys.
    pub keys: u64,
    /// The current revision.
    pub revision: i64,
    /// The last compaction's revision (etcd reports -1 before the first one).
    pub compact_revision: i64,
    /// Watchers registered.
    pub watchers: u64,
    /// Watchers behind the current revision.
    pub slow_watchers: u64,
}

pub(super) fn record(s: &Sample) {
    #[allow(clippy::cast_precision_loss)]
    {
        DB_TOTAL_SIZE.set(s.db_size as f64);
        DB_TOTAL_SIZE_IN_USE.set(s.db_size_in_use as f64);
    }
    KEYS.set(i64::try_from(s.keys).unwrap_or(i64::MAX));
    CURRENT_REVISION.set(s.revision);
    COMPACT_REVISION.set(if s.compact_revision == 0 {
        -1
    } else {
        s.compact_revision
    });
    WATCHERS.set(i64::try_from(s.watchers).unwrap_or(i64::MAX));
    SLOW_WATCHERS.set(i64::try_from(s.slow_watchers).unwrap_or(i64::MAX));
}

/// A range served.
pub fn range() {
    RANGE.inc();
    DEBUGGING_RANGE.inc();
}

/// A put applied, of `key` and `value` bytes.
pub fn put(key: usize, value: usize) {
    PUT.inc();
    TOTAL_PUT_SIZE.add(i64::try_from(key + value).unwrap_or(i64::MAX));
}

/// A delete-range applied.
pub fn delete() {
    DELETE.inc();
}

/// A transaction of `operations` reads and writes (compares included) ran.
pub fn txn(operations: usize) {
    if operations > 1 {
        TXN.inc();
    }
}

/// `events` events were queued for a watch stream (counted as sent, and pending until the
/// stream takes them: [`events_taken`]).
pub fn events_queued(events: usize) {
    EVENTS.inc_by(events as u64);
    PENDING_EVENTS.add(i64::try_from(events).unwrap_or(i64::MAX));
}

/// A watch stream took `events` queued events (to send them, or to drop them as it ends).
pub fn events_taken(events: usize) {
    PENDING_EVENTS.sub(i64::try_from(events).unwrap_or(i64::MAX));
}

/// A watch stream opened; the gauge goes down again when the guard is dropped.
#[must_use = "the stream is counted until the guard is dropped"]
pub struct WatchStream(());

/// Counts an open watch stream.
pub fn watch_stream() -> WatchStream {
    WATCH_STREAMS.inc();
    WatchStream(())
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        WATCH_STREAMS.dec();
    }
}

/// Measures one compaction of the history; `finish` records it.
#[must_use = "call finish with the number of removed records"]
pub struct Compaction(Instant);

/// Starts measuring a compaction.
pub fn compaction() -> Compaction {
    Compaction(Instant::now())
}

impl Compaction {
    /// Records the compaction that removed `removed` records. kvd compacts the index and the
    /// records in one step while applying, so each pause is the whole compaction.
    pub fn finish(self, removed: usize) {
        let ms = self.0.elapsed().as_secs_f64() * 1000.0;
        COMPACTION_KEYS.inc_by(removed as u64);
        COMPACTION_PAUSE.observe(ms);
        INDEX_COMPACTION_PAUSE.observe(ms);
        COMPACTION_TOTAL.observe(ms);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64().floor());
        COMPACTION_LAST.set(now);
    }
}

/// Times a `Hash` (whole store) or `HashKV` (up to a revision) computation.
pub fn hash_timer(by_revision: bool) -> super::Timer {
    super::Timer::start(if by_revision { &HASH_REV } else { &HASH })
}
