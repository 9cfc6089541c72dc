//! The in-memory index from a key to the revisions at which it changed: only revisions, as
//! etcd keeps it (values stay in storage), and compact — a key changed once since the last
//! compaction, the common case, costs no allocation beyond the key itself.

use smallvec::SmallVec;

use super::revision::Revision;

/// One change of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRev {
    /// When the change happened.
    pub rev: Revision,
    /// True when the change deleted the key (ends a generation).
    pub tombstone: bool,
}

/// [`KeyRev`] in 16 bytes: the operation index inside a transaction fits 31 bits (a txn holds
/// at most `--max-txn-ops` operations per branch), the top bit marks a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    main: i64,
    sub_and_tombstone: u32,
}

const TOMBSTONE_BIT: u32 = 1 << 31;

impl Packed {
    fn new(rev: Revision, tombstone: bool) -> Self {
        let sub = u32::try_from(rev.sub)
            .ok()
            .filter(|s| s & TOMBSTONE_BIT == 0)
            .expect("a sub revision counts operations of one transaction");
        Self {
            main: rev.main,
            sub_and_tombstone: sub | if tombstone { TOMBSTONE_BIT } else { 0 },
        }
    }

    fn unpack(self) -> KeyRev {
        KeyRev {
            rev: Revision::new(
                self.main,
                i64::from(self.sub_and_tombstone & !TOMBSTONE_BIT),
            ),
            tombstone: self.sub_and_tombstone & TOMBSTONE_BIT != 0,
        }
    }
}

/// Every retained change of one key, oldest first.
#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    revs: SmallVec<[Packed; 1]>,
}

impl KeyIndex {
    /// Records a change.
    ///
    /// # Panics
    /// If `rev.sub` does not fit 31 bits (no transaction holds that many operations).
    pub fn push(&mut self, rev: Revision, tombstone: bool) {
        self.revs.push(Packed::new(rev, tombstone));
    }

    /// The latest change at or before main revision `at`.
    pub fn at(&self, at: i64) -> Option<KeyRev> {
        let idx = self.revs.partition_point(|r| r.main <= at);
        idx.checked_sub(1).map(|i| self.revs[i].unpack())
    }

    /// The live revision of the key at `at` (None if absent or deleted then).
    pub fn live_at(&self, at: i64) -> Option<Revision> {
        self.at(at).filter(|r| !r.tombstone).map(|r| r.rev)
    }

    /// The latest change of all.
    pub fn last(&self) -> Option<KeyRev> {
        self.revs.last().map(|p| p.unpack())
    }

    /// Drops history that compaction at `compact` makes unreachable: every change before
    /// `compact` except the latest one at or before it, which is kept unless it is a tombstone.
    /// Returns the dropped changes (their stored values can be removed).
    pub fn compact(&mut self, compact: i64) -> Vec<KeyRev> {
        let idx = self.revs.partition_point(|r| r.main <= compact);
        if idx == 0 {
            return Vec::new();
        }
        let keep_from = if self.revs[idx - 1].unpack().tombstone {
            idx
        } else {
            idx - 1
        };
        let dropped = self.revs.drain(..keep_from).map(Packed::unpack).collect();
        if self.revs.len() <= 1 {
            self.revs.shrink_to_fit();
        }
        dropped
    }

    /// Every retained change, oldest first.
    pub fn changes(&self) -> impl Iterator<Item = KeyRev> + '_ {
        self.revs.iter().map(|p| p.unpack())
    }

    /// True when no change is retained.
    pub fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(changes: &[(i64, bool)]) -> KeyIndex {
        let mut k = KeyIndex::default();
        for &(m, t) in changes {
            k.push(Revision::new(m, 0), t);
        }
        k
    }

    #[test]
    fn live_at_follows_generations() {
        let k = idx(&[(2, false), (4, false), (6, true), (8, false)]);
        assert_eq!(k.live_at(1), None);
        assert_eq!(k.live_at(3), Some(Revision::new(2, 0)));
        assert_eq!(k.live_at(5), Some(Revision::new(4, 0)));
        assert_eq!(k.live_at(6), None);
        assert_eq!(k.live_at(7), None);
        assert_eq!(k.live_at(100), Some(Revision::new(8, 0)));
    }

    #[test]
    fn one_change_needs_no_allocation_and_sub_revisions_round_trip() {
        assert_eq!(std::mem::size_of::<Packed>(), 16);
        let mut k = KeyIndex::default();
        k.push(Revision::new(7, 3), true);
        assert!(!k.revs.spilled());
        assert_eq!(
            k.last(),
            Some(KeyRev {
                rev: Revision::new(7, 3),
                tombstone: true
            })
        );
    }

    #[test]
    fn compaction_keeps_the_value_visible_at_the_compact_revision() {
        let mut k = idx(&[(2, false), (4, false), (6, true), (8, false)]);
        let dropped = k.compact(5);
        assert_eq!(dropped.len(), 1);
        assert_eq!(k.live_at(5), Some(Revision::new(4, 0)));
        let dropped = k.compact(7);
        assert_eq!(dropped.len(), 2, "the value and the tombstone go");
        assert_eq!(k.live_at(7), None);
        assert_eq!(k.live_at(8), Some(Revision::new(8, 0)));
        let mut gone = idx(&[(2, false), (3, true)]);
        gone.compact(3);
        assert!(gone.is_empty());
    }
}
