//! Helpers for scenarios over kvd members: writes through a member's real API functions (so
//! through `Core::propose` and apply), serializable reads of its MVCC store, state hashes and
//! watchers registered on its watch hub.

use std::time::Duration;

use tokio::sync::mpsc;

use super::cluster::{within, SimCluster, WAIT};
use crate::api::status::ApiError;
use crate::mvcc::Event;
use crate::proto::etcdserverpb::{
    CompactionRequest, LeaseGrantRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse, PutRequest, PutResponse,
};
use crate::proto::kvdpb::command::Op;
use crate::proto::mvccpb::KeyValue;
use crate::watch::{WatchBatch, WatchSpec};

/// Puts `key` = `value` (attached to `lease`, 0 = none) through member `id`.
///
/// # Errors
/// What the API answers.
pub async fn try_put(
    c: &SimCluster,
    id: u64,
    key: &str,
    value: &str,
    lease: i64,
) -> Result<PutResponse, ApiError> {
    let p = PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        lease,
        ..Default::default()
    };
    within(crate::api::kv::put(c.core(id), p)).await
}

/// Puts `key` = `value` through member `id`; returns the revision of the put.
///
/// # Panics
/// If the put fails.
pub async fn put(c: &SimCluster, id: u64, key: &str, value: &str) -> i64 {
    revision_of(try_put(c, id, key, value, 0).await.expect("put"))
}

/// The revision a put response carries.
pub fn revision_of(r: PutResponse) -> i64 {
    r.header.map_or(0, |h| h.revision)
}

/// `key` as member `id` has it now (a serializable read of its store).
pub fn get(c: &SimCluster, id: u64, key: &str) -> Option<KeyValue> {
    let store = c.core(id).state.mvcc.read();
    let (kvs, _) = store
        .range_at(key.as_bytes(), b"", 0, 0, false)
        .expect("range");
    kvs.into_iter().next()
}

/// Member `id`'s current revision.
pub fn rev(c: &SimCluster, id: u64) -> i64 {
    c.core(id).state.mvcc.read().current_rev()
}

/// Member `id`'s current revision, compact revision and the hash of its key-value history up
/// to the current revision (etcd's `HashKV`).
pub fn state(c: &SimCluster, id: u64) -> (i64, i64, u32) {
    let store = c.core(id).state.mvcc.read();
    let current = store.current_rev();
    let hash = store.hash_kv(current).expect("hash");
    (current, store.compact_rev(), hash)
}

/// Waits until every running member applied what the leader committed, then asserts that they
/// all hold the same state; returns it.
///
/// # Panics
/// If the states differ, or after the wait times out.
pub async fn same_state_everywhere(c: &SimCluster) -> (i64, i64, u32) {
    c.wait_converged().await;
    let ids = c.ids();
    let reference = state(c, ids[0]);
    for id in &ids {
        assert_eq!(
            state(c, *id),
            reference,
            "member {id} differs from {}",
            ids[0]
        );
    }
    reference
}

/// Compacts history up to `revision` through member `id`.
///
/// # Panics
/// If the compaction fails.
pub async fn compact(c: &SimCluster, id: u64, revision: i64) {
    within(c.core(id).propose(Op::Compaction(CompactionRequest {
        revision,
        physical: false,
    })))
    .await
    .expect("compaction");
}

/// Grants a lease of `ttl` seconds through member `id`; returns its ID.
///
/// # Panics
/// If the grant fails.
pub async fn grant(c: &SimCluster, id: u64, ttl: i64) -> i64 {
    within(crate::api::lease::grant(
        c.core(id),
        LeaseGrantRequest { ttl, id: 0 },
    ))
    .await
    .expect("grant")
    .id
}

/// Revokes lease `lease` through member `id`.
///
/// # Errors
/// What the API answers.
pub async fn revoke(c: &SimCluster, id: u64, lease: i64) -> Result<(), ApiError> {
    within(crate::api::lease::revoke(
        c.core(id),
        LeaseRevokeRequest { id: lease },
    ))
    .await
    .map(|_| ())
}

/// The lease's time to live as member `id` (the leader: followers ask the leader over RPC,
/// which the simulation has not) answers.
///
/// # Panics
/// If the call fails.
pub async fn time_to_live(c: &SimCluster, id: u64, lease: i64) -> LeaseTimeToLiveResponse {
    within(crate::api::lease::time_to_live(
        c.core(id),
        &LeaseTimeToLiveRequest {
            id: lease,
            keys: true,
        },
    ))
    .await
    .expect("time to live")
}

/// True while member `id` holds lease `lease`.
pub fn has_lease(c: &SimCluster, id: u64, lease: i64) -> bool {
    c.core(id).state.lessor.lock().exists(lease)
}

/// A watcher registered on member `id`'s hub for keys in `[key, range_end)` from `start_rev`
/// (0 = from the next revision).
pub fn watch(
    c: &SimCluster,
    id: u64,
    key: &str,
    range_end: &str,
    start_rev: i64,
) -> mpsc::Receiver<WatchBatch> {
    let (tx, rx) = mpsc::channel(1024);
    let spec = WatchSpec {
        key: key.as_bytes().to_vec(),
        range_end: range_end.as_bytes().to_vec(),
        no_put: false,
        no_delete: false,
    };
    c.core(id).state.hub.watch((1, 0), spec, start_rev, tx);
    rx
}

/// Receives watch batches until `n` events arrived (or a batch with a compact revision);
/// returns the events and the compact revision seen (0 = none).
///
/// # Panics
/// After [`WAIT`] without them.
pub async fn events(rx: &mut mpsc::Receiver<WatchBatch>, n: usize) -> (Vec<Event>, i64) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while out.len() < n {
        let batch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} events after {WAIT:?}", out.len()))
            .expect("watch channel open");
        if batch.compact_revision != 0 {
            return (out, batch.compact_revision);
        }
        out.extend(batch.events);
    }
    (out, 0)
}

/// Whatever the watcher has queued now, after letting the cluster run for `settle` (virtual).
pub async fn drain(rx: &mut mpsc::Receiver<WatchBatch>, settle: Duration) -> Vec<Event> {
    tokio::time::sleep(settle).await;
    let mut out = Vec::new();
    while let Ok(b) = rx.try_recv() {
        out.extend(b.events);
    }
    out
}
