//! [`EtcdBackend`] to and from etcd's buckets in a bbolt [`Db`].

use std::collections::BTreeMap;

use prost::Message;

use super::keys::{bucket_names as names, Revision, REV_KEY_LEN};
use super::{EtcdBackend, KeyRecord, Lease, SnapshotError};
use crate::bbolt::{Bucket, Db};
use crate::proto::authpb::{Role, User};
use crate::proto::etcdserverpb::AlarmMember;
use crate::proto::mvccpb::KeyValue;

impl EtcdBackend {
    /// Reads etcd's buckets out of a bbolt database.
    ///
    /// The `key` and `meta` buckets must be present (every etcd backend has them); the other
    /// buckets count as empty when absent. etcd 3.5's `meta` keys `term` and `confState` are
    /// read when present; other buckets and keys are ignored.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::MissingBucket`] when `key` or `meta` is missing;
    /// [`SnapshotError::BadRecord`] for a record that does not decode as etcd writes it.
    pub fn from_bolt(db: &Db) -> Result<EtcdBackend, SnapshotError> {
        let required = |name: &[u8]| {
            db.bucket(name)
                .ok_or_else(|| SnapshotError::MissingBucket(text(name)))
        };
        let empty = Bucket::new();
        let optional = |name: &[u8]| db.bucket(name).unwrap_or(&empty);

        let mut out = EtcdBackend::default();

        let key = required(names::KEY)?;
        out.kvs.reserve(key.len());
        for (k, v) in key.values() {
            let (revision, tombstone) =
                Revision::from_record_key(k).map_err(|reason| bad(names::KEY, k, reason))?;
            let kv = KeyValue::decode(v)
                .map_err(|e| bad(names::KEY, k, format!("not an mvccpb.KeyValue: {e}")))?;
            out.kvs.push(KeyRecord {
                revision,
                tombstone,
                kv,
            });
        }

        let meta = required(names::META)?;
        if let Some(v) = meta.get(names::CONSISTENT_INDEX) {
            out.consistent_index = u64_be(v).ok_or_else(|| {
                bad(
                    names::META,
                    names::CONSISTENT_INDEX,
                    format!("{} bytes, expected 8", v.len()),
                )
            })?;
        }
        if let Some(v) = meta.get(names::TERM) {
            out.term = Some(u64_be(v).ok_or_else(|| {
                bad(
                    names::META,
                    names::TERM,
                    format!("{} bytes, expected 8", v.len()),
                )
            })?);
        }
        if let Some(v) = meta.get(names::CONF_STATE) {
            out.conf_state = Some(super::ConfState::from_json(v).ok_or_else(|| {
                bad(
                    names::META,
                    names::CONF_STATE,
                    "not raft's ConfState JSON".into(),
                )
            })?);
        }
        out.scheduled_compact_rev = compact_rev(meta, names::SCHEDULED_COMPACT_REV)?;
        out.finished_compact_rev = compact_rev(meta, names::FINISHED_COMPACT_REV)?;

        for (k, v) in optional(names::LEASE).values() {
            let lease = Lease::decode(v)
                .map_err(|e| bad(names::LEASE, k, format!("not a leasepb.Lease: {e}")))?;
            let id =
                u64_be(k).ok_or_else(|| bad(names::LEASE, k, "lease key is not 8 bytes".into()))?;
            if id.to_be_bytes() != lease.id.to_be_bytes() {
                return Err(bad(
                    names::LEASE,
                    k,
                    format!(
                        "key names lease {id:016x}, value is lease {:016x}",
                        lease.id
                    ),
                ));
            }
            out.leases.push(lease);
        }

        for (k, v) in optional(names::MEMBERS).values() {
            let id = member_id(names::MEMBERS, k)?;
            let json = String::from_utf8(v.to_vec())
                .map_err(|_| bad(names::MEMBERS, k, "member JSON is not UTF-8".into()))?;
            out.members.insert(id, json);
        }
        for (k, _) in optional(names::MEMBERS_REMOVED).values() {
            out.removed_members
                .insert(member_id(names::MEMBERS_REMOVED, k)?);
        }

        if let Some(v) = optional(names::CLUSTER).get(names::CLUSTER_VERSION) {
            let version = String::from_utf8(v.to_vec()).map_err(|_| {
                bad(
                    names::CLUSTER,
                    names::CLUSTER_VERSION,
                    "not UTF-8 text".into(),
                )
            })?;
            out.cluster_version = Some(version);
        }

        let auth = optional(names::AUTH);
        // etcd counts auth as enabled only when the flag is exactly the byte 1.
        out.auth_enabled = auth.get(names::AUTH_ENABLED).map(|v| v == [1]);
        if let Some(v) = auth.get(names::AUTH_REVISION) {
            out.auth_revision = u64_be(v).ok_or_else(|| {
                bad(
                    names::AUTH,
                    names::AUTH_REVISION,
                    format!("{} bytes, expected 8", v.len()),
                )
            })?;
        }
        for (k, v) in optional(names::AUTH_USERS).values() {
            let user = User::decode(v)
                .map_err(|e| bad(names::AUTH_USERS, k, format!("not an authpb.User: {e}")))?;
            if user.name != k {
                return Err(bad(
                    names::AUTH_USERS,
                    k,
                    format!("value is user {}", text(&user.name)),
                ));
            }
            out.users.push(user);
        }
        for (k, v) in optional(names::AUTH_ROLES).values() {
            let role = Role::decode(v)
                .map_err(|e| bad(names::AUTH_ROLES, k, format!("not an authpb.Role: {e}")))?;
            if role.name != k {
                return Err(bad(
                    names::AUTH_ROLES,
                    k,
                    format!("value is role {}", text(&role.name)),
                ));
            }
            out.roles.push(role);
        }

        for (k, _) in optional(names::ALARM).values() {
            let alarm = AlarmMember::decode(k).map_err(|e| {
                bad(
                    names::ALARM,
                    k,
                    format!("not an etcdserverpb.AlarmMember: {e}"),
                )
            })?;
            out.alarms.push(alarm);
        }

        Ok(out)
    }

