//! A deterministic in-process raft cluster for unit tests: real [`RaftNode`]s on one tokio
//! runtime with paused (virtual) time, talking over an in-memory network the test controls.
//!
//! Links can be cut (messages dropped) or held (queued until released, in order), so a test
//! can deliver a message long after it was sent — the way a frozen process receives what
//! its socket buffered. Each node's state machine records what it applied.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Committed, LogStore, NodeError, RaftConfig, RaftHandle, RaftNode, SnapshotSource, StateMachine,
    Transport,
};
use crate::storage::StorageError;

/// What a node's state machine saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A normal entry's data.
    Normal(Vec<u8>),
    /// A fenced entry's data.
    Fenced(Vec<u8>),
}

/// Records applied entries.
struct Recorder {
    applied_index: u64,
    log: Arc<Mutex<Vec<Applied>>>,
}

impl StateMachine for Recorder {
    fn applied_index(&self) -> u64 {
        self.applied_index
    }

    fn apply(&mut self, entries: Vec<Committed>) -> Result<(), StorageError> {
        let mut log = self.log.lock();
        for e in entries {
            self.applied_index = e.index();
            match e {
                Committed::Normal { data, .. } if !data.is_empty() => {
                    log.push(Applied::Normal(data));
                }
                Committed::Fenced { data, .. } => log.push(Applied::Fenced(data)),
                _ => {}
            }
        }
        Ok(())
    }

    fn durable_index(&self) -> u64 {
        self.applied_index
    }

    fn snapshot_meta(&self) -> Option<Vec<u8>> {
        None
    }

    fn restore(&mut self, index: u64, _data: &[u8], _meta: &[u8]) -> Result<(), StorageError> {
        self.applied_index = index;
        Ok(())
    }

    fn on_leader_change(&mut self, _leader: u64, _term: u64, _is_self: bool) {}
}

/// How a link treats messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Delivered at once.
    Open,
    /// Dropped.
    Cut,
    /// Queued until [`SimCluster::release`].
    Held,
}

#[derive(Default)]
struct Net {
    links: HashMap<(u64, u64), Link>,
    held: Vec<Message>,
    inboxes: HashMap<u64, mpsc::UnboundedSender<Message>>,
}

impl Net {
    fn route(&mut self, m: Message) {
        match self
            .links
            .get(&(m.from, m.to))
            .copied()
            .unwrap_or(Link::Open)
        {
            Link::Open => {
                if let Some(inbox) = self.inboxes.get(&m.to) {
                    let _ = inbox.send(m);
                }
            }
            Link::Held => self.held.push(m),
            Link::Cut => {}
        }
    }
}

struct SimTransport {
    net: Arc<Mutex<Net>>,
}

impl Transport for SimTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        let mut net = self.net.lock();
        for m in msgs {
            net.route(m);
        }
    }
}

/// One simulated member.
pub struct SimNode {
    /// Its raft handle.
    pub handle: RaftHandle,
    /// What it applied.
    pub applied: Arc<Mutex<Vec<Applied>>>,
}

/// A cluster of simulated members.
pub struct SimCluster {
    /// Members by ID.
    pub nodes: HashMap<u64, SimNode>,
    net: Arc<Mutex<Net>>,
    shutdown: CancellationToken,
    /// Each member's WAL directory, removed with the cluster.
    _dirs: Vec<tempfile::TempDir>,
}

/// Election timeout of simulated members (10 heartbeats).
pub const ELECTION: Duration = Duration::from_millis(1000);

