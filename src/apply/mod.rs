//! The state machine raft drives: decodes each committed [`Command`] and applies it to MVCC, the
//! lessor, alarms and membership, in one storage batch per group of entries together with the
//! applied index. Then it hands events to the watch hub and results to the waiting proposer.

mod alarms;
mod auth;
mod persisted;
mod state;
mod waiters;

pub use alarms::Alarms;
pub use persisted::Persisted;
pub use state::{read_applied_index, write_applied_index, write_snapshot_meta, SharedState};
pub use waiters::{ApplyResponse, ApplyResult, Waiters};

use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use prost::Message;
use thiserror::Error;
use tracing::{info, warn};

use crate::cluster::{Member, Membership};
use crate::lease::{LeaseError, Lessor};
use crate::mvcc::{self, Event, MvccError, MvccStore, WriteTxn};
use crate::proto::etcdserverpb::{
    alarm_request::AlarmAction, AlarmMember, AlarmResponse, CompactionResponse, LeaseGrantResponse,
    LeaseRevokeResponse, ResponseHeader, TxnRequest,
};
use crate::proto::kvdpb::ConfChangeContext;
use crate::proto::kvdpb::{command::Op, Command};
use crate::raft::{Committed, MemberChange, StateMachine};
use crate::storage::{Engine, StateBatch, StorageError};
use crate::watch::WatchHub;

/// The applied index as older kvd versions stored it (read when there is no commit record).
const APPLIED_INDEX: &[u8] = b"m/applied_index";
/// raft's metadata of the snapshot the state was last restored from.
const SNAPSHOT_META: &[u8] = b"m/raft_snapshot_meta";

/// Why a command was refused when applied (deterministic: every member refuses it alike).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The revision asked for was compacted.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// The revision asked for is past the current one.
    #[error("mvcc: required revision is a future revision")]
    FutureRev,
    /// The key does not exist.
    #[error("mvcc: key not found")]
    KeyNotFound,
    /// The lease does not exist.
    #[error("lease not found")]
    LeaseNotFound,
    /// A lease refusal.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// The command could not be decoded.
    #[error("malformed command")]
    Malformed,
    /// No member with that ID.
    #[error("member not found")]
    MemberNotFound,
    /// Refused by the auth store.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The proposal reached the log in a later term than it was made in and had no effect
    /// (see [`crate::raft::RaftHandle::propose`]); its proposer may propose it again.
    #[error("proposal fenced by a leader change")]
    Fenced,
}

fn refuse(e: MvccError) -> Result<ApplyError, StorageError> {
    Ok(match e {
        MvccError::Compacted => ApplyError::Compacted,
        MvccError::FutureRev => ApplyError::FutureRev,
        MvccError::KeyNotFound => ApplyError::KeyNotFound,
        MvccError::LeaseNotFound => ApplyError::LeaseNotFound,
        MvccError::Storage(s) => return Err(s),
    })
}

/// Applies committed entries; implements raft's [`StateMachine`].
pub struct Applier {
    state: SharedState,
    engine: Engine,
    applied_index: u64,
    leader_tx: tokio::sync::watch::Sender<(u64, u64, bool)>,
    progress: Arc<Durability>,
}

/// How far the state backend got: the applied index written to it, and the one a flush made
/// durable. The background flusher moves the second up to the first.
#[derive(Debug, Default)]
pub struct Durability {
    written: std::sync::atomic::AtomicU64,
    durable: std::sync::atomic::AtomicU64,
}

impl Durability {
    /// Both at `index` (what the backend holds after a restart or a flush).
    pub fn at(index: u64) -> Self {
        Self {
            written: index.into(),
            durable: index.into(),
        }
    }

    /// The applied index written to the backend.
    pub fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The applied index the backend holds durably.
    pub fn durable(&self) -> u64 {
        self.durable.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set_written(&self, index: u64) {
        self.written
            .store(index, std::sync::atomic::Ordering::Release);
    }

    /// Records that a flush started when `index` was written has finished.
    pub fn set_durable(&self, index: u64) {
        self.durable
            .fetch_max(index, std::sync::atomic::Ordering::AcqRel);
    }
}

/// How often the flusher looks at free space (it must see a disk filling up before the state
/// backend's next write does).
const SPACE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Flushes the state backend every `every` until `stop`, so that the raft log behind what it
/// holds can be compacted, and watches free space meanwhile (releasing the ballast before the
/// backend could meet a full disk); a last flush on the way out.
pub fn run_flusher(
    engine: Engine,
    progress: Arc<Durability>,
    every: std::time::Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let space = engine.space();
    let flush = || {
        if let Some(s) = &space {
            s.check();
        }
        let written = progress.written();
        if written > progress.durable() {
            match engine.flush() {
                Ok(()) => progress.set_durable(written),
                Err(e) => warn!(error = %e, "flushing the state backend failed"),
            }
        }
    };
    let mut last_flush = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        std::thread::park_timeout(SPACE_CHECK_INTERVAL.min(every));
        if last_flush.elapsed() >= every {
            flush();
            last_flush = Instant::now();
        } else if let Some(s) = &space {
            s.check();
        }
    }
    flush();
}

