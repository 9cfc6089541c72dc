//! Background tasks that feed metrics from the member's state: counting leader changes, and
//! probing the round-trip time to every other member as etcd's peer prober does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::api::Core;
use crate::metrics;
use crate::proto::kvdpb::MembersRequest;

/// How often each peer is probed (etcd probes every 4 s: its connection read timeout less 1 s).
const PROBE_INTERVAL: Duration = Duration::from_secs(4);
/// A probe slower than this counts as lost rather than measured.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Counts leader changes (`etcd_server_leader_changes_seen_total`) until `shutdown`.
pub async fn leader_changes(core: Arc<Core>, shutdown: CancellationToken) {
    let mut leader = core.raft.leader_watch();
    let mut seen = metrics::server::LeaderChanges::default();
    loop {
        let (id, term) = *leader.borrow_and_update();
        if seen.observe(id, term) {
            // A new leadership: heartbeat gaps are measured afresh.
            metrics::network::heartbeats_reset();
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = leader.changed() => if changed.is_err() { return },
        }
    }
}

/// Measures the round trip of a small request to every other member every few seconds
/// (`etcd_network_peer_round_trip_time_seconds`) until `shutdown`.
pub async fn probe_peers(core: Arc<Core>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let peers: Vec<u64> = core
            .state
            .membership
            .read()
            .members
            .keys()
            .copied()
            .filter(|id| *id != core.member_id)
            .collect();
        for id in peers {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = probe(&core, id) => {}
            }
        }
    }
}

async fn probe(core: &Core, id: u64) {
    let Some(mut client) = core.peers.client(id).await else {
        return;
    };
    let start = Instant::now();
    let answered = tokio::time::timeout(
        PROBE_TIMEOUT,
        client.members(MembersRequest {
            header: Some(core.peers.header()),
        }),
    )
    .await;
    match answered {
        Ok(Ok(_)) => metrics::network::peer_round_trip(id, start.elapsed()),
        Ok(Err(_)) | Err(_) => core.peers.forget(id),
    }
}