impl SimCluster {
    /// Starts members `1..=n` as a new cluster. Call inside a runtime with paused time.
    ///
    /// # Panics
    /// If a member cannot be created.
    pub fn start(n: u64) -> Self {
        let net = Arc::new(Mutex::new(Net::default()));
        let shutdown = CancellationToken::new();
        let voters: Vec<u64> = (1..=n).collect();
        let mut nodes = HashMap::new();
        let mut dirs = Vec::new();
        for id in 1..=n {
            let config = RaftConfig {
                id,
                initial_voters: voters.clone(),
                heartbeat: Duration::from_millis(100),
                election_timeout: ELECTION,
                snapshot_count: 10_000,
            };
            let dir = tempfile::tempdir().expect("temp dir");
            let store = LogStore::open(&dir.path().join("wal"), None).expect("log store");
            dirs.push(dir);
            let applied = Arc::new(Mutex::new(Vec::new()));
            let sm = Recorder {
                applied_index: 0,
                log: applied.clone(),
            };
            let source: SnapshotSource = Arc::new(|| Ok((0, Vec::new())));
            let transport_net = net.clone();
            let (node, handle) = RaftNode::new(config, store, sm, source, move |_| SimTransport {
                net: transport_net,
            })
            .expect("raft node");
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            net.lock().inboxes.insert(id, tx);
            let inbox_handle = handle.clone();
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if inbox_handle.step(m).await.is_err() {
                        return;
                    }
                }
            });
            let stop = shutdown.clone();
            tokio::spawn(async move {
                match node.run(stop).await {
                    Ok(()) | Err(NodeError::Removed) => {}
                    Err(e) => panic!("simulated member {id} failed: {e}"),
                }
            });
            nodes.insert(id, SimNode { handle, applied });
        }
        Self {
            nodes,
            net,
            shutdown,
            _dirs: dirs,
        }
    }

    /// The handle of member `id`.
    ///
    /// # Panics
    /// If there is no such member.
    pub fn handle(&self, id: u64) -> &RaftHandle {
        &self.nodes[&id].handle
    }

    /// Waits (in virtual time) until every member in `among` agrees on one leader that is also
    /// in `among`, and returns it.
    ///
    /// # Panics
    /// If that does not happen within 30 virtual seconds.
    pub async fn leader_among(&self, among: &[u64]) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let leaders: HashSet<u64> = among
                .iter()
                .map(|id| self.handle(*id).status().leader)
                .collect();
            if leaders.len() == 1 {
                let leader = *leaders.iter().next().expect("one leader");
                if among.contains(&leader) {
                    return leader;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no common leader among {among:?}: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sets the link from `from` to `to`.
    pub fn set_link(&self, from: u64, to: u64, link: Link) {
        self.net.lock().links.insert((from, to), link);
    }

    /// Cuts (or with `Link::Open` heals) every link to and from `id`.
    pub fn isolate(&self, id: u64, link: Link) {
        let others: Vec<u64> = self.nodes.keys().copied().filter(|o| *o != id).collect();
        for o in others {
            self.set_link(id, o, link);
            self.set_link(o, id, link);
        }
    }

    /// Delivers every held message, in the order sent.
    pub fn release(&self) {
        let mut net = self.net.lock();
        let held = std::mem::take(&mut net.held);
        for m in held {
            if let Some(inbox) = net.inboxes.get(&m.to) {
                let _ = inbox.send(m);
            }
        }
    }

    /// Held messages of `kind`.
    pub fn held_of(&self, kind: MessageType) -> usize {
        self.net
            .lock()
            .held
            .iter()
            .filter(|m| m.get_msg_type() == kind)
            .count()
    }

    /// Waits (virtual time) until member `id` applied something matching `pred`.
    ///
    /// # Panics
    /// After 30 virtual seconds.
    pub async fn wait_applied(&self, id: u64, pred: impl Fn(&[Applied]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !pred(&self.nodes[&id].applied.lock()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "member {id} never applied what was expected: {:?}",
                self.nodes[&id].applied.lock()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every member.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(log: &[Applied], item: &Applied) -> usize {
        log.iter().filter(|a| *a == item).count()
    }

    /// A follower's proposal forwarded to the leader, delivered only after another leader was
    /// elected and the leader it was sent to learnt of it (so it forwards the proposal on):
    /// the late copy is fenced on every member, and a second proposal of the same bytes (what
    /// a proposer does once its first attempt is provably void) is applied exactly once.
    #[tokio::test(start_paused = true)]
    async fn a_forwarded_proposal_delivered_after_a_leader_change_is_fenced() {
        let cluster = SimCluster::start(3);
        let all = [1, 2, 3];
        let old_leader = cluster.leader_among(&all).await;
        let follower = *all.iter().find(|id| **id != old_leader).expect("follower");
        let third = *all
            .iter()
            .find(|id| **id != old_leader && **id != follower)
            .expect("third");

        // The proposal leaves the follower but does not arrive yet.
        cluster.set_link(follower, old_leader, Link::Held);
        let fence = cluster
            .handle(follower)
            .propose(b"put k v1".to_vec())
            .await
            .expect("accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cluster.held_of(MessageType::MsgPropose), 1);

        // The old leader is cut off; the other two elect a new leader of a later term.
        cluster.isolate(old_leader, Link::Cut);
        cluster.set_link(follower, third, Link::Open);
        cluster.set_link(third, follower, Link::Open);
        let new_leader = cluster.leader_among(&[follower, third]).await;
        assert!(cluster.handle(new_leader).status().term > fence);

        // The old leader hears of the new one first, then gets the stale proposal and
        // forwards it to the new leader, which appends it in its own term.
        cluster.isolate(old_leader, Link::Open);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while cluster.handle(old_leader).status().leader != new_leader {
            assert!(
                tokio::time::Instant::now() < deadline,
                "old leader never followed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cluster.release();

        let stale = Applied::Fenced(b"put k v1".to_vec());
        for id in all {
            cluster.wait_applied(id, |log| log.contains(&stale)).await;
        }
        // Proposed again (the proposer's second attempt): applied once, everywhere.
        cluster
            .handle(follower)
            .propose(b"put k v1".to_vec())
            .await
            .expect("accepted");
        let fresh = Applied::Normal(b"put k v1".to_vec());
        for id in all {
            cluster.wait_applied(id, |log| log.contains(&fresh)).await;
            let log = cluster.nodes[&id].applied.lock().clone();
            assert_eq!(count(&log, &fresh), 1, "member {id}: {log:?}");
            assert_eq!(count(&log, &stale), 1, "member {id}: {log:?}");
        }
        cluster.stop();
    }

    /// A proposal made and appended in the same term is applied normally.
    #[tokio::test(start_paused = true)]
    async fn proposals_in_a_stable_term_are_applied_once_everywhere() {
        let cluster = SimCluster::start(3);
        let leader = cluster.leader_among(&[1, 2, 3]).await;
        for id in [1, 2, 3] {
            cluster
                .handle(id)
                .propose(format!("from {id}").into_bytes())
                .await
                .expect("accepted");
        }
        for id in [1, 2, 3] {
            cluster
                .wait_applied(id, |log| {
                    log.iter()
                        .filter(|a| matches!(a, Applied::Normal(_)))
                        .count()
                        == 3
                })
                .await;
            let log = cluster.nodes[&id].applied.lock().clone();
            assert!(
                log.iter().all(|a| matches!(a, Applied::Normal(_))),
                "{log:?}"
            );
        }
        assert_eq!(cluster.handle(leader).status().leader, leader);
        cluster.stop();
    }
}
