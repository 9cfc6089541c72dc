//! The single task that owns raft-rs's `RawNode` and drives it: ticks, proposals, reads,
//! `Ready` handling in the order raft-rs requires, and group commit (one fsync per `Ready`).

use std::collections::HashMap;
use std::time::Duration;

use raft::prelude::{ConfChangeType, ConfChangeV2, Entry, EntryType, Message};
use raft::{Config, RawNode, StateRole};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::log_store::LogBatch;
use super::{
    Committed, LogStore, MemberChange, Progress, ProposeError, SnapshotSource, StateMachine,
};
use crate::storage::StorageError;

/// Static raft settings of one member.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// This member's ID.
    pub id: u64,
    /// The voters of a brand-new cluster (ignored when the log already has state).
    pub initial_voters: Vec<u64>,
    /// Heartbeat interval (one raft tick).
    pub heartbeat: Duration,
    /// Election timeout.
    pub election_timeout: Duration,
    /// Applied entries between log compactions.
    pub snapshot_count: u64,
}

/// What the outside sees of raft.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// This member.
    pub id: u64,
    /// The leader (0 = none known).
    pub leader: u64,
    /// The current term.
    pub term: u64,
    /// The commit index.
    pub commit: u64,
    /// The last applied index.
    pub applied: u64,
    /// The last log index.
    pub last_index: u64,
}

enum Request {
    Propose {
        data: Vec<u8>,
        ack: ProposeAck,
    },
    ReadIndex {
        reply: oneshot::Sender<Result<u64, ProposeError>>,
    },
    TransferLeader {
        to: u64,
    },
    Step(Message),
    ConfChange {
        changes: Vec<MemberChange>,
        context: Vec<u8>,
        ack: oneshot::Sender<Result<(), ProposeError>>,
    },
    Unreachable(u64),
    SnapshotSent {
        to: u64,
        ok: bool,
    },
    Progress {
        reply: oneshot::Sender<HashMap<u64, Progress>>,
    },
}

/// Where raft says whether it accepted a proposal, and with which fence term.
type ProposeAck = oneshot::Sender<Result<u64, ProposeError>>;

/// A cloneable handle to the raft task.
#[derive(Clone)]
pub struct RaftHandle {
    tx: mpsc::Sender<Request>,
    status: watch::Receiver<RaftStatus>,
    applied: watch::Receiver<u64>,
    leader: watch::Receiver<(u64, u64)>,
}

