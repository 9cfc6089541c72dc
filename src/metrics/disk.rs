//! `etcd_disk_*`: how long making the log durable, committing applied state, defragmenting and
//! streaming a snapshot take.
//!
//! kvd's counterparts of etcd's operations: the WAL fsync is the fdatasync of the storage log
//! that makes appended raft entries durable; the backend commit is writing one applied batch
//! of state; defrag and snapshot are the Maintenance RPCs.

use std::sync::LazyLock;

use prometheus::{Histogram, IntGauge, Registry};

use super::{add, exponential, gauge, histogram, Timer};

/// `etcd_disk_wal_fsync_duration_seconds`.
pub static WAL_FSYNC: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        exponential(0.001, 2.0, 14),
    )
});
/// `etcd_disk_backend_commit_duration_seconds`.
pub static BACKEND_COMMIT: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        exponential(0.001, 2.0, 14),
    )
});
/// `etcd_disk_backend_defrag_duration_seconds`.
pub static BACKEND_DEFRAG: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_disk_backend_defrag_duration_seconds",
        "The latency distribution of backend defragmentation.",
        exponential(0.1, 2.0, 13),
    )
});
/// `etcd_disk_backend_snapshot_duration_seconds`.
pub static BACKEND_SNAPSHOT: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_disk_backend_snapshot_duration_seconds",
        "The latency distribution of backend snapshots.",
        exponential(0.01, 2.0, 17),
    )
});
/// `etcd_disk_defrag_inflight`.
pub static DEFRAG_INFLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_disk_defrag_inflight",
        "Whether or not defrag is active on the member. 1 means active, 0 means not.",
    )
});

pub(super) fn register(r: &Registry) {
    add(r, WAL_FSYNC.clone());
    add(r, BACKEND_COMMIT.clone());
    add(r, BACKEND_DEFRAG.clone());
    add(r, BACKEND_SNAPSHOT.clone());
    add(r, DEFRAG_INFLIGHT.clone());
}

/// Times one fsync of the log.
pub fn wal_fsync_timer() -> Timer {
    Timer::start(&WAL_FSYNC)
}

/// Times one write of applied state.
pub fn backend_commit_timer() -> Timer {
    Timer::start(&BACKEND_COMMIT)
}

/// Times one snapshot sent to a client.
pub fn snapshot_timer() -> Timer {
    Timer::start(&BACKEND_SNAPSHOT)
}

/// Times one defragmentation and marks it in flight meanwhile.
#[must_use = "the defragmentation is measured until the guard is dropped"]
pub struct Defrag {
    _timer: Timer,
}

/// Starts a defragmentation.
pub fn defrag() -> Defrag {
    DEFRAG_INFLIGHT.set(1);
    Defrag {
        _timer: Timer::start(&BACKEND_DEFRAG),
    }
}

impl Drop for Defrag {
    fn drop(&mut self) {
        DEFRAG_INFLIGHT.set(0);
    }
}
