//! etcd's backend layout on top of a bbolt file, and etcd's snapshot file around it: what the
//! Maintenance Snapshot stream sends and `etcdctl snapshot save/status/restore` read.
//!
//! This module owns the translation between a typed [`EtcdBackend`] (MVCC revisions, meta marks,
//! leases, members, cluster version, auth, alarms) and etcd 3.4's buckets inside a
//! [`crate::bbolt::Db`]; the snapshot file layer (the bbolt file followed by the sha256 of
//! everything before it); and `etcdctl snapshot status`'s figures and output formats. It uses only
//! `crate::bbolt` and the generated protobuf types in `crate::proto`; it does no I/O.
//!
//! # etcd's layout (3.4), as this module reads and writes it
//!
//! | bucket | key | value |
//! |---|---|---|
//! | `key` | revision: 8-byte big-endian main, `_`, 8-byte big-endian sub (17 bytes), plus a trailing `t` for a tombstone (18 bytes) | `mvccpb.KeyValue` (a tombstone carries only `key`) |
//! | `meta` | `consistent_index` | 8-byte big-endian u64 (the last applied raft index) |
//! | `meta` | `term` (3.5) | 8-byte big-endian u64 (the raft term) |
//! | `meta` | `confState` (3.5) | raft's configuration as JSON: `{"voters":[..],"learners":[..],"auto_leave":false}` (empty lists omitted) |
//! | `meta` | `scheduledCompactRev`, `finishedCompactRev` | a 17-byte revision key with the compaction revision as main, sub 0 |
//! | `lease` | lease id, 8-byte big-endian | `leasepb.Lease` (`ID`, `TTL`, `RemainingTTL`) |
//! | `members` | member id in lowercase hex, unpadded | the member as JSON: `{"id":N,"peerURLs":[..],"isLearner":true,"name":"..","clientURLs":[..]}` (empty fields omitted) |
//! | `members_removed` | member id in hex | `removed` |
//! | `cluster` | `clusterVersion` | the version text, e.g. `3.4.0` |
//! | `auth` | `authEnabled` | one byte, 1 enabled, 0 disabled (absent until auth is first enabled) |
//! | `auth` | `authRevision` | 8-byte big-endian u64 |
//! | `authUsers` / `authRoles` | the user or role name | `authpb.User` / `authpb.Role` |
//! | `alarm` | an encoded `etcdserverpb.AlarmMember` | empty |
//!
//! A snapshot file is that bbolt file followed by 32 bytes: the sha256 of the file. etcd tells a
//! file with a trailer by its size: `size % 512 == 32`.

mod backend;
mod file;
mod keys;
mod member;
mod status;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::bbolt::BoltError;
use crate::proto::authpb::{Role, User};
use crate::proto::etcdserverpb::AlarmMember;
use crate::proto::mvccpb::KeyValue;

pub use file::{
    encode_snapshot_file, parse_snapshot_file, parse_snapshot_file_with, split_trailer,
};
pub use file::{ParseOptions, SHA256_TRAILER_LEN};
pub use keys::{bucket_names, Revision};
pub use member::member_json;
pub use status::{status, SnapshotStatus, StatusFormat, UnsupportedFormat};

/// etcd's `leasepb.Lease`, the value of each entry in the `lease` bucket.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct Lease {
    /// The lease id (`ID`, field 1).
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// The granted TTL in seconds (`TTL`, field 2).
    #[prost(int64, tag = "2")]
    pub ttl: i64,
    /// The remaining TTL from the last checkpoint, 0 when none (`RemainingTTL`, field 3).
    #[prost(int64, tag = "3")]
    pub remaining_ttl: i64,
}

/// raft's configuration as etcd 3.5 records it in `meta`/`confState`: member IDs in ascending
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfState {
    /// The voting members.
    pub voters: Vec<u64>,
    /// The learners.
    pub learners: Vec<u64>,
}

impl ConfState {
    /// etcd's JSON for it (Go's `json.Marshal` of `raftpb.ConfState`).
    pub fn to_json(&self) -> String {
        let list = |ids: &[u64]| {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
        };
        let mut out = String::from("{");
        if !self.voters.is_empty() {
            out.push_str(&format!("\"voters\":[{}],", list(&self.voters)));
        }
        if !self.learners.is_empty() {
            out.push_str(&format!("\"learners\":[{}],", list(&self.learners)));
        }
        out.push_str("\"auto_leave\":false}");
        out
    }