impl RaftHandle {
    /// Appends `data` to the log (through the leader). Resolves once raft accepted the proposal,
    /// with the proposal's *fence term*: the term this member was in when it proposed. The
    /// entry takes effect only if it reaches the log in that same term; a copy that reaches a
    /// later leader (a forwarded proposal delivered late) is applied as
    /// [`super::Committed::Fenced`], a no-op. So once a leader of a later term has committed an
    /// entry and this member has applied up to it, a proposal not applied by then never will
    /// be, and may safely be made again. The outcome arrives when the entry is applied.
    ///
    /// # Errors
    /// [`ProposeError::Stopped`] when the node is gone, [`ProposeError::NoLeader`].
    pub async fn propose(&self, data: Vec<u8>) -> Result<u64, ProposeError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::Propose { data, ack })
            .await
            .map_err(|_| ProposeError::Stopped)?;
        rx.await.map_err(|_| ProposeError::Stopped)?
    }

    /// A linearizable read point: resolves once this member has applied everything committed
    /// before the call, and returns that index.
    ///
    /// # Errors
    /// No leader, timeout, or the node stopped.
    pub async fn read_index(&self) -> Result<u64, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::ReadIndex { reply })
            .await
            .map_err(|_| ProposeError::Stopped)?;
        let index = rx.await.map_err(|_| ProposeError::Stopped)??;
        self.wait_applied(index).await?;
        Ok(index)
    }

    /// Waits until the applied index reaches `index`.
    ///
    /// # Errors
    /// [`ProposeError::Stopped`] if the node stops first.
    pub async fn wait_applied(&self, index: u64) -> Result<(), ProposeError> {
        let mut applied = self.applied.clone();
        applied
            .wait_for(|a| *a >= index)
            .await
            .map_err(|_| ProposeError::Stopped)?;
        Ok(())
    }

    /// Proposes a membership change; resolves once raft accepted it.
    ///
    /// # Errors
    /// No leader, another change still pending, or the node stopped.
    pub async fn propose_conf_change(
        &self,
        changes: Vec<MemberChange>,
        context: Vec<u8>,
    ) -> Result<(), ProposeError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::ConfChange {
                changes,
                context,
                ack,
            })
            .await
            .map_err(|_| ProposeError::Stopped)?;
        rx.await.map_err(|_| ProposeError::Stopped)?
    }

    /// Replication progress of every member (empty unless this member leads).
    ///
    /// # Errors
    /// [`ProposeError::Stopped`].
    pub async fn progress(&self) -> Result<HashMap<u64, Progress>, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Progress { reply })
            .await
            .map_err(|_| ProposeError::Stopped)?;
        rx.await.map_err(|_| ProposeError::Stopped)
    }

    /// Tells raft that `to` could not be reached.
    pub async fn report_unreachable(&self, to: u64) {
        let _ = self.tx.send(Request::Unreachable(to)).await;
    }

    /// Tells raft whether a snapshot reached `to`.
    pub async fn report_snapshot(&self, to: u64, ok: bool) {
        let _ = self.tx.send(Request::SnapshotSent { to, ok }).await;
    }

    /// Asks the leader to hand leadership to `to`.
    ///
    /// # Errors
    /// [`ProposeError::Stopped`].
    pub async fn transfer_leader(&self, to: u64) -> Result<(), ProposeError> {
        self.tx
            .send(Request::TransferLeader { to })
            .await
            .map_err(|_| ProposeError::Stopped)
    }

    /// Delivers a message from a peer.
    ///
    /// # Errors
    /// [`ProposeError::Stopped`].
    pub async fn step(&self, msg: Message) -> Result<(), ProposeError> {
        self.tx
            .send(Request::Step(msg))
            .await
            .map_err(|_| ProposeError::Stopped)
    }

    /// A receiver of (leader, term), changing only when either changes.
    pub fn leader_watch(&self) -> watch::Receiver<(u64, u64)> {
        self.leader.clone()
    }

    /// The latest status.
    pub fn status(&self) -> RaftStatus {
        *self.status.borrow()
    }

    /// A receiver that changes whenever the status does.
    pub fn status_watch(&self) -> watch::Receiver<RaftStatus> {
        self.status.clone()
    }

    /// Waits until some leader is known, at most `timeout`.
    ///
    /// # Errors
    /// [`ProposeError::NoLeader`] after the timeout.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<u64, ProposeError> {
        let mut st = self.status.clone();
        let waited = tokio::time::timeout(timeout, async {
            st.wait_for(|s| s.leader != 0).await.map(|s| s.leader)
        })
        .await;
        match waited {
            Ok(Ok(leader)) => Ok(leader),
            Ok(Err(_)) => Err(ProposeError::Stopped),
            Err(_) => Err(ProposeError::NoLeader),
        }
    }
}

/// Where outgoing raft messages go (the peer transport, or nowhere for a single member).
pub trait Transport: Send + 'static {
    /// Sends messages to their `to` members; never blocks.
    fn send(&mut self, msgs: Vec<Message>);
}

struct PendingRead {
    replies: Vec<oneshot::Sender<Result<u64, ProposeError>>>,
    issued_tick: u64,
}

