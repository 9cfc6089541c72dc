//! `etcd_server_*` and `etcd_cluster_version`: leadership, proposals, reads, health checks and
//! the member's identity, as etcd 3.5 exports them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::{add, counter, counter_vec, float_gauge, gauge, gauge_vec};

/// `etcd_server_has_leader`.
pub static HAS_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
    )
});
/// `etcd_server_is_leader`.
pub static IS_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_server_is_leader",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
    )
});
/// `etcd_server_is_learner`.
pub static IS_LEARNER: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_server_is_learner",
        "Whether or not this member is a learner. 1 if is, 0 otherwise.",
    )
});
/// `etcd_server_leader_changes_seen_total`.
pub static LEADER_CHANGES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_leader_changes_seen_total",
        "The number of leader changes seen.",
    )
});
/// `etcd_server_learner_promote_successes`.
pub static LEARNER_PROMOTE_SUCCESSES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_learner_promote_successes",
        "The total number of successful learner promotions while this member is leader.",
    )
});
/// `etcd_server_proposals_committed_total` (a gauge in etcd: the commit index).
pub static PROPOSALS_COMMITTED: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.",
    )
});
/// `etcd_server_proposals_applied_total` (a gauge in etcd: the applied index).
pub static PROPOSALS_APPLIED: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
    )
});
/// `etcd_server_proposals_pending`.
pub static PROPOSALS_PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_server_proposals_pending",
        "The current number of pending proposals to commit.",
    )
});
/// `etcd_server_proposals_failed_total`.
pub static PROPOSALS_FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_proposals_failed_total",
        "The total number of failed proposals seen.",
    )
});
/// `etcd_server_slow_apply_total`.
pub static SLOW_APPLY: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_slow_apply_total",
        "The total number of slow apply requests (likely overloaded from slow disk).",
    )
});
/// `etcd_server_slow_read_indexes_total`.
pub static SLOW_READ_INDEXES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_slow_read_indexes_total",
        "The total number of pending read indexes not in sync with leader's or timed out read index requests.",
    )
});
/// `etcd_server_read_indexes_failed_total`.
pub static READ_INDEXES_FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_read_indexes_failed_total",
        "The total number of failed read indexes seen.",
    )
});
/// `etcd_server_heartbeat_send_failures_total`.
pub static HEARTBEAT_SEND_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_heartbeat_send_failures_total",
        "The total number of leader heartbeat send failures (likely overloaded from slow disk).",
    )
});
/// `etcd_server_health_success`.
pub static HEALTH_SUCCESS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_health_success",
        "The total number of successful health checks",
    )
});
/// `etcd_server_health_failures`.
pub static HEALTH_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_server_health_failures",
        "The total number of failed health checks",
    )
});
/// `etcd_server_healthcheck{type,name}` (etcd 3.5.11+): the last result of each check of
/// `/livez` and `/readyz`, 1 for success.
pub static HEALTHCHECK: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "etcd_server_healthcheck",
        "The result of each kind of healthcheck.",
        &["type", "name"],
    )
});
/// `etcd_server_healthchecks_total{type,name,status}` (etcd 3.5.11+).
pub static HEALTHCHECKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "etcd_server_healthchecks_total",
        "The total number of each kind of healthcheck.",
        &["type", "name", "status"],
    )
});
/// `etcd_server_id{server_id}`.
pub static ID: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "etcd_server_id",
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
        &["server_id"],
    )
});
/// `etcd_server_version{server_version}`.
pub static VERSION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "etcd_server_version",
        "Which version is running. 1 for 'server_version' label with current version.",
        &["server_version"],
    )
});
/// `etcd_cluster_version{cluster_version}`.
pub static CLUSTER_VERSION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "etcd_cluster_version",
        "Which version is running. 1 for 'cluster_version' label with current cluster version",
        &["cluster_version"],
    )
});
/// `etcd_server_quota_backend_bytes`.
pub static QUOTA_BACKEND_BYTES: LazyLock<Gauge> = LazyLock::new(|| {
    float_gauge(
        "etcd_server_quota_backend_bytes",
        "Current backend storage quota size in bytes.",
    )
});
/// `etcd_server_client_requests_total{type,client_api_version}`.
pub static CLIENT_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "etcd_server_client_requests_total",
        "The total number of client requests per client version.",
        &["type", "client_api_version"],
    )
});
/// `etcd_server_snapshot_apply_in_progress_total`.
pub static SNAPSHOT_APPLY_IN_PROGRESS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "etcd_server_snapshot_apply_in_progress_total",
        "1 if the server is applying the incoming snapshot. 0 if none.",
    )
});
/// `etcd_debugging_auth_revision`.
pub static AUTH_REVISION: LazyLock<Gauge> = LazyLock::new(|| {
    float_gauge(
        "etcd_debugging_auth_revision",
        "The current revision of auth store.",
    )
});

pub(super) fn register(r: &Registry) {
    add(r, HAS_LEADER.clone());
    add(r, IS_LEADER.clone());
    add(r, IS_LEARNER.clone());
    add(r, LEADER_CHANGES.clone());
    add(r, LEARNER_PROMOTE_SUCCESSES.clone());
    add(r, PROPOSALS_COMMITTED.clone());
    add(r, PROPOSALS_APPLIED.clone());
    add(r, PROPOSALS_PENDING.clone());
    add(r, PROPOSALS_FAILED.clone());
    add(r, SLOW_APPLY.clone());
    add(r, SLOW_READ_INDEXES.clone());
    add(r, READ_INDEXES_FAILED.clone());
    add(r, HEARTBEAT_SEND_FAILURES.clone());
    add(r, HEALTH_SUCCESS.clone());
    add(r, HEALTH_FAILURES.clone());
    add(r, HEALTHCHECK.clone());
    add(r, HEALTHCHECKS.clone());
    add(r, ID.clone());
    add(r, VERSION.clone());
    add(r, CLUSTER_VERSION.clone());
    add(r, QUOTA_BACKEND_BYTES.clone());
    add(r, CLIENT_REQUESTS.clone());
    add(r, SNAPSHOT_APPLY_IN_PROGRESS.clone());
    add(r, AUTH_REVISION.clone());
}

