//! Wiring: opens storage, loads the state, starts raft and the background tasks, binds the client
//! listeners and serves gRPC and HTTP on each; shuts everything down in order.

mod listener;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::api::{self, ApiError, Core, Limits};
use crate::apply::{Applier, SharedState};
use crate::cluster::{cluster_id, member_id, Member};
use crate::proto::kvdpb::{command::Op, MemberAttributes};
use crate::raft::{NoPeers, RaftConfig, RaftNode};
use crate::storage::{Engine, StateBatch, StorageError};

/// Everything the server needs to start, already validated.
#[derive(Debug, Clone)]
pub struct Options {
    /// Member name.
    pub name: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Client listen addresses.
    pub listen_client: Vec<SocketAddr>,
    /// Client URLs told to others.
    pub advertise_client_urls: Vec<String>,
    /// Peer URLs told to others.
    pub advertise_peer_urls: Vec<String>,
    /// The initial cluster: (name, peer URL) pairs.
    pub initial_cluster: Vec<(String, String)>,
    /// The initial cluster token.
    pub initial_cluster_token: String,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout.
    pub election_timeout: Duration,
    /// Applied entries between raft log compactions.
    pub snapshot_count: u64,
    /// Request limits.
    pub limits: Limits,
    /// Automatic compaction, if any.
    pub auto_compaction: Option<AutoCompaction>,
}

/// Automatic compaction settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep this much history (etcd's periodic mode).
    Periodic(Duration),
    /// Keep this many revisions (etcd's revision mode).
    Revision(i64),
}

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The data directory could not be created or opened.
    #[error("cannot open data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The reason.
        source: StorageError,
    },
    /// The data directory could not be created.
    #[error("cannot create data dir {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
    /// This member is not in the initial cluster.
    #[error("member {name} has no peer URL in --initial-cluster")]
    NotInCluster {
        /// The member name.
        name: String,
    },
    /// raft refused to start.
    #[error("raft: {0}")]
    Raft(String),
}

/// A running server.
pub struct ServerHandle {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    raft_task: JoinHandle<()>,
    engine: Engine,
    /// The bound client addresses (useful when port 0 was asked).
    pub client_addrs: Vec<SocketAddr>,
    /// The API core.
    pub core: Arc<Core>,
}

impl ServerHandle {
    /// A token that is cancelled when the server stops (also when raft fails).
    pub fn stopped(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops in order: listeners and streams, background tasks, raft, then flushes storage.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.raft_task).await;
        if let Err(e) = self.engine.flush() {
            error!(error = %e, "final flush failed");
        }
    }
}

fn bootstrap(
    engine: &Engine,
    state: &SharedState,
    opts: &Options,
) -> Result<(u64, Vec<u64>), StartError> {
    let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
    for (name, url) in &opts.initial_cluster {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => urls.push(url.clone()),
            None => by_name.push((name.clone(), vec![url.clone()])),
        }
    }
    let token = &opts.initial_cluster_token;
    let members: Vec<Member> = by_name
        .iter()
        .map(|(name, urls)| Member {
            id: member_id(urls, token),
            name: name.clone(),
            peer_urls: urls.clone(),
            client_urls: Vec::new(),
            is_learner: false,
        })
        .collect();
    let me = members
        .iter()
        .find(|m| m.name == opts.name)
        .map(|m| m.id)
        .ok_or_else(|| StartError::NotInCluster {
            name: opts.name.clone(),
        })?;
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let mut membership = state.membership.write();
    if membership.members.is_empty() {
        let mut batch = StateBatch::default();
        membership.set_cluster_id(cluster_id(&ids), &mut batch);
        for m in members {
            membership.upsert(m, &mut batch);
        }
        engine
            .apply_state(batch)
            .and_then(|()| engine.flush())
            .map_err(|source| StartError::DataDir {
                path: opts.data_dir.clone(),
                source,
            })?;
    }
    Ok((me, ids))
}