/// The raft task.
pub struct RaftNode<S: StateMachine, T: Transport> {
    raw: RawNode<LogStore>,
    store: LogStore,
    sm: S,
    transport: T,
    rx: mpsc::Receiver<Request>,
    status_tx: watch::Sender<RaftStatus>,
    leader_tx: watch::Sender<(u64, u64)>,
    applied_tx: watch::Sender<u64>,
    config: RaftConfig,
    waiting_for_leader: Vec<(Vec<u8>, ProposeAck)>,
    reads: HashMap<Vec<u8>, PendingRead>,
    new_reads: Vec<oneshot::Sender<Result<u64, ProposeError>>>,
    read_seq: u64,
    ticks: u64,
    leader: u64,
}

fn slog_logger() -> slog::Logger {
    slog::Logger::root(SlogToTracing, slog::o!())
}

/// Forwards raft-rs's slog records to tracing.
struct SlogToTracing;

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                error!(target: "raft", "{}", record.msg())
            }
            slog::Level::Warning => warn!(target: "raft", "{}", record.msg()),
            slog::Level::Info => info!(target: "raft", "{}", record.msg()),
            _ => debug!(target: "raft", "{}", record.msg()),
        }
        Ok(())
    }
}

/// Errors that stop the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// raft-rs refused its configuration or state.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// This member was removed from the cluster.
    #[error("the member has been permanently removed from the cluster")]
    Removed,
}

impl<S: StateMachine, T: Transport> RaftNode<S, T> {
    /// Creates the node and its handle. A brand-new log is bootstrapped with the initial voters.
    ///
    /// # Errors
    /// Storage failure or a configuration raft-rs refuses.
    pub fn new(
        config: RaftConfig,
        store: LogStore,
        sm: S,
        snapshot_source: SnapshotSource,
        make_transport: impl FnOnce(RaftHandle) -> T,
    ) -> Result<(Self, RaftHandle), NodeError> {
        if store.is_empty() && !config.initial_voters.is_empty() {
            let cs = raft::prelude::ConfState {
                voters: config.initial_voters.clone(),
                ..Default::default()
            };
            let mut batch = LogBatch::default();
            store.bootstrap(&cs, &mut batch);
            store.write(batch);
            store.sync()?;
        }
        store.set_snapshot_source(snapshot_source);
        let applied_before = sm.applied_index();
        if applied_before > store.last_index() {
            // A crash after a snapshot from the leader replaced the state but before the log
            // recorded it: record it now, from what the state machine stored with it.
            let meta = sm
                .snapshot_meta()
                .and_then(|bytes| super::decode_snapshot_meta(&bytes))
                .filter(|m| m.index == applied_before)
                .ok_or_else(|| StorageError::Corrupt {
                    what: "raft log".into(),
                    detail: format!(
                        "the state is at index {applied_before}, past the log's last index {}, without the snapshot it came from",
                        store.last_index()
                    ),
                })?;
            let mut snap = raft::prelude::Snapshot::default();
            snap.set_metadata(meta);
            let mut batch = LogBatch::default();
            store.apply_snapshot(&snap, &mut batch);
            store.write(batch);
            store.sync()?;
        }
        // Everything applied was committed: a commit index recorded below it (it is synced
        // lazily) is raised, as raft-rs requires applied <= committed.
        if store.hard_state().commit < applied_before {
            let mut batch = LogBatch::default();
            store.set_commit(applied_before, &mut batch);
            store.write(batch);
            store.sync()?;
        }
        let heartbeat_ms = config.heartbeat.as_millis().max(1);
        let election_ticks =
            usize::try_from((config.election_timeout.as_millis() / heartbeat_ms).max(2))
                .unwrap_or(10);
        let applied = sm.applied_index();
        let raft_config = Config {
            id: config.id,
            election_tick: election_ticks,
            heartbeat_tick: 1,
            applied,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            pre_vote: true,
            check_quorum: true,
            ..Default::default()
        };
        raft_config.validate()?;
        let raw = RawNode::new(&raft_config, store.clone(), &slog_logger())?;
        let (tx, rx) = mpsc::channel(4096);
        let status = RaftStatus {
            id: config.id,
            applied,
            ..Default::default()
        };
        let (status_tx, status_rx) = watch::channel(status);
        let (leader_tx, leader_rx) = watch::channel((0, 0));
        let (applied_tx, applied_rx) = watch::channel(applied);
        let handle = RaftHandle {
            tx,
            status: status_rx,
            applied: applied_rx,
            leader: leader_rx,
        };
        let transport = make_transport(handle.clone());
        let node = Self {
            raw,
            store,
            sm,
            transport,
            rx,
            status_tx,
            leader_tx,
            applied_tx,
            config,
            waiting_for_leader: Vec::new(),
            reads: HashMap::new(),
            new_reads: Vec::new(),
            read_seq: 0,
            ticks: 0,
            leader: 0,
        };
        Ok((node, handle))
    }

