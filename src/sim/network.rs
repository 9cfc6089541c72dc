//! The in-memory network between simulated members: every raft message goes through
//! [`Net::route`], which applies the rule of its link (or of its message type) and counts it.
//!
//! Delays are virtual (tokio timers under paused time), and the randomness of jitter and loss
//! comes from a seeded generator, so a scenario runs the same way every time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;

use crate::raft::{RaftHandle, Transport};

/// How a link (or a rule for one message type) treats messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Delivered at once.
    Open,
    /// Dropped.
    Cut,
    /// Queued until [`Network::release`] (in the order sent) or [`Network::release_reversed`].
    Held,
    /// Delivered after this much virtual time.
    Delay(Duration),
    /// Delivered after a random virtual delay below this, so messages overtake each other.
    Jitter(Duration),
    /// Delivered twice.
    Duplicate,
    /// Dropped with this probability, in thousandths.
    Lossy(u32),
}

/// What the network did with messages, by type.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Messages handed to the network.
    pub sent: BTreeMap<i32, u64>,
    /// Messages dropped (cut or lost links, or the receiver is down).
    pub dropped: BTreeMap<i32, u64>,
}

impl Counts {
    /// How many messages of `kind` were sent.
    pub fn sent(&self, kind: MessageType) -> u64 {
        self.sent.get(&(kind as i32)).copied().unwrap_or(0)
    }

    /// How many messages of `kind` were dropped.
    pub fn dropped(&self, kind: MessageType) -> u64 {
        self.dropped.get(&(kind as i32)).copied().unwrap_or(0)
    }
}

/// A small deterministic generator (splitmix64): the network's only randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

struct Net {
    links: BTreeMap<(u64, u64), Link>,
    kinds: Vec<(MessageType, Link)>,
    held: Vec<Message>,
    inboxes: BTreeMap<u64, mpsc::UnboundedSender<Message>>,
    counts: Counts,
    rng: Rng,
}

impl Net {
    fn rule(&self, m: &Message) -> Link {
        if let Some((_, link)) = self.kinds.iter().find(|(k, _)| *k == m.get_msg_type()) {
            return *link;
        }
        self.links
            .get(&(m.from, m.to))
            .copied()
            .unwrap_or(Link::Open)
    }

    fn deliver(&mut self, m: Message) -> bool {
        let kind = m.get_msg_type() as i32;
        match self.inboxes.get(&m.to) {
            Some(inbox) if inbox.send(m).is_ok() => true,
            _ => {
                *self.counts.dropped.entry(kind).or_default() += 1;
                false
            }
        }
    }
}

/// The network shared by a cluster's members; cheap to clone.
#[derive(Clone)]
pub struct Network {
    net: Arc<Mutex<Net>>,
}