    /// Reads etcd's JSON; `None` when it is not that.
    pub fn from_json(json: &[u8]) -> Option<ConfState> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        let ids = |key: &str| -> Vec<u64> {
            v.get(key)
                .and_then(|a| a.as_array())
                .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
                .unwrap_or_default()
        };
        v.is_object().then(|| ConfState {
            voters: ids("voters"),
            learners: ids("learners"),
        })
    }
}

/// One entry of the `key` bucket: a key's state at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// The revision this record was written at.
    pub revision: Revision,
    /// Whether this records a deletion (the revision key ends in `t`).
    pub tombstone: bool,
    /// The key-value as stored; for a tombstone only `key` is set.
    pub kv: KeyValue,
}

/// The typed content of an etcd backend database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EtcdBackend {
    /// The MVCC history, in revision order.
    pub kvs: Vec<KeyRecord>,
    /// The last applied raft index (`meta`/`consistent_index`).
    pub consistent_index: u64,
    /// The raft term (`meta`/`term`, etcd 3.5), when recorded.
    pub term: Option<u64>,
    /// raft's configuration (`meta`/`confState`, etcd 3.5), when recorded.
    pub conf_state: Option<ConfState>,
    /// The last compaction asked for (`meta`/`scheduledCompactRev`), if any.
    pub scheduled_compact_rev: Option<i64>,
    /// The last compaction completed (`meta`/`finishedCompactRev`), if any.
    pub finished_compact_rev: Option<i64>,
    /// The leases, in id order.
    pub leases: Vec<Lease>,
    /// The members: id to the JSON etcd stores for it (see [`member_json`]).
    pub members: BTreeMap<u64, String>,
    /// The ids of removed members.
    pub removed_members: BTreeSet<u64>,
    /// The cluster version (`cluster`/`clusterVersion`), once decided.
    pub cluster_version: Option<String>,
    /// Whether auth is enabled; `None` when the `authEnabled` key is absent (auth never enabled).
    pub auth_enabled: Option<bool>,
    /// The auth store's revision (`auth`/`authRevision`).
    pub auth_revision: u64,
    /// The users, in name order.
    pub users: Vec<User>,
    /// The roles, in name order.
    pub roles: Vec<Role>,
    /// The active alarms.
    pub alarms: Vec<AlarmMember>,
}

impl EtcdBackend {
    /// The current revision as `etcdctl snapshot status` reports it: the main revision of the
    /// last record in the `key` bucket (the highest), 0 when there are none.
    pub fn revision(&self) -> i64 {
        self.kvs
            .iter()
            .map(|r| r.revision)
            .max_by_key(|r| r.to_key())
            .map_or(0, |r| r.main)
    }
}

/// Why a snapshot could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The file does not end in a sha256 trailer.
    #[error(
        "snapshot has no sha256 trailer: its size {size} is not a multiple of 512 plus 32 \
         (a database file copied from a data directory needs --skip-hash-check)"
    )]
    MissingHash {
        /// The file's size in bytes.
        size: usize,
    },
    /// The trailer does not match the content: the file is corrupt or was cut.
    #[error(
        "snapshot is corrupt: its sha256 trailer is {expected}, but the content hashes to {actual}"
    )]
    HashMismatch {
        /// The trailer, in hex.
        expected: String,
        /// The content's sha256, in hex.
        actual: String,
    },
    /// The content is not a readable bbolt file.
    #[error("snapshot is not a valid bbolt database: {0}")]
    Bolt(#[from] BoltError),
    /// A bucket every etcd backend has is missing: the file is bbolt but not etcd's.
    #[error("snapshot is not an etcd backend: it has no {0:?} bucket")]
    MissingBucket(String),
    /// A record that does not decode as etcd writes it.
    #[error("snapshot has a bad record in bucket {bucket:?} at key {key}: {reason}")]
    BadRecord {
        /// The bucket holding the record.
        bucket: String,
        /// The record's key (text when printable, else hex).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An [`EtcdBackend`] that cannot be written (two records at one revision, two users with one
    /// name, ...).
    #[error("cannot write snapshot: {0}")]
    Invalid(String),
}
