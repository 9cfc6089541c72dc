//! Consistent point-in-time images of a member's state in etcd's snapshot format (a bbolt
//! database with etcd's buckets), for the Maintenance Snapshot stream.

use crate::api::{ApiError, Core};
use crate::etcd_snapshot::{member_json, EtcdBackend, KeyRecord, Lease, Revision};

/// The cluster version kvd records in snapshots.
const CLUSTER_VERSION: &str = "3.4.0";

fn storage_failure(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "snapshot: cannot read state");
    ApiError::Corrupt
}

/// The member's state as etcd's backend, read under the MVCC lock so that it is one consistent
/// point in time (apply holds the lock while it writes).
///
/// # Errors
/// Storage failure.
pub fn backend(core: &Core) -> Result<EtcdBackend, ApiError> {
    let store = core.state.mvcc.read();
    let records = store.records().map_err(storage_failure)?;
    let consistent_index =
        crate::apply::read_applied_index(&core.engine).map_err(storage_failure)?;
    let compact = store.compact_rev();
    let leases = {
        let lessor = core.state.lessor.lock();
        lessor
            .ids()
            .into_iter()
            .filter_map(|id| {
                lessor.get(id).map(|l| Lease {
                    id,
                    ttl: l.ttl,
                    remaining_ttl: 0,
                })
            })
            .collect()
    };
    let members = core
        .state
        .membership
        .read()
        .members
        .values()
        .map(|m| {
            (
                m.id,
                member_json(m.id, &m.name, &m.peer_urls, &m.client_urls, m.is_learner),
            )
        })
        .collect();
    let alarms = core.state.alarms.read().list();
    drop(store);
    Ok(EtcdBackend {
        kvs: records
            .into_iter()
            .map(|(rev, tombstone, kv)| KeyRecord {
                revision: Revision {
                    main: rev.main,
                    sub: rev.sub,
                },
                tombstone,
                kv,
            })
            .collect(),
        consistent_index,
        scheduled_compact_rev: (compact > 0).then_some(compact),
        finished_compact_rev: (compact > 0).then_some(compact),
        leases,
        members,
        removed_members: Default::default(),
        cluster_version: Some(CLUSTER_VERSION.to_string()),
        auth_enabled: None,
        auth_revision: 0,
        users: Vec::new(),
        roles: Vec::new(),
        alarms,
    })
}

/// The bbolt database image (without the sha256 trailer, which the stream appends).
///
/// # Errors
/// Storage failure or a state the format cannot hold.
pub fn consistent_image(core: &Core) -> Result<Vec<u8>, ApiError> {
    let backend = backend(core)?;
    let db = backend.to_bolt().map_err(storage_failure)?;
    crate::bbolt::write(&db, crate::bbolt::DEFAULT_PAGE_SIZE).map_err(storage_failure)
}
