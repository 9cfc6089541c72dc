//! etcd's leader monitor for requests that carry the gRPC metadata `hasleader: true`
//! (clientv3's `WithRequireLeader`, which kube-apiserver puts on every watch).
//!
//! Such a request is refused at once with `etcdserver: no leader` when the member knows no
//! leader; a stream already open is ended with the same error once the member has had no leader
//! for [`MAX_NO_LEADER_CHECKS`] consecutive checks, one per election timeout — etcd is slower
//! to end open streams than to refuse new requests, since reconnecting costs more.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::core::Core;

/// Consecutive leaderless checks before open streams end (etcd's `maxNoLeaderCnt`).
pub const MAX_NO_LEADER_CHECKS: u32 = 3;

/// The gRPC metadata key and value of `WithRequireLeader`.
const REQUIRE_LEADER_KEY: &str = "hasleader";
const REQUIRE_LEADER_VALUE: &str = "true";

/// True when a request asked to be served only while the member has a leader.
pub fn requires_leader(metadata: &tonic::metadata::MetadataMap) -> bool {
    metadata
        .get(REQUIRE_LEADER_KEY)
        .is_some_and(|v| v.as_bytes() == REQUIRE_LEADER_VALUE.as_bytes())
}

/// Checks the leader once per `election_timeout` and records in `core` whether the member has
/// been leaderless for too long; runs until `shutdown`.
pub async fn run(core: Arc<Core>, election_timeout: Duration, shutdown: CancellationToken) {
    let mut leaderless = 0u32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(election_timeout) => {}
        }
        if core.raft.status().leader == 0 {
            leaderless = leaderless.saturating_add(1);
        } else {
            leaderless = 0;
        }
        core.set_leader_lost(leaderless >= MAX_NO_LEADER_CHECKS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hasleader_true_requires_a_leader() {
        let mut md = tonic::metadata::MetadataMap::new();
        assert!(!requires_leader(&md));
        md.insert("hasleader", "false".parse().expect("ascii"));
        assert!(!requires_leader(&md));
        md.insert("hasleader", "true".parse().expect("ascii"));
        assert!(requires_leader(&md));
    }
}
