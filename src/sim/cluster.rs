//! A cluster of simulated members: real [`RaftNode`]s with their WAL-backed [`LogStore`]s, on
//! one tokio runtime with paused time, talking over the [`Network`].
//!
//! A member's state machine is either a [`Recorder`] (raft scenarios: it records what it
//! applied) or kvd's own [`Applier`] over an in-memory engine, with the member's real
//! [`Core`] on top (proposals, reads, leases) and the watch hub's and the lease expiry's
//! background tasks. Members can be stopped and started again from their own storage, and
//! added or removed through configuration changes. Waits poll in virtual time and fail after
//! [`WAIT`] virtual seconds, so a scenario that goes wrong fails instead of hanging.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use raft::prelude::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::network::Network;
use crate::api::core::{Core, CoreSettings, Limits};
use crate::apply::{Applier, Durability, SharedState};
use crate::raft::transport::{DialConfig, PeerDialer};
use crate::raft::{
    Committed, LogStore, MemberChange, NodeError, RaftConfig, RaftHandle, RaftNode, SnapshotSource,
    StateMachine,
};
use crate::storage::{Engine, StorageError};

/// Heartbeat interval of simulated members (one raft tick).
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// Election timeout of simulated members (10 heartbeats).
pub const ELECTION: Duration = Duration::from_millis(1000);
/// How long (virtual) a wait helper waits before it fails the scenario.
pub const WAIT: Duration = Duration::from_secs(30);
/// How often (virtual) wait helpers look again.
const POLL: Duration = Duration::from_millis(10);
/// WAL segment size of simulated members: small, so that creating a member's log (and removing
/// it) costs little.
const WAL_SEGMENT: u64 = 1 << 20;
/// How often (virtual) a kvd member flushes its state backend, as the server's flusher does.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What a [`Recorder`] saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A normal entry's data.
    Normal(Vec<u8>),
    /// A fenced entry's data.
    Fenced(Vec<u8>),
    /// A configuration change.
    Conf(Vec<MemberChange>),
}

/// A recorder's state: the applied index and what was applied up to it.
#[derive(Debug, Default)]
pub struct Recording {
    /// The last applied index.
    pub applied_index: u64,
    /// Applied entries in order (the leader's empty entries left out).
    pub log: Vec<Applied>,
    /// How many snapshots it restored.
    pub restores: u64,
}

impl Recording {
    /// The state as snapshot bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for a in &self.log {
            let (tag, data) = match a {
                Applied::Normal(d) => (0u8, d.clone()),
                Applied::Fenced(d) => (1u8, d.clone()),
                // Configuration changes travel in raft's own snapshot metadata; the recording
                // keeps only that one happened.
                Applied::Conf(_) => (2u8, Vec::new()),
            };
            out.push(tag);
            out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(&data);
        }
        out
    }

    fn decode(mut bytes: &[u8]) -> Vec<Applied> {
        let mut log = Vec::new();
        while bytes.len() >= 5 {
            let tag = bytes[0];
            let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
            let data = bytes[5..5 + len].to_vec();
            bytes = &bytes[5 + len..];
            log.push(match tag {
                0 => Applied::Normal(data),
                1 => Applied::Fenced(data),
                _ => Applied::Conf(Vec::new()),
            });
        }
        log
    }
}

/// A state machine that records what it applied; its snapshot is the whole recording.
pub struct Recorder {
    state: Arc<Mutex<Recording>>,
}

impl StateMachine for Recorder {
    fn applied_index(&self) -> u64 {
        self.state.lock().applied_index
    }

