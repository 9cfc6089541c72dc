//! etcd's leader monitor for requests that carry the gRPC metadata `hasleader: true`
//! (clientv3's `WithRequireLeader`, which kube-apiserver puts on every watch).
//!
//! Such a request is refused at once with `etcdserver: no leader` when the member knows no
//! leader; a stream already open is ended with the same error once the member has had no leader
//! for [`MAX_NO_LEADER_CHECKS`] consecutive checks, one per election timeout — etcd is slower
//! to end open streams than to refuse new requests, since reconnecting costs more.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::raft::RaftHandle;

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

/// [`requires_leader`] on a request's HTTP headers.
pub fn requires_leader_header(headers: &http::HeaderMap) -> bool {
    headers
        .get(REQUIRE_LEADER_KEY)
        .is_some_and(|v| v.as_bytes() == REQUIRE_LEADER_VALUE.as_bytes())
}

/// Whether the member has had no leader for long: the monitor's verdict, which streams that
/// require a leader wait on.
#[derive(Debug)]
pub struct LeaderLoss {
    lost: watch::Sender<bool>,
}

impl Default for LeaderLoss {
    fn default() -> Self {
        Self {
            lost: watch::channel(false).0,
        }
    }
}

impl LeaderLoss {
    /// Records the verdict.
    pub fn set(&self, lost: bool) {
        self.lost
            .send_if_modified(|l| std::mem::replace(l, lost) != lost);
    }

    /// Resolves once the member has had no leader for long.
    pub async fn wait(&self) {
        let mut lost = self.lost.subscribe();
        if lost.wait_for(|l| *l).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Checks `raft`'s leader once per `election_timeout` and records in `loss` whether the
/// member has been leaderless for too long; runs until `shutdown`.
pub async fn run(
    raft: RaftHandle,
    loss: std::sync::Arc<LeaderLoss>,
    election_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut leaderless = 0u32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(election_timeout) => {}
        }
        if raft.status().leader == 0 {
            leaderless = leaderless.saturating_add(1);
        } else {
            leaderless = 0;
        }
        loss.set(leaderless >= MAX_NO_LEADER_CHECKS);
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
