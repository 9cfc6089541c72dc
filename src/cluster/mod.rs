//! Cluster membership: member IDs and the cluster ID (derived from peer URLs and the cluster
//! token as etcd derives them), the member list, and its persistence; `bootstrap.rs`
//! establishes who this member is when it starts.

pub mod bootstrap;

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::proto::etcdserverpb::Member as PbMember;
use crate::storage::{Engine, StateBatch, StorageError};

const MEMBER_PREFIX: &[u8] = b"c/";
const CLUSTER_ID_KEY: &[u8] = b"m/cluster_id";

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Member ID.
    pub id: u64,
    /// Name (empty until the member has started and published it).
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs (empty until published).
    pub client_urls: Vec<String>,
    /// True for a non-voting learner.
    pub is_learner: bool,
}

impl Member {
    /// A voting member as `--initial-cluster` names it: its ID derived from its peer URLs and
    /// the cluster token, no client URLs until it publishes them.
    pub fn initial(name: String, peer_urls: Vec<String>, token: &str) -> Self {
        Self {
            id: member_id(&peer_urls, token),
            name,
            peer_urls,
            client_urls: Vec::new(),
            is_learner: false,
        }
    }

    /// The gRPC form.
    pub fn to_pb(&self) -> PbMember {
        PbMember {
            id: self.id,
            name: self.name.clone(),
            peer_ur_ls: self.peer_urls.clone(),
            client_ur_ls: self.client_urls.clone(),
            is_learner: self.is_learner,
        }
    }
}

/// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the sorted peer URLs joined,
/// followed by the cluster token.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut h = Sha1::new();
    h.update(urls.concat().as_bytes());
    h.update(token.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("sha1 is 20 bytes"))
}

/// etcd's ID for a member added at run time: as [`member_id`], with the Unix time appended so
/// that re-adding the same URLs gives a new ID.
pub fn member_id_at(peer_urls: &[String], token: &str, unix_secs: u64) -> u64 {
    member_id(peer_urls, &format!("{token}{unix_secs}"))
}

/// etcd's cluster ID: SHA-1 over the sorted member IDs (big-endian), first 8 bytes.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("sha1 is 20 bytes"))
}

/// The member list and cluster ID.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// Cluster ID.
    pub cluster_id: u64,
    /// Members by ID.
    pub members: BTreeMap<u64, Member>,
}

fn member_key(id: u64) -> Vec<u8> {
    let mut k = MEMBER_PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

impl Membership {
    /// Loads the membership from storage (empty for a new member).
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub fn load(engine: &Engine) -> Result<Self, StorageError> {
        let cluster_id = engine
            .state_get(CLUSTER_ID_KEY)?
            .and_then(|b| b.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let mut members = BTreeMap::new();
        for (_, v) in engine.state_scan_prefix(MEMBER_PREFIX)? {
            let m: Member = serde_json::from_slice(&v).map_err(|e| StorageError::Corrupt {
                what: "member".into(),
                detail: e.to_string(),
            })?;
            members.insert(m.id, m);
        }
        Ok(Self {
            cluster_id,
            members,
        })
    }

    /// Writes the cluster ID into `batch`.
    pub fn set_cluster_id(&mut self, id: u64, batch: &mut StateBatch) {
        self.cluster_id = id;
        batch.put(CLUSTER_ID_KEY, id.to_be_bytes());
    }

    /// Adds or replaces a member, writing it into `batch`.
    pub fn upsert(&mut self, m: Member, batch: &mut StateBatch) {
        batch.put(member_key(m.id), serde_json::to_vec(&m).unwrap_or_default());
        self.members.insert(m.id, m);
    }

    /// Removes a member, writing the removal into `batch`.
    pub fn remove(&mut self, id: u64, batch: &mut StateBatch) -> Option<Member> {
        batch.delete(member_key(id));
        self.members.remove(&id)
    }

    /// Members in ID order, in gRPC form.
    pub fn to_pb(&self) -> Vec<PbMember> {
        self.members.values().map(Member::to_pb).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_etcds_derivation() {
        // etcd 3.4 with no flags: member 8e9e05c52164694d in cluster cdf818194e3a8c32.
        let id = member_id(&["http://localhost:2380".to_string()], "etcd-cluster");
        assert_eq!(format!("{id:x}"), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", cluster_id(&[id])), "cdf818194e3a8c32");
    }
}

const IDENTITY_MEMBER: &[u8] = b"id/member";
const IDENTITY_CLUSTER: &[u8] = b"id/cluster";

/// Who this member is, fixed when its data dir was created (kept among the member records,
/// so a snapshot never changes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// This member's ID.
    pub member_id: u64,
    /// The cluster's ID.
    pub cluster_id: u64,
}

impl Identity {
    /// The identity stored in the data dir, if any.
    ///
    /// # Errors
    /// Storage failure.
    pub fn load(engine: &Engine) -> Result<Option<Self>, StorageError> {
        let read = |k: &[u8]| -> Result<Option<u64>, StorageError> {
            Ok(engine
                .raft_get(k)?
                .and_then(|b| b.as_slice().try_into().ok().map(u64::from_be_bytes)))
        };
        match (read(IDENTITY_MEMBER)?, read(IDENTITY_CLUSTER)?) {
            (Some(member_id), Some(cluster_id)) => Ok(Some(Self {
                member_id,
                cluster_id,
            })),
            _ => Ok(None),
        }
    }

    /// Stores the identity durably.
    ///
    /// # Errors
    /// Storage failure.
    pub fn save(&self, engine: &Engine) -> Result<(), StorageError> {
        engine.put_member_records(&[
            (IDENTITY_MEMBER, &self.member_id.to_be_bytes()),
            (IDENTITY_CLUSTER, &self.cluster_id.to_be_bytes()),
        ])
    }
}