    fn apply(&mut self, entries: Vec<Committed>) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        for e in entries {
            if e.index() <= state.applied_index {
                continue;
            }
            state.applied_index = e.index();
            match e {
                Committed::Normal { data, .. } if !data.is_empty() => {
                    state.log.push(Applied::Normal(data));
                }
                Committed::Fenced { data, .. } => state.log.push(Applied::Fenced(data)),
                Committed::ConfChange { changes, .. } => state.log.push(Applied::Conf(changes)),
                Committed::Normal { .. } => {}
            }
        }
        Ok(())
    }

    fn durable_index(&self) -> u64 {
        self.state.lock().applied_index
    }

    fn snapshot_meta(&self) -> Option<Vec<u8>> {
        None
    }

    fn restore(&mut self, index: u64, data: &[u8], _meta: &[u8]) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        state.applied_index = index;
        state.log = Recording::decode(data);
        state.restores += 1;
        Ok(())
    }

    fn on_leader_change(&mut self, _leader: u64, _term: u64, _is_self: bool) {}
}

/// Which state machine the members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// A [`Recorder`].
    Recorder,
    /// kvd's applier over an in-memory engine, with the member's [`Core`].
    Kvd,
}

/// How a cluster is made.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The members' state machine.
    pub machine: Machine,
    /// `--snapshot-count`: applied entries between log compactions.
    pub snapshot_count: u64,
    /// Seed of the network's randomness.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            machine: Machine::Recorder,
            snapshot_count: 10_000,
            seed: 1,
        }
    }
}

/// The kvd side of a member.
#[derive(Clone)]
pub struct Kvd {
    /// The member's core (state, raft handle, proposals, state backend).
    pub core: Arc<Core>,
}

/// One simulated member while it runs.
pub struct Member {
    /// Its raft handle.
    pub handle: RaftHandle,
    /// What its recorder applied (a recorder member).
    pub recording: Arc<Mutex<Recording>>,
    /// Its kvd side (a kvd member).
    pub kvd: Option<Kvd>,
    stop: CancellationToken,
    node: JoinHandle<Result<(), String>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What stays of a member between runs: its storage.
struct Disk {
    wal: PathBuf,
    engine: Option<Engine>,
}

/// A cluster of simulated members.
pub struct SimCluster {
    /// The network between the members.
    pub net: Network,
    /// Running members by ID.
    pub members: BTreeMap<u64, Member>,
    disks: BTreeMap<u64, Disk>,
    options: Options,
    /// Member node tasks that ended with an error other than a removal.
    failures: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

/// A temporary directory, in memory when the machine offers one (with small WAL segments,
/// creating one is cheap there, and fsyncs cost nothing and wait for no disk).
fn temp_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("kvd-sim").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

impl SimCluster {
    /// Starts members `1..=n` of a new cluster of recorders. Call inside a runtime with paused
    /// time.
    ///
    /// # Panics
    /// If a member cannot be created.
    pub fn start(n: u64) -> Self {
        Self::start_with(n, Options::default())
    }

    /// Starts members `1..=n` of a new cluster of kvd members.
    ///
    /// # Panics
    /// If a member cannot be created.
    pub fn start_kvd(n: u64) -> Self {
        Self::start_with(
            n,
            Options {
                machine: Machine::Kvd,
                ..Options::default()
            },
        )
    }

    /// Starts members `1..=n` of a new cluster made as `options` say.
    ///
    /// # Panics
    /// If a member cannot be created.
    pub fn start_with(n: u64, options: Options) -> Self {
        let mut cluster = Self {
            net: Network::new(options.seed),
            members: BTreeMap::new(),
            disks: BTreeMap::new(),
            options,
            failures: Arc::default(),
            dir: temp_dir(),
        };
        let voters: Vec<u64> = (1..=n).collect();
        for id in 1..=n {
            cluster.launch(id, &voters);
        }
        cluster
    }