impl Applier {
    /// An applier over `state`, resuming after the persisted applied index.
    ///
    /// # Errors
    /// Storage failure.
    pub fn new(
        state: SharedState,
        engine: Engine,
        leader_tx: tokio::sync::watch::Sender<(u64, u64, bool)>,
    ) -> Result<Self, StorageError> {
        let applied_index = read_applied_index(&engine)?;
        Ok(Self {
            state,
            engine,
            applied_index,
            leader_tx,
            progress: Arc::new(Durability::at(applied_index)),
        })
    }

    /// How far the state backend got (for the background flusher).
    pub fn durability(&self) -> Arc<Durability> {
        self.progress.clone()
    }

    fn apply_command(
        &self,
        mvcc: &mut MvccStore,
        batch: &mut StateBatch,
        events: &mut Vec<(i64, Vec<Event>)>,
        cmd: Command,
        index: u64,
    ) -> Result<ApplyResult, StorageError> {
        let Some(op) = cmd.op else {
            return Ok(Ok(ApplyResponse::Empty));
        };
        if let Some(refused) = auth::refusal(&self.state, cmd.auth.as_ref(), &op) {
            return Ok(Err(refused));
        }
        let outcome = match op {
            op if auth::is_auth_command(&op) => auth::apply(&self.state, op, index, batch),
            Op::Put(p) => {
                if p.lease != 0 && !p.ignore_lease && !self.state.lessor.lock().exists(p.lease) {
                    return Ok(Err(ApplyError::LeaseNotFound));
                }
                self.write(mvcc, batch, events, |txn| {
                    mvcc::put(txn, &p).map(ApplyResponse::Put)
                })?
            }
            Op::DeleteRange(d) => self.write(mvcc, batch, events, |txn| {
                mvcc::delete_range(txn, &d).map(ApplyResponse::DeleteRange)
            })?,
            Op::Txn(t) => self.apply_txn(mvcc, batch, events, &t)?,
            Op::Compaction(c) => match mvcc.compact(c.revision, batch) {
                Ok(()) => Ok(ApplyResponse::Compaction(CompactionResponse {
                    header: header(mvcc.current_rev()),
                })),
                Err(e) => Err(refuse(e)?),
            },
            Op::LeaseGrant(g) => {
                let now = crate::lease::now();
                match self.state.lessor.lock().grant(g.id, g.ttl, now) {
                    Ok(ttl) => {
                        crate::lease::persist::record_grant(batch, g.id, ttl);
                        Ok(ApplyResponse::LeaseGrant(LeaseGrantResponse {
                            header: header(mvcc.current_rev()),
                            id: g.id,
                            ttl,
                            error: String::new(),
                        }))
                    }
                    Err(e) => Err(ApplyError::Lease(e)),
                }
            }
            Op::LeaseRevoke(r) => {
                let revoked = self.state.lessor.lock().revoke(r.id);
                match revoked {
                    Ok(lease) => {
                        crate::lease::persist::record_revoke(batch, r.id);
                        let keys: Vec<Vec<u8>> = lease.keys.into_iter().collect();
                        self.write(mvcc, batch, events, |txn| {
                            for k in &keys {
                                txn.delete_range(k, b"")?;
                            }
                            Ok(ApplyResponse::LeaseRevoke(LeaseRevokeResponse {
                                header: None,
                            }))
                        })?
                    }
                    Err(e) => Err(ApplyError::Lease(e)),
                }
            }
            Op::Alarm(a) => {
                let mut alarms = self.state.alarms.write();
                let action = AlarmAction::try_from(a.action).unwrap_or(AlarmAction::Get);
                let member = AlarmMember {
                    member_id: a.member_id,
                    alarm: a.alarm,
                };
                let list = match action {
                    AlarmAction::Get => alarms.list(),
                    AlarmAction::Activate => {
                        if alarms.activate(member, batch) {
                            warn!(
                                alarm = a.alarm,
                                member = format!("{:x}", a.member_id),
                                "alarm raised"
                            );
                        }
                        vec![member]
                    }
                    AlarmAction::Deactivate => {
                        if alarms.deactivate(&member, batch) {
                            info!(alarm = a.alarm, "alarm disarmed");
                            vec![member]
                        } else {
                            Vec::new()
                        }
                    }
                };
                Ok(ApplyResponse::Alarm(AlarmResponse {
                    header: header(mvcc.current_rev()),
                    alarms: list,
                }))
            }
            Op::MemberAttributes(attrs) => {
                let mut membership = self.state.membership.write();
                if let Some(m) = membership.members.get(&attrs.member_id).cloned() {
                    let updated = Member {
                        name: attrs.name,
                        client_urls: attrs.client_urls,
                        ..m
                    };
                    membership.upsert(updated, batch);
                }
                Ok(ApplyResponse::Empty)
            }
            Op::MemberUpdate(u) => {
                let mut membership = self.state.membership.write();
                match membership.members.get(&u.member_id).cloned() {
                    Some(m) => {
                        membership.upsert(
                            Member {
                                peer_urls: u.peer_urls,
                                ..m
                            },
                            batch,
                        );
                        Ok(ApplyResponse::Members(membership.to_pb()))
                    }
                    None => Err(ApplyError::MemberNotFound),
                }
            }
            Op::Noop(_) | Op::LeaseCheckpoint(_) => Ok(ApplyResponse::Empty),
            _ => Ok(ApplyResponse::Empty),
        };
        Ok(outcome)
    }

