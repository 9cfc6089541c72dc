//! Recorded client traffic: a few clients, each pinned to one member (its slot), sending one
//! profile's operations until told to stop, plus kube-apiserver's compactor.
//!
//! - [`etcd`]: put (unique values), linearizable get, delete, compare-and-swap txn, leases
//!   (grant, put with lease, keep-alive, expiry);
//! - [`kube`]: paginated lists at a fixed revision, optimistic updates and deletes
//!   (`Txn(If ModRevision(k)==rev Then Put|Delete Else Get)`, creates compare 0);
//! - [`compactor`]: kube-apiserver's compaction (a txn on the version of `compact_rev_key`,
//!   then `Compact` to the revision seen one round earlier), never past a revision a watcher
//!   still needs, so that the watch history stays complete.

pub mod compactor;
pub mod etcd;
pub mod kube;
pub mod ops;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::record::{Clock, Record};
use crate::slots::Slots;
use compactor::Compactor;

/// Number of clients (each pinned to slot `client % slots`).
pub const CLIENTS: usize = 6;

/// Client id of the compactor's records.
pub const COMPACTOR_CLIENT: usize = 100;

/// A traffic profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// etcd-like: KV, compare-and-swap, leases.
    Etcd,
    /// Kubernetes-like: lists, optimistic updates, compaction.
    Kube,
}

impl Profile {
    /// The keys whose sub-histories the linearizability checker reads.
    pub fn register_keys(self) -> Vec<String> {
        match self {
            Profile::Etcd => etcd::keys(),
            Profile::Kube => kube::keys(),
        }
    }

    /// The prefix every key of the profile lives under (watched by the profile's watchers).
    pub fn prefix(self) -> &'static str {
        match self {
            Profile::Etcd => etcd::PREFIX,
            Profile::Kube => kube::PREFIX,
        }
    }
}

/// Things the clients share with the scenario.
#[derive(Clone)]
pub struct Shared {
    /// Where each client sends its requests.
    pub slots: Slots,
    /// The scenario clock.
    pub clock: Clock,
    /// Set to stop the clients.
    pub stop: Arc<AtomicBool>,
}

/// Running traffic.
pub struct Traffic {
    shared: Shared,
    clients: Vec<JoinHandle<Vec<Record>>>,
    compactor: Option<JoinHandle<Vec<Record>>>,
}

impl Traffic {
    /// Starts [`CLIENTS`] clients of `profile` on `slots`, and the compactor if given (with
    /// the interval between its rounds).
    pub fn start(
        profile: Profile,
        slots: Slots,
        clock: Clock,
        compactor: Option<(Compactor, Duration)>,
    ) -> Traffic {
        let shared = Shared {
            slots,
            clock,
            stop: Arc::new(AtomicBool::new(false)),
        };
        let clients = (0..CLIENTS)
            .map(|id| {
                let s = shared.clone();
                match profile {
                    Profile::Etcd => tokio::spawn(etcd::client(id, s)),
                    Profile::Kube => tokio::spawn(kube::client(id, s)),
                }
            })
            .collect();
        let compactor = compactor.map(|(c, every)| tokio::spawn(c.run(shared.clone(), every)));
        Traffic {
            shared,
            clients,
            compactor,
        }
    }

    /// Stops the clients (each finishes its call in flight) and returns every record.
    pub async fn stop(self) -> Vec<Record> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for c in self.clients {
            all.extend(c.await.expect("client task"));
        }
        if let Some(c) = self.compactor {
            all.extend(c.await.expect("compactor task"));
        }
        all
    }
}

/// Pause after a failed call: pacing, so that a client does not spin on a dead member.
pub const FAILURE_PAUSE: Duration = Duration::from_millis(50);