    /// Starts member `id`: from its own storage if it ran before, else brand new with
    /// `initial_voters` (empty for a member joining an existing cluster).
    fn launch(&mut self, id: u64, initial_voters: &[u64]) {
        let disk = self.disks.entry(id).or_insert_with(|| Disk {
            wal: self.dir.path().join(format!("member-{id}")).join("wal"),
            engine: None,
        });
        let config = RaftConfig {
            id,
            initial_voters: initial_voters.to_vec(),
            heartbeat: HEARTBEAT,
            election_timeout: ELECTION,
            snapshot_count: self.options.snapshot_count,
        };
        let store = LogStore::open_with_segments(&disk.wal, None, WAL_SEGMENT).expect("log store");
        let stop = CancellationToken::new();
        let net = self.net.clone();
        let recording = Arc::new(Mutex::new(Recording::default()));
        let mut tasks = Vec::new();
        let (node, handle, kvd) = match self.options.machine {
            Machine::Recorder => {
                let sm = Recorder {
                    state: recording.clone(),
                };
                let image = recording.clone();
                let source: SnapshotSource = Arc::new(move || {
                    let state = image.lock();
                    Ok((state.applied_index, state.encode()))
                });
                let (node, handle) = RaftNode::new(config, store, sm, source, |h| net.transport(h))
                    .expect("raft node");
                (spawn_node(node, stop.clone(), id), handle, None)
            }
            Machine::Kvd => {
                let engine = disk
                    .engine
                    .get_or_insert_with(|| Engine::temporary().expect("engine"))
                    .clone();
                let state = SharedState::load(&engine, min_lease_ttl()).expect("state");
                state.lessor.lock().set_promote_extension(ELECTION);
                let (leader_tx, leader_rx) = tokio::sync::watch::channel((0, 0, false));
                let applier =
                    Applier::new(state.clone(), engine.clone(), leader_tx).expect("applier");
                let durability = applier.durability();
                let (source_state, source_engine) = (state.clone(), engine.clone());
                let source: SnapshotSource = Arc::new(move || {
                    let term = leader_rx.borrow().1;
                    crate::snapshot::image(&source_state, &source_engine, term)
                });
                let (node, handle) =
                    RaftNode::new(config, store, applier, source, |h| net.transport(h))
                        .expect("raft node");
                let core = Core::new(
                    state.clone(),
                    handle.clone(),
                    crate::apply::Persisted::new(engine.clone()),
                    id,
                    CoreSettings {
                        limits: Limits {
                            max_request_bytes: 1536 * 1024,
                            max_txn_ops: 128,
                            quota_bytes: 2 << 30,
                        },
                        request_timeout: Duration::from_secs(5) + 2 * ELECTION,
                        cluster_token: "kvd-sim".into(),
                    },
                    Arc::new(PeerDialer::new(DialConfig {
                        me: id,
                        cluster_id: 0,
                        addresses: Arc::new(|_: u64| Vec::new()),
                        tls: None,
                    })),
                );
                tasks.push(tokio::spawn(state.hub.clone().run_sync(stop.clone())));
                tasks.push(tokio::spawn(crate::api::lease::run_expiry(
                    core.clone(),
                    stop.clone(),
                )));
                tasks.push(tokio::spawn(flush(
                    engine.clone(),
                    durability,
                    stop.clone(),
                )));
                (
                    spawn_node(node, stop.clone(), id),
                    handle,
                    Some(Kvd { core }),
                )
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        self.net.attach(id, tx);
        let inbox = handle.clone();
        let inbox_stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = inbox_stop.cancelled() => return,
                    m = rx.recv() => {
                        let Some(m) = m else { return };
                        if inbox.step(m).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }));
        let failures = self.failures.clone();
        let node = tokio::spawn(async move {
            let outcome = node.await.unwrap_or_else(|e| Err(format!("panicked: {e}")));
            if let Err(e) = &outcome {
                if e != "removed" {
                    failures.lock().push(format!("member {id}: {e}"));
                }
            }
            outcome
        });
        self.members.insert(
            id,
            Member {
                handle,
                recording,
                kvd,
                stop,
                node,
                tasks,
            },
        );
    }

    /// The handle of member `id`.
    ///
    /// # Panics
    /// If it does not run.
    pub fn handle(&self, id: u64) -> &RaftHandle {
        &self.member(id).handle
    }

    /// Member `id`.
    ///
    /// # Panics
    /// If it does not run.
    pub fn member(&self, id: u64) -> &Member {
        self.members
            .get(&id)
            .unwrap_or_else(|| panic!("member {id} does not run"))
    }