impl Network {
    /// An empty network whose randomness starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            net: Arc::new(Mutex::new(Net {
                links: BTreeMap::new(),
                kinds: Vec::new(),
                held: Vec::new(),
                inboxes: BTreeMap::new(),
                counts: Counts::default(),
                rng: Rng(seed),
            })),
        }
    }

    /// Connects member `id`: messages to it go to `inbox` from now on.
    pub fn attach(&self, id: u64, inbox: mpsc::UnboundedSender<Message>) {
        self.net.lock().inboxes.insert(id, inbox);
    }

    /// Disconnects member `id` (it is down): messages to it are dropped.
    pub fn detach(&self, id: u64) {
        self.net.lock().inboxes.remove(&id);
    }

    /// The transport member `raft` sends through.
    pub fn transport(&self, raft: RaftHandle) -> SimTransport {
        SimTransport {
            net: self.clone(),
            raft,
        }
    }

    /// Routes one message by the rule of its type or its link; false if it was dropped.
    pub fn route(&self, m: Message) -> bool {
        let mut net = self.net.lock();
        *net.counts.sent.entry(m.get_msg_type() as i32).or_default() += 1;
        match net.rule(&m) {
            Link::Open => return net.deliver(m),
            Link::Cut => {
                *net.counts
                    .dropped
                    .entry(m.get_msg_type() as i32)
                    .or_default() += 1;
                return false;
            }
            Link::Held => net.held.push(m),
            Link::Delay(d) => {
                drop(net);
                self.deliver_after(m, d);
            }
            Link::Jitter(max) => {
                let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
                let d = Duration::from_millis(net.rng.below(ms));
                drop(net);
                self.deliver_after(m, d);
            }
            Link::Duplicate => {
                net.deliver(m.clone());
                return net.deliver(m);
            }
            Link::Lossy(per_mille) => {
                if net.rng.below(1000) < u64::from(per_mille) {
                    *net.counts
                        .dropped
                        .entry(m.get_msg_type() as i32)
                        .or_default() += 1;
                    return false;
                }
                return net.deliver(m);
            }
        }
        true
    }

    fn deliver_after(&self, m: Message, d: Duration) {
        let net = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            net.net.lock().deliver(m);
        });
    }

    /// Sets the link from `from` to `to`.
    pub fn set_link(&self, from: u64, to: u64, link: Link) {
        self.net.lock().links.insert((from, to), link);
    }

    /// Sets the links both ways between `a` and `b`.
    pub fn set_both(&self, a: u64, b: u64, link: Link) {
        self.set_link(a, b, link);
        self.set_link(b, a, link);
    }

    /// Every message of `kind` follows `link`, whatever its link says (until
    /// [`Network::clear_kind`]).
    pub fn set_kind(&self, kind: MessageType, link: Link) {
        let mut net = self.net.lock();
        net.kinds.retain(|(k, _)| *k != kind);
        net.kinds.push((kind, link));
    }

    /// Removes the rule for `kind`.
    pub fn clear_kind(&self, kind: MessageType) {
        self.net.lock().kinds.retain(|(k, _)| *k != kind);
    }

    /// Sets every link between two of `members` to `link`.
    pub fn set_all(&self, members: &[u64], link: Link) {
        for a in members {
            for b in members {
                if a != b {
                    self.set_link(*a, *b, link);
                }
            }
        }
    }

    /// Cuts `groups` off from each other; links inside a group open.
    pub fn partition(&self, groups: &[&[u64]]) {
        for (i, g) in groups.iter().enumerate() {
            self.set_all(g, Link::Open);
            for (j, other) in groups.iter().enumerate() {
                if i != j {
                    for a in g.iter() {
                        for b in other.iter() {
                            self.set_link(*a, *b, Link::Cut);
                        }
                    }
                }
            }
        }
    }

    /// Every link and message type back to [`Link::Open`] (held messages stay held).
    pub fn heal(&self) {
        let mut net = self.net.lock();
        net.links.clear();
        net.kinds.clear();
    }

    /// Delivers every held message, in the order sent.
    pub fn release(&self) {
        let mut net = self.net.lock();
        let held = std::mem::take(&mut net.held);
        for m in held {
            net.deliver(m);
        }
    }

    /// Delivers every held message, the last sent first.
    pub fn release_reversed(&self) {
        let mut net = self.net.lock();
        let held = std::mem::take(&mut net.held);
        for m in held.into_iter().rev() {
            net.deliver(m);
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

    /// What the network did so far.
    pub fn counts(&self) -> Counts {
        self.net.lock().counts.clone()
    }
}

/// A member's outgoing side of the [`Network`].
pub struct SimTransport {
    net: Network,
    raft: RaftHandle,
}

impl Transport for SimTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let snapshot = (m.get_msg_type() == MessageType::MsgSnapshot).then_some(m.to);
            let sent = self.net.route(m);
            if let Some(to) = snapshot {
                // As the peer transport: raft learns whether the snapshot went out.
                let raft = self.raft.clone();
                tokio::spawn(async move { raft.report_snapshot(to, sent).await });
            }
        }
    }
}