    /// Runs until `shutdown` is cancelled or storage fails.
    ///
    /// # Errors
    /// A storage failure (the member must stop).
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), NodeError> {
        let voters = self.store.conf_state().voters;
        if voters == [self.config.id] {
            // A lone voter need not wait out an election timeout.
            self.raw.campaign()?;
        }
        let mut ticker = tokio::time::interval(self.config.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => self.tick(),
                req = self.rx.recv() => {
                    let Some(req) = req else { break };
                    self.handle(req);
                    // Group commit: take whatever else is queued before handling the Ready.
                    for _ in 0..4096 {
                        match self.rx.try_recv() {
                            Ok(req) => self.handle(req),
                            Err(_) => break,
                        }
                    }
                }
            }
            self.issue_reads();
            self.on_ready()?;
            if !self.new_reads.is_empty() && self.reads.is_empty() {
                // That Ready answered the round in flight: the reads waiting behind it go now.
                self.issue_reads();
                self.on_ready()?;
            }
            self.update_leader();
        }
        self.fail_all(ProposeError::Stopped);
        Ok(())
    }

    fn tick(&mut self) {
        self.ticks += 1;
        self.raw.tick();
        // ReadIndex requests can be dropped silently (a new leader, no leader): re-issue old ones.
        let election = self.raw.raft.election_timeout() as u64;
        let stale: Vec<Vec<u8>> = self
            .reads
            .iter()
            .filter(|(_, r)| self.ticks - r.issued_tick >= election)
            .map(|(ctx, _)| ctx.clone())
            .collect();
        for ctx in stale {
            if let Some(r) = self.reads.get_mut(&ctx) {
                r.issued_tick = self.ticks;
                if self.leader != 0 {
                    self.raw.read_index(ctx);
                }
            }
        }
    }

    fn handle(&mut self, req: Request) {
        match req {
            Request::Propose { data, ack } => self.propose(data, ack),
            Request::ReadIndex { reply } => self.new_reads.push(reply),
            Request::ConfChange {
                changes,
                context,
                ack,
            } => {
                let result = self.propose_conf_change(changes, context);
                let _ = ack.send(result);
            }
            Request::Unreachable(to) => self.raw.report_unreachable(to),
            Request::SnapshotSent { to, ok } => {
                let status = if ok {
                    raft::SnapshotStatus::Finish
                } else {
                    raft::SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
            Request::Progress { reply } => {
                let mut out = HashMap::new();
                if self.raw.raft.state == StateRole::Leader {
                    for (id, pr) in self.raw.raft.prs().iter() {
                        out.insert(
                            *id,
                            Progress {
                                matched: pr.matched,
                                recent_active: pr.recent_active,
                            },
                        );
                    }
                }
                let _ = reply.send(out);
            }
            Request::TransferLeader { to } => self.raw.transfer_leader(to),
            Request::Step(msg) => {
                if let Err(e) = self.raw.step(msg) {
                    debug!(error = %e, "dropped raft message");
                }
            }
        }
    }

    fn propose(&mut self, data: Vec<u8>, ack: ProposeAck) {
        if self.leader == 0 {
            self.waiting_for_leader.push((data, ack));
            return;
        }
        // The entry's context carries the fence term (see `RaftHandle::propose`): a leader
        // appends at its current term, and a follower's term is its leader's.
        let fence = self.raw.raft.term;
        let result = self
            .raw
            .propose(fence.to_be_bytes().to_vec(), data)
            .map(|()| fence)
            .map_err(|_| ProposeError::NoLeader);
        let _ = ack.send(result);
    }

    fn propose_conf_change(
        &mut self,
        changes: Vec<MemberChange>,
        context: Vec<u8>,
    ) -> Result<(), ProposeError> {
        use raft::prelude::ConfChangeSingle;
        if self.leader == 0 {
            return Err(ProposeError::NoLeader);
        }
        let mut cc = ConfChangeV2::default();
        for c in changes {
            let mut single = ConfChangeSingle::default();
            let (kind, id) = match c {
                MemberChange::AddVoter(id) => (ConfChangeType::AddNode, id),
                MemberChange::AddLearner(id) => (ConfChangeType::AddLearnerNode, id),
                MemberChange::Remove(id) => (ConfChangeType::RemoveNode, id),
            };
            single.set_change_type(kind);
            single.node_id = id;
            cc.mut_changes().push(single);
        }
        cc.context = context.into();
        self.raw.propose_conf_change(Vec::new(), cc).map_err(|e| {
            debug!(error = %e, "configuration change refused");
            ProposeError::Busy
        })
    }

    /// Starts a read index round for the reads waiting for one.
    ///
    /// As etcd: while a round issued in this tick is unanswered, new reads wait and share the
    /// next round (each round costs a heartbeat to every follower and back), which starts as
    /// soon as that one is answered. A round left unanswered for a tick (a lost message) no
    /// longer holds the next one back.
    fn issue_reads(&mut self) {
        if self.new_reads.is_empty() || self.reads.values().any(|r| r.issued_tick == self.ticks) {
            return;
        }
        self.read_seq += 1;
        let ctx = self.read_seq.to_be_bytes().to_vec();
        let replies = std::mem::take(&mut self.new_reads);
        self.reads.insert(
            ctx.clone(),
            PendingRead {
                replies,
                issued_tick: self.ticks,
            },
        );
        if self.leader != 0 {
            self.raw.read_index(ctx);
        }
    }

    fn update_leader(&mut self) {
        let leader = self.raw.raft.leader_id;
        let term = self.raw.raft.term;
        if leader != self.leader {
            self.leader = leader;
            let is_self = self.raw.raft.state == StateRole::Leader;
            info!(
                leader = format!("{leader:x}"),
                term, is_self, "raft leader changed"
            );
            self.sm.on_leader_change(leader, term, is_self);
            if leader != 0 {
                for (data, ack) in std::mem::take(&mut self.waiting_for_leader) {
                    // A caller that gave up was told its write failed: it must not apply later.
                    if !ack.is_closed() {
                        self.propose(data, ack);
                    }
                }
                // As etcd: a read waiting for its read index when a (new) leader appears is
                // answered with a retryable `leader changed`; the old leader's answer may never come.
                for (_, r) in self.reads.drain() {
                    for reply in r.replies {
                        let _ = reply.send(Err(ProposeError::LeaderChanged));
                    }
                }
            }
        }
        self.leader_tx.send_if_modified(|lt| {
            if *lt == (leader, term) {
                false
            } else {
                *lt = (leader, term);
                true
            }
        });
        let hs = self.raw.raft.hard_state();
        let status = RaftStatus {
            id: self.config.id,
            leader,
            term,
            commit: hs.commit,
            applied: self.sm.applied_index(),
            last_index: self.store.last_index(),
        };
        self.status_tx.send_if_modified(|s| {
            if *s == status {
                false
            } else {
                *s = status;
                true
            }
        });
    }

    fn on_ready(&mut self) -> Result<(), NodeError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        if !ready.messages().is_empty() {
            self.transport.send(ready.take_messages());
        }
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            let index = snap.get_metadata().index;
            info!(
                index,
                bytes = snap.get_data().len(),
                "installing snapshot from the leader"
            );
            crate::kvd_crash_point!("snapshot::before_install");
            // The state first, durably, with the snapshot's raft metadata; then the log. A
            // crash in between leaves a state past the log, which the next start repairs.
            let meta = super::encode_snapshot_meta(snap.get_metadata());
            self.sm.restore(index, snap.get_data(), &meta)?;
            crate::kvd_crash_point!("snapshot::after_install");
            let mut batch = LogBatch::default();
            self.store.apply_snapshot(&snap, &mut batch);
            self.store.write(batch);
            self.store.sync()?;
            let _ = self.applied_tx.send(self.sm.applied_index());
        }
        for rs in ready.take_read_states() {
            if let Some(pending) = self.reads.remove(&rs.request_ctx) {
                for reply in pending.replies {
                    let _ = reply.send(Ok(rs.index));
                }
            }
        }
        let committed = ready.take_committed_entries();
        let mut batch = LogBatch::default();
        // As etcd's WAL: only new entries, a new term or a new vote must be durable before
        // the messages that depend on them go out; a commit index alone need not be (it is
        // learnt again from the leader, and raised to the applied index on start).
        let mut must_sync = false;
        if !ready.entries().is_empty() {
            self.store.append(ready.entries(), &mut batch);
            must_sync = true;
        }
        if let Some(hs) = ready.hs() {
            let before = self.store.hard_state();
            must_sync |= hs.term != before.term || hs.vote != before.vote;
            self.store.set_hard_state(hs, &mut batch);
        }
        crate::kvd_crash_point!("raft::before_persist");
        self.store.write(batch);
        // Committed entries are already durable here (raft-rs hands out only persisted ones),
        // so applying them overlaps nothing that must come first.
        self.apply(committed)?;
        if must_sync {
            // Durable before anything that depends on it is sent or acknowledged.
            self.store.sync()?;
        }
        crate::kvd_crash_point!("raft::after_persist");
        if !ready.persisted_messages().is_empty() {
            self.transport.send(ready.take_persisted_messages());
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut batch = LogBatch::default();
            self.store.set_commit(commit, &mut batch);
            self.store.write(batch);
        }
        self.transport.send(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(committed)?;
        self.raw.advance_apply();
        self.maybe_compact_log()?;
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(entries.len());
        for mut e in entries {
            match e.get_entry_type() {
                EntryType::EntryNormal if is_fenced(&e) => out.push(Committed::Fenced {
                    index: e.index,
                    data: e.take_data().to_vec(),
                }),
                EntryType::EntryNormal => out.push(Committed::Normal {
                    index: e.index,
                    data: e.take_data().to_vec(),
                }),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let cc = decode_conf_change(&e);
                    let cs = self.raw.apply_conf_change(&cc)?;
                    let mut batch = LogBatch::default();
                    self.store.set_conf_state(&cs, &mut batch);
                    self.store.write(batch);
                    // Durable before the state machine could make this entry's application
                    // durable: a restart must not find the entry applied but the old
                    // configuration recorded.
                    self.store.sync()?;
                    let changes = cc
                        .changes
                        .iter()
                        .map(|c| match c.get_change_type() {
                            ConfChangeType::AddNode => MemberChange::AddVoter(c.node_id),
                            ConfChangeType::AddLearnerNode => MemberChange::AddLearner(c.node_id),
                            ConfChangeType::RemoveNode => MemberChange::Remove(c.node_id),
                        })
                        .collect();
                    out.push(Committed::ConfChange {
                        index: e.index,
                        changes,
                        context: cc.context.to_vec(),
                    });
                }
            }
        }
        let alone = out
            .iter()
            .any(|c| matches!(c, Committed::ConfChange { .. }))
            && self.store.conf_state().voters == [self.config.id];
        let removed = out.iter().any(|c| {
            matches!(c, Committed::ConfChange { changes, .. } if changes.contains(&MemberChange::Remove(self.config.id)))
        });
        self.sm.apply(out)?;
        let _ = self.applied_tx.send(self.sm.applied_index());
        if removed {
            return Err(NodeError::Removed);
        }
        if alone && self.raw.raft.state != StateRole::Leader {
            // The only voter left (the others were removed, or --force-new-cluster): no need
            // to wait out an election timeout.
            self.raw.campaign()?;
        }
        Ok(())
    }

    /// Drops log entries the state backend holds durably, keeping a tail for followers that
    /// are slightly behind, and deletes WAL segments nothing needs any more.
    fn maybe_compact_log(&mut self) -> Result<(), NodeError> {
        let applied = self.sm.applied_index();
        let snap = self.store.snapshot_index();
        let every = self.config.snapshot_count.clamp(1, MAX_LOG_ENTRIES);
        if applied.saturating_sub(snap) <= every {
            return Ok(());
        }
        // etcd keeps 5000 entries for followers that are slightly behind.
        let keep = 5000u64.min(self.config.snapshot_count);
        // Entries the state backend has not made durable are replayed from the WAL after a
        // crash: they stay.
        let upto = applied.saturating_sub(keep).min(self.sm.durable_index());
        if upto > snap {
            let mut batch = LogBatch::default();
            self.store.compact(upto, &mut batch);
            self.store.write(batch);
            self.store.sync()?;
            let purged = self.store.purge()?;
            debug!(upto, purged, "raft log compacted");
        }
        Ok(())
    }

    fn fail_all(&mut self, err: ProposeError) {
        for (_, ack) in self.waiting_for_leader.drain(..) {
            let _ = ack.send(Err(err.clone()));
        }
        for (_, r) in self.reads.drain() {
            for reply in r.replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
        for reply in self.new_reads.drain(..) {
            let _ = reply.send(Err(err.clone()));
        }
    }
}

