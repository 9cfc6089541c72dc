//! Wiring: takes the one [`Config`], builds what it asks for (`resources.rs`: socket addresses,
//! TLS, auth options, limits), opens storage, loads the state, starts raft and the background
//! tasks, binds the client listeners and serves gRPC and HTTP on each; shuts everything down in
//! order.

mod coalesce;
mod guards;
mod h2compat;
mod listener;
mod monitor;
mod peer;
mod resources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::api::core::CoreSettings;
use crate::api::{self, ApiError, Core};
use crate::apply::{Applier, SharedState};
use crate::cluster::bootstrap::{establish_identity, BootstrapError, Established};
use crate::config::Config;
use crate::proto::kvdpb::{command::Op, MemberAttributes};
use crate::raft::transport::{AddressBook, DialConfig, PeerDialer, PeerTransport};
use crate::raft::{LogStore, NodeError, RaftConfig, RaftNode, SnapshotSource};
use crate::storage::{Engine, StorageError};
use crate::tls::ServerTls;

pub use resources::ResourceError;
use resources::{Listen, Resources};

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The data directory could not be created or opened.
    #[error("cannot open data dir {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The reason.
        reason: StorageError,
    },
    /// The data directory could not be created.
    #[error("cannot create data dir {path}: {reason}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The reason.
        reason: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The reason.
        reason: std::io::Error,
    },
    /// raft refused to start.
    #[error("raft: {0}")]
    Raft(String),
    /// A unix socket could not be bound.
    #[error("cannot listen on unix socket {path}: {reason}")]
    Unix {
        /// The socket path.
        path: PathBuf,
        /// The reason.
        reason: std::io::Error,
    },
    /// TLS is asked for but not configured.
    #[error("{0}")]
    Tls(String),
    /// This member's identity could not be established (bootstrap, import, join).
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The configuration cannot be acted on (listen URLs, TLS files, auth settings).
    #[error(transparent)]
    Resources(#[from] ResourceError),
}

/// A running server.
pub struct ServerHandle {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    raft_task: JoinHandle<()>,
    engine: Engine,
    flusher: Flusher,
    /// The bound client addresses (useful when port 0 was asked).
    pub client_addrs: Vec<SocketAddr>,
    /// The bound peer addresses.
    pub peer_addrs: Vec<SocketAddr>,
    /// The bound `--listen-client-http-urls` addresses.
    pub client_http_addrs: Vec<SocketAddr>,
    /// The bound `--listen-metrics-urls` addresses.
    pub metrics_addrs: Vec<SocketAddr>,
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
        self.hand_over_leadership().await;
        self.shutdown.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.raft_task).await;
        let _ = tokio::task::spawn_blocking(move || self.flusher.stop()).await;
        if let Err(e) = self.engine.flush() {
            error!(error = %e, "final flush failed");
            return;
        }
        // The next start loads the key index instead of rebuilding it from every record.
        let state = self.core.state.clone();
        match tokio::task::spawn_blocking(move || state.save_index_image()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "cannot save the key index; the next start rebuilds it")
            }
            Err(e) => warn!(error = %e, "cannot save the key index; the next start rebuilds it"),
        }
    }
}

/// How often the state backend is flushed in the background (the raft log behind what it
/// holds durably can then be compacted; a crash replays the rest from the WAL).
const STATE_FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// The thread that flushes the state backend in the background.
struct Flusher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(engine: Engine, progress: Arc<crate::apply::Durability>) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kvd-state-flush".into())
            .spawn(move || crate::apply::run_flusher(engine, progress, STATE_FLUSH_INTERVAL, flag))
            .ok();
        Self { stop, thread }
    }

    /// Stops the thread after a last flush, and waits for it.
    fn stop(mut self) {
        if let Some(t) = self.signal() {
            let _ = t.join();
        }
    }

    fn signal(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let t = self.thread.take()?;
        t.thread().unpark();
        Some(t)
    }
}

impl Drop for Flusher {
    /// A member that failed to start, or is dropped without `shutdown`, stops its flusher too.
    fn drop(&mut self) {
        self.signal();
    }
}