/// The state `/metrics` reports, read from the member when it is scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// This member's ID.
    pub member_id: u64,
    /// The leader's ID (0 = none).
    pub leader: u64,
    /// True when this member is a learner.
    pub is_learner: bool,
    /// raft's commit index.
    pub commit_index: u64,
    /// The applied index.
    pub applied_index: u64,
    /// Proposals waiting for their outcome.
    pub proposals_pending: usize,
    /// The backend quota in bytes (`u64::MAX`: none).
    pub quota_bytes: u64,
    /// The version this member reports (`etcd_server_version`).
    pub server_version: &'static str,
    /// The cluster version (`etcd_cluster_version`, major.minor).
    pub cluster_version: &'static str,
    /// The auth store's revision.
    pub auth_revision: u64,
    /// The key-value state.
    pub mvcc: super::mvcc::Sample,
}

/// Sets every sampled gauge from `s` (called right before a scrape is rendered).
pub fn record(s: &Sample) {
    HAS_LEADER.set(i64::from(s.leader != 0));
    IS_LEADER.set(i64::from(s.leader != 0 && s.leader == s.member_id));
    IS_LEARNER.set(i64::from(s.is_learner));
    PROPOSALS_COMMITTED.set(clamp(s.commit_index));
    PROPOSALS_APPLIED.set(clamp(s.applied_index));
    PROPOSALS_PENDING.set(i64::try_from(s.proposals_pending).unwrap_or(i64::MAX));
    // etcd reports no quota (a negative --quota-backend-bytes) as the quota it enforces, 0.
    #[allow(clippy::cast_precision_loss)]
    QUOTA_BACKEND_BYTES.set(if s.quota_bytes == u64::MAX {
        0.0
    } else {
        s.quota_bytes as f64
    });
    ID.reset();
    ID.with_label_values(&[format!("{:x}", s.member_id)]).set(1);
    VERSION.reset();
    VERSION.with_label_values(&[s.server_version]).set(1);
    CLUSTER_VERSION.reset();
    CLUSTER_VERSION
        .with_label_values(&[s.cluster_version])
        .set(1);
    #[allow(clippy::cast_precision_loss)]
    AUTH_REVISION.set(s.auth_revision as f64);
    super::mvcc::record(&s.mvcc);
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Counts leader changes as etcd does: every time a leader is known that was not the leader
/// seen before. Fed with the (leader, term) pairs raft publishes; a new term with a known
/// leader is a new leadership even when a quick change back in between was not seen.
#[derive(Debug, Default)]
pub struct LeaderChanges {
    last: Option<(u64, u64)>,
}

impl LeaderChanges {
    /// Records raft's current (leader, term); returns true when it counted a change.
    pub fn observe(&mut self, leader: u64, term: u64) -> bool {
        if leader == 0 || self.last == Some((leader, term)) {
            return false;
        }
        let changed = self.last.is_none_or(|(l, t)| l != leader || t != term);
        self.last = Some((leader, term));
        if changed {
            LEADER_CHANGES.inc();
        }
        changed
    }
}

/// etcd's `--experimental-warning-apply-duration` (100 ms): an apply taking longer counts in
/// `etcd_server_slow_apply_total`.
static SLOW_APPLY_NANOS: AtomicU64 = AtomicU64::new(100_000_000);

/// Sets the duration above which an apply counts as slow.
pub fn set_slow_apply_threshold(d: Duration) {
    SLOW_APPLY_NANOS.store(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Times one apply; counts it as slow when it took longer than the threshold.
#[must_use = "the apply is measured until the guard is dropped"]
pub struct ApplyTimer(Instant);

/// Starts timing an apply (a one-line hook at the start of the applied entry's scope).
pub fn apply_timer() -> ApplyTimer {
    ApplyTimer(Instant::now())
}

impl Drop for ApplyTimer {
    fn drop(&mut self) {
        let took = u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if took > SLOW_APPLY_NANOS.load(Ordering::Relaxed) {
            SLOW_APPLY.inc();
        }
    }
}

/// Marks a snapshot from the leader as being installed while it lives.
#[must_use = "the gauge is reset when the guard is dropped"]
pub struct SnapshotApply(());

/// Sets `etcd_server_snapshot_apply_in_progress_total` to 1 until the guard is dropped.
pub fn snapshot_apply() -> SnapshotApply {
    SNAPSHOT_APPLY_IN_PROGRESS.set(1);
    SnapshotApply(())
}

impl Drop for SnapshotApply {
    fn drop(&mut self) {
        SNAPSHOT_APPLY_IN_PROGRESS.set(0);
    }
}

/// The outcome of a linearizable read barrier, counted as etcd counts its read indexes:
/// any failure is a failed read index; one that timed out is a slow one too.
pub fn read_index_outcome(failed: bool, timed_out: bool) {
    if failed {
        READ_INDEXES_FAILED.inc();
        if timed_out {
            SLOW_READ_INDEXES.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_change_is_a_new_leader_or_a_new_term() {
        let mut c = LeaderChanges::default();
        assert!(!c.observe(0, 1));
        assert!(c.observe(7, 2));
        assert!(!c.observe(7, 2));
        assert!(!c.observe(0, 3));
        assert!(c.observe(7, 4));
        assert!(c.observe(9, 4));
    }
}