/// True for an entry proposed in another term than the one it was appended in: a proposal
/// forwarded to a leader of an earlier term and delivered to a later one. Every member decides
/// alike from the entry alone. Entries without a fence term (the leader's empty entry, logs
/// written before fence terms existed) are never fenced.
pub(super) fn is_fenced(e: &Entry) -> bool {
    <[u8; 8]>::try_from(e.get_context()).is_ok_and(|fence| u64::from_be_bytes(fence) != e.term)
}

/// Entries applied since the last compaction after which the log is compacted even with a
/// larger `--snapshot-count` (kvd's state backend holds the rest, so keeping more in memory
/// only costs memory).
const MAX_LOG_ENTRIES: u64 = 10_000;

/// The configuration change an entry carries (a V1 change as a one-change V2).
pub(super) fn decode_conf_change(e: &Entry) -> ConfChangeV2 {
    use protobuf::Message as _;
    use raft::prelude::{ConfChange, ConfChangeSingle};
    let mut v2 = ConfChangeV2::default();
    if e.get_entry_type() == EntryType::EntryConfChangeV2 {
        if v2.merge_from_bytes(e.get_data()).is_ok() {
            return v2;
        }
        return ConfChangeV2::default();
    }
    let mut cc = ConfChange::default();
    if cc.merge_from_bytes(e.get_data()).is_ok() {
        let mut single = ConfChangeSingle::default();
        single.set_change_type(cc.get_change_type());
        single.node_id = cc.node_id;
        v2.mut_changes().push(single);
        v2.context = cc.context;
    }
    v2
}