/// Starts a member.
///
/// # Errors
/// Data dir, listener or raft failures, each naming what to fix.
pub async fn start(opts: Options) -> Result<ServerHandle, StartError> {
    let db_dir = opts.data_dir.join("member").join("kvd");
    std::fs::create_dir_all(&db_dir).map_err(|source| StartError::CreateDir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let engine = Engine::open(&db_dir).map_err(|source| StartError::DataDir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let min_ttl = min_lease_ttl(opts.heartbeat, opts.election_timeout);
    let state = SharedState::load(&engine, min_ttl).map_err(|source| StartError::DataDir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let (me, voters) = bootstrap(&engine, &state, &opts)?;
    let (leader_tx, _leader_rx) = tokio::sync::watch::channel((0, 0, false));
    let applier = Applier::new(state.clone(), engine.clone(), leader_tx).map_err(|source| {
        StartError::DataDir {
            path: opts.data_dir.clone(),
            source,
        }
    })?;
    let raft_config = RaftConfig {
        id: me,
        initial_voters: voters,
        heartbeat: opts.heartbeat,
        election_timeout: opts.election_timeout,
        snapshot_count: opts.snapshot_count,
    };
    let (node, raft) = RaftNode::new(raft_config, engine.clone(), applier, NoPeers)
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let raft_shutdown = shutdown.clone();
    let raft_task = tokio::spawn(async move {
        if let Err(e) = node.run(raft_shutdown.clone()).await {
            error!(error = %e, "raft stopped on a storage failure; shutting down");
        }
        raft_shutdown.cancel();
    });
    let request_timeout = Duration::from_secs(5) + 2 * opts.election_timeout;
    let core = Core::new(
        state.clone(),
        raft.clone(),
        engine.clone(),
        me,
        opts.limits,
        request_timeout,
    );

    tracker.spawn(state.hub.clone().run_sync(shutdown.clone()));
    tracker.spawn(api::lease::run_expiry(core.clone(), shutdown.clone()));
    if let Some(ac) = opts.auto_compaction {
        tracker.spawn(crate::compactor::run(core.clone(), ac, shutdown.clone()));
    }
    tracker.spawn(publish_attributes(
        core.clone(),
        opts.name.clone(),
        opts.advertise_client_urls.clone(),
    ));

    let router = listener::router(core.clone());
    let mut client_addrs = Vec::new();
    for addr in &opts.listen_client {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen {
                addr: *addr,
                source,
            })?;
        let local = l.local_addr().unwrap_or(*addr);
        info!(address = %local, "serving client traffic insecurely (gRPC and HTTP)");
        client_addrs.push(local);
        tracker.spawn(listener::serve(
            l,
            router.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    info!(name = %opts.name, member = format!("{me:x}"), cluster = format!("{:x}", core.cluster_id()), "kvd member started");
    Ok(ServerHandle {
        shutdown,
        tracker,
        raft_task,
        engine,
        client_addrs,
        core,
    })
}

/// etcd's minimum lease TTL: ceil(1.5 × election timeout), in seconds.
fn min_lease_ttl(heartbeat: Duration, election: Duration) -> i64 {
    let hb = heartbeat.as_millis().max(1);
    let ticks = election.as_millis() / hb;
    let ms = (3 * ticks * hb) / 2;
    i64::try_from(ms.div_ceil(1000)).unwrap_or(1)
}

/// Publishes this member's name and client URLs through raft once a leader is known.
async fn publish_attributes(core: Arc<Core>, name: String, client_urls: Vec<String>) {
    loop {
        if core
            .raft
            .wait_leader(Duration::from_secs(3600))
            .await
            .is_err()
        {
            continue;
        }
        let current = core
            .state
            .membership
            .read()
            .members
            .get(&core.member_id)
            .cloned();
        if current.is_some_and(|m| m.name == name && m.client_urls == client_urls) {
            return;
        }
        let attrs = MemberAttributes {
            member_id: core.member_id,
            name: name.clone(),
            client_urls: client_urls.clone(),
        };
        match core.propose(Op::MemberAttributes(attrs)).await {
            Ok(_) => return,
            Err(ApiError::Stopped) => return,
            Err(e) => {
                tracing::debug!(error = %e, "publishing member attributes failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_lease_ttl_matches_etcd() {
        assert_eq!(
            min_lease_ttl(Duration::from_millis(100), Duration::from_millis(1000)),
            2
        );
        assert_eq!(
            min_lease_ttl(Duration::from_millis(100), Duration::from_millis(5000)),
            8
        );
    }
}