    /// Lays the backend out in etcd's buckets. All ten buckets are created, as etcd creates them;
    /// optional keys (`authEnabled`, the compaction marks, `clusterVersion`) are written only when
    /// set.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Invalid`] when two records share a revision, or two leases, users or
    /// roles share an id or name, or a user or role has an empty name.
    pub fn to_bolt(&self) -> Result<Db, SnapshotError> {
        let mut db = Db::new();
        for name in names::ALL {
            db.bucket_mut(name);
        }

        let key = db.bucket_mut(names::KEY);
        let mut seen = BTreeMap::new();
        for r in &self.kvs {
            if let Some(other) = seen.insert(r.revision, r.tombstone) {
                return Err(SnapshotError::Invalid(format!(
                    "two records at revision {}_{} (tombstone: {other} and {})",
                    r.revision.main, r.revision.sub, r.tombstone
                )));
            }
            key.put(r.revision.to_record_key(r.tombstone), r.kv.encode_to_vec());
        }

        let meta = db.bucket_mut(names::META);
        meta.put(names::CONSISTENT_INDEX, self.consistent_index.to_be_bytes());
        if let Some(term) = self.term {
            meta.put(names::TERM, term.to_be_bytes());
        }
        if let Some(cs) = &self.conf_state {
            meta.put(names::CONF_STATE, cs.to_json().as_bytes());
        }
        for (name, rev) in [
            (names::SCHEDULED_COMPACT_REV, self.scheduled_compact_rev),
            (names::FINISHED_COMPACT_REV, self.finished_compact_rev),
        ] {
            if let Some(main) = rev {
                meta.put(name, Revision { main, sub: 0 }.to_key());
            }
        }

        let lease = db.bucket_mut(names::LEASE);
        for l in &self.leases {
            unique(
                lease,
                l.id.to_be_bytes().to_vec(),
                l.encode_to_vec(),
                "lease id",
            )?;
        }

        let members = db.bucket_mut(names::MEMBERS);
        for (id, json) in &self.members {
            members.put(format!("{id:x}"), json.as_bytes());
        }
        let removed = db.bucket_mut(names::MEMBERS_REMOVED);
        for id in &self.removed_members {
            removed.put(format!("{id:x}"), names::REMOVED);
        }

        if let Some(v) = &self.cluster_version {
            db.bucket_mut(names::CLUSTER)
                .put(names::CLUSTER_VERSION, v.as_bytes());
        }

        let auth = db.bucket_mut(names::AUTH);
        if let Some(enabled) = self.auth_enabled {
            auth.put(names::AUTH_ENABLED, [u8::from(enabled)]);
        }
        auth.put(names::AUTH_REVISION, self.auth_revision.to_be_bytes());
        let users = db.bucket_mut(names::AUTH_USERS);
        for u in &self.users {
            unique(users, u.name.clone(), u.encode_to_vec(), "user name")?;
        }
        let roles = db.bucket_mut(names::AUTH_ROLES);
        for r in &self.roles {
            unique(roles, r.name.clone(), r.encode_to_vec(), "role name")?;
        }

        let alarm = db.bucket_mut(names::ALARM);
        for a in &self.alarms {
            alarm.put(a.encode_to_vec(), Vec::new());
        }
        Ok(db)
    }
}

/// Puts `key` unless it is empty or already present.
fn unique(
    bucket: &mut Bucket,
    key: Vec<u8>,
    value: Vec<u8>,
    what: &str,
) -> Result<(), SnapshotError> {
    if key.is_empty() {
        return Err(SnapshotError::Invalid(format!("empty {what}")));
    }
    if bucket.entries.contains_key(&key) {
        return Err(SnapshotError::Invalid(format!(
            "{what} {} appears twice",
            text(&key)
        )));
    }
    bucket.put(key, value);
    Ok(())
}

/// A compaction mark: a revision key whose main revision is the compaction revision.
fn compact_rev(meta: &Bucket, name: &[u8]) -> Result<Option<i64>, SnapshotError> {
    meta.get(name)
        .map(|v| {
            if v.len() < REV_KEY_LEN {
                return Err(bad(
                    names::META,
                    name,
                    format!("{} bytes, expected a 17-byte revision", v.len()),
                ));
            }
            Ok(Revision::from_key_prefix(v).main)
        })
        .transpose()
}

fn member_id(bucket: &[u8], key: &[u8]) -> Result<u64, SnapshotError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| bad(bucket, key, "member key is not a hex id".into()))
}

fn u64_be(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

fn bad(bucket: &[u8], key: &[u8], reason: String) -> SnapshotError {
    SnapshotError::BadRecord {
        bucket: text(bucket),
        key: text(key),
        reason,
    }
}

/// Bytes for messages: as text when printable, else as hex.
pub(super) fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("0x{hex}")
        }
    }
}
