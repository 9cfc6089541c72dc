//! Point-in-time images of a member's state in etcd's snapshot format (a bbolt database with
//! etcd's buckets), both ways: export for the Maintenance Snapshot stream and for members that
//! are behind; import when a member installs a snapshot or a data dir is restored from one.

use crate::apply::{
    read_applied_index, write_applied_index, write_snapshot_meta, Alarms, Persisted, SharedState,
};
use crate::cluster::{Member, Membership};
use crate::etcd_snapshot::{
    member_json, ConfState, EtcdBackend, KeyRecord, Lease, Revision as EtcdRevision,
};
use crate::mvcc::{MvccStore, Revision};
use crate::storage::{Engine, StateBatch, StorageError};

fn invalid(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

/// The state as etcd's backend plus the applied index it corresponds to, read under the MVCC
/// lock so that it is one consistent point in time (apply holds the lock while it writes).
///
/// # Errors
/// Storage failure.
pub fn export(
    state: &SharedState,
    engine: &Engine,
    term: u64,
) -> Result<(u64, EtcdBackend), StorageError> {
    let store = state.mvcc.read();
    let records = store.records().map_err(|e| invalid("mvcc", e))?;
    let consistent_index = read_applied_index(engine)?;
    let compact = store.compact_rev();
    let leases = {
        let lessor = state.lessor.lock();
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
    let membership = state.membership.read();
    let conf_state = ConfState {
        voters: membership
            .members
            .values()
            .filter(|m| !m.is_learner)
            .map(|m| m.id)
            .collect(),
        learners: membership
            .members
            .values()
            .filter(|m| m.is_learner)
            .map(|m| m.id)
            .collect(),
    };
    let members = membership
        .members
        .values()
        .map(|m| {
            (
                m.id,
                member_json(m.id, &m.name, &m.peer_urls, &m.client_urls, m.is_learner),
            )
        })
        .collect();
    drop(membership);
    let alarms = state.alarms.read().list();
    let auth = state.auth.read().export();
    drop(store);
    let kvs: Vec<KeyRecord> = records
        .into_iter()
        .map(|(rev, tombstone, kv)| KeyRecord {
            revision: EtcdRevision {
                main: rev.main,
                sub: rev.sub,
            },
            tombstone,
            kv,
        })
        .collect();
    let mark = (compact >= 0).then_some(compact);
    Ok((
        consistent_index,
        EtcdBackend {
            kvs,
            consistent_index,
            term: Some(term),
            conf_state: Some(conf_state),
            scheduled_compact_rev: mark,
            finished_compact_rev: mark,
            leases,
            members,
            removed_members: Default::default(),
            cluster_version: Some(crate::version::ETCD_CLUSTER_VERSION.to_string()),
            auth_enabled: auth.enabled,
            auth_revision: auth.revision,
            users: auth.users,
            roles: auth.roles,
            alarms,
        },
    ))
}

/// The bbolt image of the state and its applied index, recording raft `term` as etcd 3.5 does.
///
/// # Errors
/// Storage failure or a state the format cannot hold.
pub fn image(
    state: &SharedState,
    engine: &Engine,
    term: u64,
) -> Result<(u64, Vec<u8>), StorageError> {
    let (index, backend) = export(state, engine, term)?;
    let db = backend.to_bolt().map_err(|e| invalid("snapshot", e))?;
    let bytes = crate::bbolt::write(&db, crate::bbolt::DEFAULT_PAGE_SIZE)
        .map_err(|e| invalid("snapshot", e))?;
    Ok((index, bytes))
}

/// [`image`] of the state a [`crate::apply::Persisted`] handle holds (the Maintenance
/// `Snapshot` answer).
///
/// # Errors
/// As [`image`].
pub fn image_of(
    state: &SharedState,
    persisted: &Persisted,
    term: u64,
) -> Result<(u64, Vec<u8>), StorageError> {
    image(state, persisted.engine(), term)
}

/// Parses etcd's member JSON.
fn parse_member(id: u64, json: &str) -> Result<Member, StorageError> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| invalid("member", e))?;
    let list = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Member {
        id,
        name: v
            .get("name")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string(),
        peer_urls: list("peerURLs"),
        client_urls: list("clientURLs"),
        is_learner: v
            .get("isLearner")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    })
}

/// Reads a snapshot raft delivered (the leader's image, in etcd's bbolt format) into etcd's
/// backend form, ready for [`import`].
///
/// # Errors
/// The image is not a bbolt database kvd can read.
pub fn read_image(data: &[u8]) -> Result<EtcdBackend, StorageError> {
    let db = crate::bbolt::Db::read(data).map_err(|e| invalid("snapshot", e))?;
    EtcdBackend::from_bolt(&db).map_err(|e| invalid("snapshot", e))
}

/// What to do with the membership a snapshot carries.
pub enum MembershipSource {
    /// Keep the snapshot's members (a member installing its leader's snapshot).
    FromSnapshot,
    /// Replace it (restoring a backup into a new cluster, as `etcdctl snapshot restore` does).
    Fresh(Vec<Member>),
}

/// Replaces the whole state tree with `backend`, as of raft index `applied_index`, and makes it
/// durable. The caller reloads the in-memory state afterwards.
///
/// # Errors
/// Storage failure or a record kvd cannot take.
pub fn import(
    engine: &Engine,
    backend: &EtcdBackend,
    applied_index: u64,
    cluster_id: u64,
    members: MembershipSource,
    raft_meta: Option<&[u8]>,
) -> Result<(), StorageError> {
    let records: Vec<(Revision, bool, crate::proto::mvccpb::KeyValue)> = backend
        .kvs
        .iter()
        .map(|r| {
            (
                Revision::new(r.revision.main, r.revision.sub),
                r.tombstone,
                r.kv.clone(),
            )
        })
        .collect();
    // -1 when the snapshot was never compacted, as etcd numbers it.
    let compact = backend
        .finished_compact_rev
        .max(backend.scheduled_compact_rev)
        .unwrap_or(-1);
    let current = backend.revision().max(compact).max(1);
    let mut batch = StateBatch::default();
    MvccStore::import(&mut batch, &records, current, compact);
    for l in &backend.leases {
        crate::lease::persist::record_grant(&mut batch, l.id, l.ttl);
    }
    let mut membership = Membership::default();
    membership.set_cluster_id(cluster_id, &mut batch);
    let members = match members {
        MembershipSource::Fresh(m) => m,
        MembershipSource::FromSnapshot => {
            let mut out = Vec::new();
            for (id, json) in &backend.members {
                out.push(parse_member(*id, json)?);
            }
            out
        }
    };
    for m in members {
        membership.upsert(m, &mut batch);
    }
    let mut alarms = Alarms::default();
    for a in &backend.alarms {
        alarms.activate(*a, &mut batch);
    }
    crate::auth::AuthStore::import(
        &mut batch,
        &crate::auth::store::AuthImage {
            enabled: backend.auth_enabled,
            revision: backend.auth_revision,
            users: backend.users.clone(),
            roles: backend.roles.clone(),
        },
    );
    write_applied_index(&mut batch, applied_index, current);
    if let Some(meta) = raft_meta {
        write_snapshot_meta(&mut batch, meta);
    }
    engine.replace_state(batch)
}
