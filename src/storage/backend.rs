//! The contract between [`Engine`](super::Engine) and the key-value store under it.
//!
//! A backend keeps two ordered key spaces ([`Keyspace`]) of byte keys and values and offers
//! only primitives: point reads, ordered range iteration, writes in order, atomic batches and
//! a durability barrier. Everything kvd builds from them (the apply journal, prefix scans,
//! replacing the state, its checksum) lives in `Engine`, once for every backend. This module
//! names no backend: sled lives in `sled_backend`, the in-memory map in `mem_backend`.

use std::sync::Arc;

use super::{Result, SpaceGuard};

/// One write: a key and its new value (`None` removes it).
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// One of the backend's independent ordered key spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keyspace {
    /// The replicated state: MVCC revisions, meta, leases, members, alarms, auth.
    State,
    /// The member's own records, which a snapshot never replaces (and, in data dirs of older
    /// kvd versions, the raft log).
    Member,
}

impl Keyspace {
    /// Both key spaces.
    pub const ALL: [Keyspace; 2] = [Keyspace::State, Keyspace::Member];
}

/// Called with each record of an iteration, in key order; returns false to stop.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> bool;

/// An ordered key-value store that an [`Engine`](super::Engine) runs on.
///
/// Ordering is bytewise on keys. The contract that makes the engine's apply journal sound:
/// a single record is recovered whole or not at all, writes become durable in the order they
/// were made, so a crash keeps a prefix of them ([`KvBackend::write_in_order`]), and every
/// write made before a successful [`KvBackend::flush`] survives a crash.
pub trait KvBackend: Send + Sync {
    /// Reads one record.
    ///
    /// # Errors
    /// Backend failure.
    fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Calls `visit` with every record with key in `[start, end)` (`end` `None`: no end), in
    /// key order, until it returns false. The iteration is not a snapshot: writes made while it
    /// runs may or may not be seen, but each record is seen at most once and in order.
    ///
    /// # Errors
    /// Backend failure.
    fn for_each(
        &self,
        space: Keyspace,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visit<'_>,
    ) -> Result<()>;

    /// Makes `writes` one after the other, not atomically: a crash keeps a prefix of them.
    ///
    /// # Errors
    /// Backend failure.
    fn write_in_order(&self, space: Keyspace, writes: Vec<Write>) -> Result<()>;

    /// Makes `writes` all or nothing, to readers and across a crash. A key written twice ends
    /// with its last write.
    ///
    /// # Errors
    /// Backend failure.
    fn write_atomic(&self, space: Keyspace, writes: Vec<Write>) -> Result<()>;

    /// Makes every write so far durable (fsync); a no-op for a backend in memory.
    ///
    /// # Errors
    /// Backend failure (for example a full disk).
    fn flush(&self) -> Result<()>;

    /// Bytes the backend takes on disk (in memory: the bytes of its keys and values).
    ///
    /// # Errors
    /// Backend failure.
    fn size_on_disk(&self) -> Result<u64>;

    /// The free-space guard of the backend's file system (none in memory).
    fn space(&self) -> Option<Arc<SpaceGuard>>;
}

/// The first key after every key that starts with `prefix`: `None` when there is none (the
/// prefix is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_past_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
