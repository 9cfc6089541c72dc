//! Which member each client and watcher talks to: one slot per member of the original
//! cluster. A replaced member's slot is pointed at its replacement, so the clients pinned to
//! it follow.

use std::sync::{Arc, RwLock};

use tonic::transport::Channel;

/// A member a slot points at: its name and a (lazily connecting) channel.
#[derive(Clone)]
pub struct Target {
    /// `--name`.
    pub name: String,
    /// gRPC channel to its client listener.
    pub channel: Channel,
}

/// The slots of a scenario.
#[derive(Clone)]
pub struct Slots(Arc<RwLock<Vec<Target>>>);

impl Slots {
    /// One slot per target, in order.
    pub fn new(targets: Vec<Target>) -> Slots {
        Slots(Arc::new(RwLock::new(targets)))
    }

    /// The member slot `i` (modulo the number of slots) points at now.
    pub fn get(&self, i: usize) -> Target {
        let g = self.0.read().unwrap_or_else(|e| e.into_inner());
        g[i % g.len()].clone()
    }

    /// Points slot `i` at `target`.
    pub fn set(&self, i: usize, target: Target) {
        self.0.write().unwrap_or_else(|e| e.into_inner())[i] = target;
    }
}
