//! etcd's member and cluster IDs, computed from their documented inputs, so a test can check that
//! a restored member took the IDs etcd would give it for the same `--initial-cluster-token`.
//!
//! Facts used: a member's ID is the first 8 bytes (big-endian) of the SHA-1 of its sorted peer
//! URLs concatenated, followed by the cluster token; the cluster ID is the first 8 bytes of the
//! SHA-1 of all member IDs, sorted, each as 8 big-endian bytes.

use sha1::{Digest, Sha1};

use crate::harness::{header_cluster_id, Member, Server};

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// The ID etcd gives a member with `peer_urls` in a cluster made with `token`.
pub fn member_id(peer_urls: &[&str], token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.to_vec();
    urls.sort_unstable();
    let mut h = Sha1::new();
    for u in urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    first_u64(&h.finalize())
}

/// The ID etcd gives a cluster of `members`.
pub fn cluster_id(members: &[u64]) -> u64 {
    let mut ids = members.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

/// Asserts that `s` (asked as `user`) reports exactly `members`, with the IDs etcd gives them
/// for `token`, and the matching cluster ID.
#[track_caller]
pub fn assert_membership(s: &Server, user: &str, members: &[Member], token: &str) {
    let v = s
        .ctl()
        .user(user)
        .args(&["member", "list", "-w", "json"])
        .run()
        .ok()
        .json();
    let mut got: Vec<(String, String, u64)> = v["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {v}"))
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["peerURLs"][0].as_str().unwrap_or_default().to_string(),
                m["ID"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String, u64)> = members
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.peer_url(),
                member_id(&[&m.peer_url()], token),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "member list of {}: {v}", s.endpoint());
    let ids: Vec<u64> = want.iter().map(|m| m.2).collect();
    assert_eq!(
        header_cluster_id(&v),
        cluster_id(&ids),
        "cluster id of {}",
        s.endpoint()
    );
}

#[test]
fn ids_match_a_known_etcd_member() {
    // `etcdctl snapshot restore` 3.4.23 logged "added member" with cluster-id 2264b312802ce73b
    // and added-peer-id 4036b1db24775ea0 for `--initial-cluster k1=http://127.0.0.1:23801
    // --initial-cluster-token tok`.
    let m = member_id(&["http://127.0.0.1:23801"], "tok");
    assert_eq!(m, 0x4036_b1db_2477_5ea0);
    assert_eq!(cluster_id(&[m]), 0x2264_b312_802c_e73b);
}
