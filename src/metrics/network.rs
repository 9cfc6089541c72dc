//! `etcd_network_*`: traffic to and from other members (bytes, failed sends, round-trip
//! times, connected peers) and the bytes of gRPC messages exchanged with clients.
//!
//! Member IDs label the peer series in etcd's format (lower-case hex, `To`/`From`), and the
//! `Local`/`Remote` pair labels the connection gauges.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Registry};

use super::{add, counter, counter_vec, exponential, gauge_vec, histogram_vec};

/// `etcd_network_peer_sent_bytes_total{To}`.
pub static PEER_SENT_BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "etcd_network_peer_sent_bytes_total",
        "The total number of bytes sent to peers.",
        &["To"],
    )
});
/// `etcd_network_peer_received_bytes_total{From}`.
pub static PEER_RECEIVED_BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "etcd_network_peer_received_bytes_total",
        "The total number of bytes received from peers.",
        &["From"],
    )
});
/// `etcd_network_peer_sent_failures_total{To}`.
pub static PEER_SENT_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "etcd_network_peer_sent_failures_total",
        "The total number of send failures from peers.",
        &["To"],
    )
});
/// `etcd_network_peer_round_trip_time_seconds{To}`.
pub static PEER_RTT: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "etcd_network_peer_round_trip_time_seconds",
        "Round-Trip-Time histogram between peers",
        &["To"],
        exponential(0.0001, 2.0, 16),
    )
});
/// `etcd_network_active_peers{Local,Remote}`.
pub static ACTIVE_PEERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "etcd_network_active_peers",
        "The current number of active peer connections.",
        &["Local", "Remote"],
    )
});
/// `etcd_network_disconnected_peers_total{Local,Remote}`.
pub static DISCONNECTED_PEERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "etcd_network_disconnected_peers_total",
        "The total number of disconnected peers.",
        &["Local", "Remote"],
    )
});
/// `etcd_network_client_grpc_sent_bytes_total`.
pub static CLIENT_GRPC_SENT_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_network_client_grpc_sent_bytes_total",
        "The total number of bytes sent to grpc clients.",
    )
});
/// `etcd_network_client_grpc_received_bytes_total`.
pub static CLIENT_GRPC_RECEIVED_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_network_client_grpc_received_bytes_total",
        "The total number of bytes received from grpc clients.",
    )
});

pub(super) fn register(r: &Registry) {
    add(r, PEER_SENT_BYTES.clone());
    add(r, PEER_RECEIVED_BYTES.clone());
    add(r, PEER_SENT_FAILURES.clone());
    add(r, PEER_RTT.clone());
    add(r, ACTIVE_PEERS.clone());
    add(r, DISCONNECTED_PEERS.clone());
    add(r, CLIENT_GRPC_SENT_BYTES.clone());
    add(r, CLIENT_GRPC_RECEIVED_BYTES.clone());
}

fn id(member: u64) -> String {
    format!("{member:x}")
}

/// `bytes` of a raft message went out to member `to`.
pub fn peer_sent(to: u64, bytes: usize) {
    PEER_SENT_BYTES
        .with_label_values(&[id(to)])
        .inc_by(bytes as u64);
}

/// `bytes` of a raft message came in from member `from`.
pub fn peer_received(from: u64, bytes: usize) {
    PEER_RECEIVED_BYTES
        .with_label_values(&[id(from)])
        .inc_by(bytes as u64);
}

/// `messages` raft messages for member `to` could not be sent (queue full, peer unreachable).
pub fn peer_send_failed(to: u64, messages: usize) {
    PEER_SENT_FAILURES
        .with_label_values(&[id(to)])
        .inc_by(messages as u64);
}

/// One probe of member `to` took `rtt`.
pub fn peer_round_trip(to: u64, rtt: Duration) {
    PEER_RTT
        .with_label_values(&[id(to)])
        .observe(rtt.as_secs_f64());
}

/// The stream to member `remote` is up (`true`) or went down (`false`).
pub fn peer_connection(local: u64, remote: u64, up: bool) {
    let labels = [id(local), id(remote)];
    ACTIVE_PEERS.with_label_values(&labels).set(i64::from(up));
    if !up {
        DISCONNECTED_PEERS.with_label_values(&labels).inc();
    }
}

/// The leader's heartbeat interval, for the late-heartbeat check (etcd's 100 ms default).
static HEARTBEAT_NANOS: AtomicU64 = AtomicU64::new(100_000_000);
static LAST_HEARTBEAT: LazyLock<Mutex<HashMap<u64, Instant>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Sets the heartbeat interval the leader's heartbeats are expected at.
pub fn set_heartbeat_interval(d: Duration) {
    HEARTBEAT_NANOS.store(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// A heartbeat to member `to` is being sent; `queued` is false when it could not even be
/// queued. As etcd: a heartbeat that goes out more than twice the heartbeat interval after
/// the previous one (the leader was too busy, likely a slow disk), or one that is dropped,
/// counts in `etcd_server_heartbeat_send_failures_total`.
pub fn heartbeat(to: u64, queued: bool) {
    let now = Instant::now();
    let late = LAST_HEARTBEAT.lock().insert(to, now).is_some_and(|prev| {
        let gap = u64::try_from(now.duration_since(prev).as_nanos()).unwrap_or(u64::MAX);
        gap > 2 * HEARTBEAT_NANOS.load(Ordering::Relaxed)
    });
    if late || !queued {
        super::server::HEARTBEAT_SEND_FAILURES.inc();
    }
}

/// Forgets heartbeat timing (this member stopped leading): the first heartbeat of a new term
/// is not late.
pub fn heartbeats_reset() {
    LAST_HEARTBEAT.lock().clear();
}