impl ServerHandle {
    /// A leader that stops hands leadership to the most up-to-date voter it heard from
    /// recently, so the cluster does not wait out an election timeout (etcd does the same).
    /// It waits at most two election timeouts and gives up quietly: a target that is stopping
    /// too simply never takes over.
    async fn hand_over_leadership(&self) {
        let core = &self.core;
        if core.raft.status().leader != core.member_id {
            return;
        }
        let Ok(progress) = core.raft.progress().await else {
            return;
        };
        let voters: Vec<u64> = core
            .state
            .membership
            .read()
            .members
            .values()
            .filter(|m| !m.is_learner && m.id != core.member_id)
            .map(|m| m.id)
            .collect();
        let target = voters
            .iter()
            .filter_map(|id| {
                progress
                    .get(id)
                    .filter(|p| p.recent_active)
                    .map(|p| (p.matched, *id))
            })
            .max();
        let Some((_, target)) = target else { return };
        if core.raft.transfer_leader(target).await.is_err() {
            return;
        }
        let mut status = core.raft.status_watch();
        let wait = Duration::from_secs(1);
        let moved =
            tokio::time::timeout(wait, status.wait_for(|s| s.leader != core.member_id)).await;
        match moved {
            Ok(Ok(_)) => info!(
                to = format!("{target:x}"),
                "handed leadership over before stopping"
            ),
            _ => warn!(
                to = format!("{target:x}"),
                "leadership hand-over before stopping did not finish; stopping anyway"
            ),
        }
    }
}

/// A storage failure in the data dir.
fn storage_error(cfg: &Config) -> impl Fn(StorageError) -> StartError + '_ {
    move |source| StartError::DataDir {
        path: cfg.data_dir.clone(),
        reason: source,
    }
}