    /// The core of kvd member `id`.
    ///
    /// # Panics
    /// If it does not run or is not a kvd member.
    pub fn core(&self, id: u64) -> &Arc<Core> {
        &self.member(id).kvd.as_ref().expect("a kvd member").core
    }

    /// IDs of the running members.
    pub fn ids(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    /// Sets every link to and from `id` (to the running members) to `link`.
    pub fn isolate(&self, id: u64, link: super::network::Link) {
        for other in self.ids() {
            if other != id {
                self.net.set_both(id, other, link);
            }
        }
    }

    /// What recorder member `id` applied so far.
    pub fn applied(&self, id: u64) -> Vec<Applied> {
        self.member(id).recording.lock().log.clone()
    }

    /// Waits (virtual time) until `done` holds.
    ///
    /// # Panics
    /// After [`WAIT`], naming `what`.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {WAIT:?} (virtual) for: {what}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (virtual time) until every member in `among` agrees on one leader that is also
    /// in `among`, and returns it.
    ///
    /// # Panics
    /// After [`WAIT`].
    pub async fn leader_among(&self, among: &[u64]) -> u64 {
        let agreed = |c: &Self| -> Option<u64> {
            let leaders: std::collections::BTreeSet<u64> = among
                .iter()
                .map(|id| c.handle(*id).status().leader)
                .collect();
            let first = leaders.iter().next().copied()?;
            (leaders.len() == 1 && among.contains(&first)).then_some(first)
        };
        self.wait_until(&format!("one leader among {among:?}"), |c| {
            agreed(c).is_some()
        })
        .await;
        agreed(self).expect("agreed leader")
    }

    /// Asks leader `from` to hand leadership to `to`, and waits until every running member
    /// follows `to`.
    ///
    /// # Panics
    /// After [`WAIT`].
    pub async fn transfer_leader(&self, from: u64, to: u64) {
        within(self.handle(from).transfer_leader(to))
            .await
            .expect("transfer requested");
        self.wait_until(&format!("leadership moves from {from} to {to}"), |c| {
            c.ids().iter().all(|id| c.handle(*id).status().leader == to)
        })
        .await;
    }

    /// The leader every running member agrees on.
    ///
    /// # Panics
    /// After [`WAIT`].
    pub async fn leader(&self) -> u64 {
        self.leader_among(&self.ids()).await
    }

    /// Waits until member `id`'s recording satisfies `pred`.
    ///
    /// # Panics
    /// After [`WAIT`].
    pub async fn wait_applied(&self, id: u64, pred: impl Fn(&[Applied]) -> bool) {
        self.wait_until(&format!("member {id} to apply what is expected"), |c| {
            pred(&c.member(id).recording.lock().log)
        })
        .await;
    }

    /// Waits until every member in `among` has applied index `index`.
    ///
    /// # Panics
    /// After [`WAIT`].
    pub async fn wait_index(&self, among: &[u64], index: u64) {
        self.wait_until(&format!("{among:?} to apply index {index}"), |c| {
            among
                .iter()
                .all(|id| c.handle(*id).status().applied >= index)
        })
        .await;
    }

    /// Waits until every running member has applied everything `leader` committed.
    ///
    /// # Panics
    /// After [`WAIT`].
    pub async fn wait_converged(&self) {
        let ids = self.ids();
        self.wait_until("every member to apply the same index", |c| {
            let leader = c.handle(ids[0]).status().leader;
            let Some(l) = c.members.get(&leader) else {
                return false;
            };
            let commit = l.handle.status().commit;
            ids.iter()
                .all(|id| c.handle(*id).status().applied == commit)
        })
        .await;
    }

    /// Proposes `data` through member `id`; returns the fence term.
    ///
    /// # Panics
    /// If raft refuses it or it takes longer than [`WAIT`].
    pub async fn propose(&self, id: u64, data: &[u8]) -> u64 {
        within(self.handle(id).propose(data.to_vec()))
            .await
            .expect("proposal accepted")
    }

    /// Proposes a membership change through member `id` and waits until it is applied there.
    ///
    /// # Panics
    /// If raft refuses it, or after [`WAIT`].
    pub async fn change_members(&self, id: u64, change: MemberChange) {
        let before = self.handle(id).status().last_index;
        within(
            self.handle(id)
                .propose_conf_change(vec![change.clone()], Vec::new()),
        )
        .await
        .expect("configuration change accepted");
        // The change is at an index past the log's end when it was proposed.
        self.wait_until(&format!("{change:?} applied on {id}"), |c| {
            c.members
                .get(&id)
                .is_none_or(|m| m.handle.status().applied > before)
        })
        .await;
    }

    /// Starts member `id`, not yet in the configuration, with an empty log (it joins through a
    /// configuration change and learns the state from a snapshot).
    pub fn add_member(&mut self, id: u64) {
        self.launch(id, &[]);
    }

    /// Stops member `id` (as a process stops: its storage stays) and waits until its tasks
    /// ended.
    ///
    /// # Panics
    /// If it does not run.
    pub async fn stop_member(&mut self, id: u64) {
        let member = self
            .members
            .remove(&id)
            .unwrap_or_else(|| panic!("member {id} does not run"));
        self.net.detach(id);
        member.stop.cancel();
        let _ = within(member.node).await;
        for t in member.tasks {
            let _ = within(t).await;
        }
    }

    /// Starts member `id` again from its own storage (a recorder member starts with an empty
    /// recording and replays its log).
    pub fn restart_member(&mut self, id: u64) {
        assert!(!self.members.contains_key(&id), "member {id} still runs");
        self.launch(id, &[]);
    }

    /// Waits until member `id`'s node task has ended (removed from the cluster) and returns how.
    ///
    /// # Panics
    /// After [`WAIT`].
    pub async fn wait_exited(&mut self, id: u64) -> Result<(), String> {
        self.wait_until(&format!("member {id} to exit"), |c| {
            c.member(id).node.is_finished()
        })
        .await;
        let member = self.members.remove(&id).expect("member");
        self.net.detach(id);
        member.stop.cancel();
        for t in member.tasks {
            let _ = within(t).await;
        }
        member.node.await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Stops every member and fails the scenario if one stopped with an error.
    ///
    /// # Panics
    /// If a member failed.
    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.stop_member(id).await;
        }
        let failures = self.failures.lock().clone();
        assert!(failures.is_empty(), "members failed: {failures:?}");
    }
}

/// etcd's (and the server's) shortest lease TTL for [`HEARTBEAT`] and [`ELECTION`]: 1.5
/// election timeouts, in whole seconds.
pub fn min_lease_ttl() -> i64 {
    let ms = 3 * ELECTION.as_millis() / 2;
    i64::try_from(ms.div_ceil(1000)).unwrap_or(1)
}

/// Awaits `f` for at most [`WAIT`] (virtual).
///
/// # Panics
/// After [`WAIT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("not done within {WAIT:?} (virtual)"))
}

fn spawn_node<S: StateMachine, T: crate::raft::Transport>(
    node: RaftNode<S, T>,
    stop: CancellationToken,
    id: u64,
) -> JoinHandle<Result<(), String>> {
    tokio::spawn(async move {
        let outcome = node.run(stop).await;
        tracing::debug!(
            member = id,
            ok = outcome.is_ok(),
            "simulated member stopped"
        );
        match outcome {
            Ok(()) => Ok(()),
            Err(NodeError::Removed) => Err("removed".into()),
            Err(e) => Err(e.to_string()),
        }
    })
}

/// The server's state flusher, on virtual time: makes what apply wrote durable, so the raft
/// log behind it can be compacted.
async fn flush(engine: Engine, progress: Arc<Durability>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(FLUSH_EVERY) => {}
        }
        let written = progress.written();
        if written > progress.durable() && engine.flush().is_ok() {
            progress.set_durable(written);
        }
    }
}
