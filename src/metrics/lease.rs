//! `etcd_debugging_lease_*` and `etcd_debugging_server_lease_expired_total`: leases granted,
//! renewed, revoked and expired, and the TTLs asked for.

use std::sync::LazyLock;

use prometheus::{Histogram, IntCounter, Registry};

use super::{add, counter, exponential, histogram};

/// `etcd_debugging_lease_granted_total`.
pub static GRANTED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_debugging_lease_granted_total",
        "The total number of granted leases.",
    )
});
/// `etcd_debugging_lease_renewed_total`.
pub static RENEWED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_debugging_lease_renewed_total",
        "The number of renewed leases seen by the leader.",
    )
});
/// `etcd_debugging_lease_revoked_total`.
pub static REVOKED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_debugging_lease_revoked_total",
        "The total number of revoked leases.",
    )
});
/// `etcd_debugging_lease_ttl_total`.
pub static TTL: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "etcd_debugging_lease_ttl_total",
        "Bucketed histogram of lease TTLs.",
        exponential(1.0, 2.0, 24),
    )
});
/// `etcd_debugging_server_lease_expired_total`.
pub static EXPIRED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "etcd_debugging_server_lease_expired_total",
        "The total number of expired leases.",
    )
});

pub(super) fn register(r: &Registry) {
    add(r, GRANTED.clone());
    add(r, RENEWED.clone());
    add(r, REVOKED.clone());
    add(r, TTL.clone());
    add(r, EXPIRED.clone());
}

/// A lease of `ttl` seconds was granted.
pub fn granted(ttl: i64) {
    GRANTED.inc();
    #[allow(clippy::cast_precision_loss)]
    TTL.observe(ttl as f64);
}