    fn write(
        &self,
        mvcc: &mut MvccStore,
        batch: &mut StateBatch,
        events: &mut Vec<(i64, Vec<Event>)>,
        f: impl FnOnce(&mut WriteTxn<'_>) -> mvcc::Result<ApplyResponse>,
    ) -> Result<ApplyResult, StorageError> {
        let mut txn = mvcc.write(batch);
        let result = f(&mut txn);
        let (evs, lease_changes) = txn.finish();
        let response = match result {
            Ok(r) => r,
            Err(e) => return Ok(Err(refuse(e)?)),
        };
        if !lease_changes.is_empty() {
            let mut lessor = self.state.lessor.lock();
            for c in lease_changes {
                lessor.attach(&c.key, c.old_lease, c.new_lease);
            }
        }
        if !evs.is_empty() {
            events.push((mvcc.current_rev(), evs));
        }
        Ok(Ok(response))
    }

    fn apply_txn(
        &self,
        mvcc: &mut MvccStore,
        batch: &mut StateBatch,
        events: &mut Vec<(i64, Vec<Event>)>,
        t: &TxnRequest,
    ) -> Result<ApplyResult, StorageError> {
        let path = match mvcc::compare_path(&*mvcc, t) {
            Ok(p) => p,
            Err(e) => return Ok(Err(refuse(e)?)),
        };
        let lessor = self.state.lessor.clone();
        let exists = move |id: i64| lessor.lock().exists(id);
        if let Err(e) = mvcc::check_txn_requests(&*mvcc, t, &path, &exists) {
            return Ok(Err(refuse(e)?));
        }
        self.write(mvcc, batch, events, |txn| {
            mvcc::run_txn(txn, t, &path).map(|o| ApplyResponse::Txn(o.response))
        })
    }
}

impl Applier {
    /// Mirrors a committed raft configuration change in the member list; returns the proposal
    /// ID from its context and the member list after it.
    fn apply_conf_change(
        &self,
        changes: &[MemberChange],
        context: &[u8],
        batch: &mut StateBatch,
    ) -> (u64, Vec<crate::proto::etcdserverpb::Member>) {
        let ctx = ConfChangeContext::decode(context).unwrap_or_default();
        let mut membership = self.state.membership.write();
        for change in changes {
            match *change {
                MemberChange::AddVoter(id) | MemberChange::AddLearner(id) => {
                    let is_learner = matches!(change, MemberChange::AddLearner(_));
                    let member = match membership.members.get(&id).cloned() {
                        Some(existing) => Member {
                            is_learner,
                            ..existing
                        },
                        None => Member {
                            id,
                            name: ctx.name.clone(),
                            peer_urls: ctx.peer_urls.clone(),
                            client_urls: Vec::new(),
                            is_learner,
                        },
                    };
                    info!(
                        member = format!("{id:x}"),
                        is_learner, "member added to the configuration"
                    );
                    membership.upsert(member, batch);
                }
                MemberChange::Remove(id) => {
                    info!(
                        member = format!("{id:x}"),
                        "member removed from the configuration"
                    );
                    membership.remove(id, batch);
                }
            }
        }
        (ctx.proposal_id, membership.to_pb())
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl StateMachine for Applier {
    fn applied_index(&self) -> u64 {
        self.applied_index
    }

    fn apply(&mut self, entries: Vec<Committed>) -> Result<(), StorageError> {
        let mut batch = StateBatch::default();
        let mut events: Vec<(i64, Vec<Event>)> = Vec::new();
        let mut results: Vec<(u64, ApplyResult)> = Vec::new();
        let mut last = self.applied_index;
        let mut compacted = false;
        {
            let mut mvcc = self.state.mvcc.write();
            for entry in entries {
                let index = entry.index();
                if index <= self.applied_index {
                    continue; // already applied before a restart
                }
                let _slow = crate::metrics::server::apply_timer();
                last = index;
                match entry {
                    Committed::Normal { data, .. } if data.is_empty() => {}
                    Committed::Normal { data, .. } => match Command::decode(data.as_slice()) {
                        Ok(cmd) => {
                            if matches!(cmd.op, Some(Op::Compaction(_))) {
                                crate::kvd_crash_point!("compact::before_apply");
                                compacted = true;
                            }
                            let id = cmd.id;
                            let result =
                                self.apply_command(&mut mvcc, &mut batch, &mut events, cmd, index)?;
                            if id != 0 {
                                results.push((id, result));
                            }
                        }
                        Err(e) => warn!(index, error = %e, "skipping undecodable log entry"),
                    },
                    Committed::Fenced { data, .. } => {
                        // No effect on any member; only its proposer, if it still waits, learns
                        // that it may propose again.
                        let id = Command::decode(data.as_slice()).map_or(0, |c| c.id);
                        if id != 0 {
                            results.push((id, Err(ApplyError::Fenced)));
                        }
                    }
                    Committed::ConfChange {
                        changes, context, ..
                    } => {
                        let (id, members) = self.apply_conf_change(&changes, &context, &mut batch);
                        if id != 0 {
                            results.push((id, Ok(ApplyResponse::Members(members))));
                        }
                    }
                }
            }
            if last == self.applied_index {
                return Ok(());
            }
            mvcc.write_commit(&mut batch, last);
            crate::kvd_crash_point!("apply::before_state_write");
            self.engine.apply_state(batch)?;
            self.progress.set_written(last);
            crate::kvd_crash_point!("apply::after_state_write");
            if compacted {
                crate::kvd_crash_point!("compact::after_apply");
            }
            mvcc.clear_pending();
        }
        self.applied_index = last;
        for (rev, evs) in &events {
            self.state.hub.notify(*rev, evs);
        }
        for (id, result) in results {
            self.state.waiters.complete(id, result);
        }
        Ok(())
    }

    fn durable_index(&self) -> u64 {
        self.progress.durable()
    }

    fn snapshot_meta(&self) -> Option<Vec<u8>> {
        self.engine.state_get(SNAPSHOT_META).ok().flatten()
    }

    fn restore(&mut self, index: u64, data: &[u8], raft_meta: &[u8]) -> Result<(), StorageError> {
        let _in_progress = crate::metrics::server::snapshot_apply();
        let backend = crate::snapshot::read_image(data)?;
        let cluster_id = self.state.membership.read().cluster_id;
        self.state.reload_with(&self.engine, || {
            crate::snapshot::import(
                &self.engine,
                &backend,
                index,
                cluster_id,
                crate::snapshot::MembershipSource::FromSnapshot,
                Some(raft_meta),
            )
        })?;
        self.applied_index = index;
        self.progress.set_written(index);
        self.progress.set_durable(index);
        info!(index, revision = backend.revision(), "snapshot installed");
        Ok(())
    }

    fn on_leader_change(&mut self, leader: u64, term: u64, is_self: bool) {
        {
            let mut lessor = self.state.lessor.lock();
            if is_self {
                lessor.promote(crate::lease::now());
            } else if lessor.is_primary() {
                lessor.demote();
            }
        }
        let _ = self.leader_tx.send((leader, term, is_self));
    }
}
