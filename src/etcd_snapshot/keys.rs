//! etcd's bucket names and key encodings.

/// The bucket and key names of etcd 3.4's backend.
pub mod bucket_names {
    /// MVCC history: revision key to `mvccpb.KeyValue`.
    pub const KEY: &[u8] = b"key";
    /// Consistent index and compaction marks.
    pub const META: &[u8] = b"meta";
    /// Leases by id.
    pub const LEASE: &[u8] = b"lease";
    /// Members by hex id, as JSON.
    pub const MEMBERS: &[u8] = b"members";
    /// Removed members by hex id.
    pub const MEMBERS_REMOVED: &[u8] = b"members_removed";
    /// The cluster version.
    pub const CLUSTER: &[u8] = b"cluster";
    /// Auth flag and revision.
    pub const AUTH: &[u8] = b"auth";
    /// Users by name.
    pub const AUTH_USERS: &[u8] = b"authUsers";
    /// Roles by name.
    pub const AUTH_ROLES: &[u8] = b"authRoles";
    /// Active alarms.
    pub const ALARM: &[u8] = b"alarm";

    /// Every bucket etcd 3.4 creates, in bbolt's (bytewise) order.
    pub const ALL: [&[u8]; 10] = [
        ALARM,
        AUTH,
        AUTH_ROLES,
        AUTH_USERS,
        CLUSTER,
        KEY,
        LEASE,
        MEMBERS,
        MEMBERS_REMOVED,
        META,
    ];

    /// `meta`: the last applied raft index.
    pub const CONSISTENT_INDEX: &[u8] = b"consistent_index";
    /// `meta` (etcd 3.5): the raft term with the consistent index.
    pub const TERM: &[u8] = b"term";
    /// `meta` (etcd 3.5): raft's configuration (voters, learners) as JSON.
    pub const CONF_STATE: &[u8] = b"confState";
    /// `meta`: the last compaction asked for.
    pub const SCHEDULED_COMPACT_REV: &[u8] = b"scheduledCompactRev";
    /// `meta`: the last compaction completed.
    pub const FINISHED_COMPACT_REV: &[u8] = b"finishedCompactRev";
    /// `cluster`: the cluster version.
    pub const CLUSTER_VERSION: &[u8] = b"clusterVersion";
    /// `auth`: whether auth is enabled.
    pub const AUTH_ENABLED: &[u8] = b"authEnabled";
    /// `auth`: the auth store's revision.
    pub const AUTH_REVISION: &[u8] = b"authRevision";
    /// `members_removed`: the value stored for every removed member.
    pub const REMOVED: &[u8] = b"removed";
}

/// The length of a revision key.
pub(super) const REV_KEY_LEN: usize = 17;
/// The byte marking a tombstone at the end of a revision key.
pub(super) const TOMBSTONE_MARK: u8 = b't';

/// An MVCC revision: the main revision of a transaction and the index of a change within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    /// The transaction's revision.
    pub main: i64,
    /// The change's index within the transaction.
    pub sub: i64,
}

impl Revision {
    /// The 17-byte key etcd stores this revision under: big-endian main, `_`, big-endian sub.
    pub fn to_key(self) -> [u8; REV_KEY_LEN] {
        let mut k = [0u8; REV_KEY_LEN];
        k[..8].copy_from_slice(&self.main.to_be_bytes());
        k[8] = b'_';
        k[9..].copy_from_slice(&self.sub.to_be_bytes());
        k
    }

    /// The key etcd stores a record at this revision under: [`Revision::to_key`], plus `t` for a
    /// tombstone.
    pub fn to_record_key(self, tombstone: bool) -> Vec<u8> {
        let mut k = self.to_key().to_vec();
        if tombstone {
            k.push(TOMBSTONE_MARK);
        }
        k
    }

    /// Decodes a `key` bucket key into its revision and tombstone flag.
    ///
    /// # Errors
    ///
    /// A description of the problem when the key is neither 17 bytes with `_` at byte 8 nor
    /// that plus a trailing `t`.
    pub fn from_record_key(key: &[u8]) -> Result<(Revision, bool), String> {
        let tombstone = match key.len() {
            REV_KEY_LEN => false,
            18 if key[REV_KEY_LEN] == TOMBSTONE_MARK => true,
            18 => {
                return Err(format!(
                    "revision key ends in {:#04x}, expected 't' for a tombstone",
                    key[REV_KEY_LEN]
                ))
            }
            n => return Err(format!("revision key is {n} bytes, expected 17 or 18")),
        };
        if key[8] != b'_' {
            return Err(format!(
                "revision key has {:#04x} at byte 8, expected '_'",
                key[8]
            ));
        }
        Ok((Self::from_key_prefix(key), tombstone))
    }

    /// Decodes main and sub from the first 17 bytes of `key` without checking the separator, as
    /// etcd's `bytesToRev` does. The caller has checked the length.
    pub(super) fn from_key_prefix(key: &[u8]) -> Revision {
        let mut main = [0u8; 8];
        main.copy_from_slice(&key[..8]);
        let mut sub = [0u8; 8];
        sub.copy_from_slice(&key[9..REV_KEY_LEN]);
        Revision {
            main: i64::from_be_bytes(main),
            sub: i64::from_be_bytes(sub),
        }
    }
}