/// Starts a member as `cfg` says.
///
/// # Errors
/// Unusable listen URLs, TLS files or auth settings; data dir, listener or raft failures; each
/// naming what to fix.
pub async fn start(cfg: Config) -> Result<ServerHandle, StartError> {
    let res = Resources::build(&cfg)?;
    let db_dir = cfg.data_dir.join("member").join("kvd");
    let etcd_db = cfg.data_dir.join("member").join("snap").join("db");
    let fresh = !db_dir.exists();
    let migrate = fresh && etcd_db.is_file();
    std::fs::create_dir_all(&db_dir).map_err(|source| StartError::CreateDir {
        path: cfg.data_dir.clone(),
        reason: source,
    })?;
    let engine = Engine::open_with(
        &db_dir,
        crate::storage::EngineOptions {
            cache_bytes: cfg.backend_cache_bytes,
        },
    )
    .map_err(storage_error(&cfg))?;
    let log = LogStore::open(&crate::storage::wal_dir(&db_dir), Some(&engine))
        .map_err(storage_error(&cfg))?;
    let min_ttl = min_lease_ttl(cfg.heartbeat_interval, cfg.election_timeout);
    let state = SharedState::load(&engine, min_ttl).map_err(storage_error(&cfg))?;
    state.tokens.configure(res.auth.clone());
    state
        .lessor
        .lock()
        .set_promote_extension(cfg.election_timeout);
    let peer_tls = res.peer_dial_tls.clone();
    let established = establish_identity(
        &engine,
        &log,
        &state,
        &cfg,
        peer_tls.clone(),
        migrate.then_some(&etcd_db),
    )
    .await;
    let Established {
        identity,
        initial_voters,
    } = match established {
        Ok(v) => v,
        Err(e) => {
            if fresh {
                // Leave no half-made member behind: the next start is a first start again,
                // with the bootstrap checks of one.
                drop(state);
                drop(log);
                drop(engine);
                let _ = std::fs::remove_dir_all(&db_dir);
            }
            return Err(e.into());
        }
    };
    let me = identity.member_id;
    let (leader_tx, leader_rx) = tokio::sync::watch::channel((0, 0, false));
    let applier =
        Applier::new(state.clone(), engine.clone(), leader_tx).map_err(storage_error(&cfg))?;
    let flusher = Flusher::start(engine.clone(), applier.durability());
    let raft_config = RaftConfig {
        id: me,
        initial_voters,
        heartbeat: cfg.heartbeat_interval,
        election_timeout: cfg.election_timeout,
        snapshot_count: cfg.snapshot_count,
    };
    let shutdown = CancellationToken::new();
    let membership = state.membership.clone();
    let addresses: AddressBook = Arc::new(move |id| {
        membership
            .read()
            .members
            .get(&id)
            .map(|m| m.peer_urls.clone())
            .unwrap_or_default()
    });
    let dial = DialConfig {
        me,
        cluster_id: identity.cluster_id,
        addresses,
        tls: peer_tls,
    };
    let source_state = state.clone();
    let source_engine = engine.clone();
    // The term apply last saw a leader of, recorded in the image as etcd 3.5 does.
    let source_leader = leader_rx;
    let snapshot_source: SnapshotSource = Arc::new(move || {
        crate::kvd_crash_point!("snapshot::before_save");
        let term = source_leader.borrow().1;
        crate::snapshot::image(&source_state, &source_engine, term)
    });
    let transport_dial = dial.clone();
    let transport_shutdown = shutdown.clone();
    let (node, raft) = RaftNode::new(raft_config, log, applier, snapshot_source, move |handle| {
        PeerTransport::new(transport_dial, handle, transport_shutdown)
    })
    .map_err(|e| StartError::Raft(e.to_string()))?;
    let tracker = TaskTracker::new();
    let raft_shutdown = shutdown.clone();
    let raft_task = tokio::spawn(async move {
        match node.run(raft_shutdown.clone()).await {
            Ok(()) => {}
            Err(NodeError::Removed) => {
                warn!("the member has been permanently removed from the cluster; shutting down")
            }
            Err(e) => error!(error = %e, "raft stopped; shutting down"),
        }
        raft_shutdown.cancel();
    });
    let request_timeout = Duration::from_secs(5) + 2 * cfg.election_timeout;
    let core = Core::new(
        state.clone(),
        raft.clone(),
        crate::apply::Persisted::new(engine.clone()),
        me,
        CoreSettings {
            limits: res.limits,
            request_timeout,
            cluster_token: cfg.initial_cluster_token.clone(),
        },
        Arc::new(PeerDialer::new(dial)),
    );

    if cfg.metrics == "extensive" {
        crate::metrics::grpc::enable_handling_histogram();
    }
    crate::metrics::network::set_heartbeat_interval(cfg.heartbeat_interval);
    crate::metrics::server::set_slow_apply_threshold(cfg.experimental_warning_apply_duration);
    tracker.spawn(monitor::leader_changes(core.clone(), shutdown.clone()));
    tracker.spawn(monitor::probe_peers(core.clone(), shutdown.clone()));
    tracker.spawn(state.hub.clone().run_sync(shutdown.clone()));
    tracker.spawn(api::leader_monitor::run(
        core.raft.clone(),
        core.leader_loss.clone(),
        cfg.election_timeout,
        shutdown.clone(),
    ));
    tracker.spawn(api::lease::run_expiry(core.clone(), shutdown.clone()));
    if let Some(ac) = cfg.auto_compaction {
        tracker.spawn(crate::compactor::run(core.clone(), ac, shutdown.clone()));
    }
    tracker.spawn(publish_attributes(
        core.clone(),
        cfg.name.clone(),
        cfg.advertise_client_urls.clone(),
    ));

    let mut peer_addrs = Vec::new();
    let peer_router = peer::router(core.clone());
    for listen in &res.listen_peer {
        let tls = if listen.tls {
            Some(require_tls(
                &res.peer_tls,
                listen,
                "--peer-cert-file/--peer-key-file or --peer-auto-tls",
            )?)
        } else {
            None
        };
        peer_addrs.push(
            bind(
                listen,
                "peer",
                "raft",
                peer_router.clone(),
                tls,
                &shutdown,
                &tracker,
            )
            .await?,
        );
    }
    let tls_listeners: Vec<ServerTls> = [&res.client_tls, &res.peer_tls]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let split = !res.listen_client_http.is_empty();
    let client_traffic = if split {
        listener::Traffic::Grpc
    } else {
        listener::Traffic::GrpcAndHttp
    };
    let router = listener::router(
        core.clone(),
        cfg.enable_grpc_gateway,
        tls_listeners.clone(),
        client_traffic,
    );
    let client_tls = |listen: &Listen| -> Result<Option<ServerTls>, StartError> {
        if listen.tls {
            require_tls(
                &res.client_tls,
                listen,
                "--cert-file/--key-file or --auto-tls",
            )
            .map(Some)
        } else {
            Ok(None)
        }
    };
    let mut client_addrs = Vec::new();
    for listen in &res.listen_client {
        client_addrs.push(
            bind(
                listen,
                "client",
                client_traffic.name(),
                router.clone(),
                client_tls(listen)?,
                &shutdown,
                &tracker,
            )
            .await?,
        );
    }
    let http_router = listener::router(
        core.clone(),
        cfg.enable_grpc_gateway,
        tls_listeners.clone(),
        listener::Traffic::Http,
    );
    let mut client_http_addrs = Vec::new();
    for listen in &res.listen_client_http {
        client_http_addrs.push(
            bind(
                listen,
                "client",
                listener::Traffic::Http.name(),
                http_router.clone(),
                client_tls(listen)?,
                &shutdown,
                &tracker,
            )
            .await?,
        );
    }
    let metrics_router = listener::metrics_router(core.clone(), tls_listeners);
    let mut metrics_addrs = Vec::new();
    for listen in &res.listen_metrics {
        metrics_addrs.push(
            bind(
                listen,
                "metrics",
                "http",
                metrics_router.clone(),
                client_tls(listen)?,
                &shutdown,
                &tracker,
            )
            .await?,
        );
    }
    for path in &res.listen_client_unix {
        // A socket file left by a previous run would make bind fail.
        let _ = std::fs::remove_file(path);
        let l = tokio::net::UnixListener::bind(path).map_err(|reason| StartError::Unix {
            path: path.clone(),
            reason,
        })?;
        info!(path = %path.display(), "serving client traffic on a unix socket");
        tracker.spawn(listener::serve_unix(
            l,
            router.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    for tls in [&res.client_tls, &res.peer_tls].into_iter().flatten() {
        tracker.spawn(tls.spawn_reloader(shutdown.clone()));
    }
    info!(
        name = %cfg.name,
        member = format!("{me:x}"),
        cluster = format!("{:x}", core.cluster_id()),
        "kvd member started"
    );
    Ok(ServerHandle {
        shutdown,
        tracker,
        raft_task,
        engine,
        flusher,
        client_addrs,
        peer_addrs,
        client_http_addrs,
        metrics_addrs,
        core,
    })
}

fn require_tls(
    tls: &Option<ServerTls>,
    listen: &Listen,
    flags: &str,
) -> Result<ServerTls, StartError> {
    tls.clone().ok_or_else(|| {
        StartError::Tls(format!(
            "cannot listen on TLS for {}: set {flags}",
            listen.addr
        ))
    })
}

async fn bind(
    listen: &Listen,
    kind: &str,
    traffic: &str,
    router: axum::Router,
    tls: Option<ServerTls>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<SocketAddr, StartError> {
    let l = tokio::net::TcpListener::bind(listen.addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen.addr,
            reason: source,
        })?;
    let local = l.local_addr().unwrap_or(listen.addr);
    if tls.is_some() {
        info!(address = %local, kind, traffic, "serving over TLS");
    } else {
        info!(address = %local, kind, traffic, "serving insecurely (no TLS)");
    }
    let rewrite = if kind == "client" {
        listener::Authority::Rewrite
    } else {
        listener::Authority::AsSent
    };
    tracker.spawn(listener::serve(
        l,
        router,
        tls,
        rewrite,
        shutdown.clone(),
        tracker.clone(),
    ));
    Ok(local)
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
