//! The in-memory index from a key to the revisions at which it changed.

use super::revision::Revision;

/// One change of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRev {
    /// When the change happened.
    pub rev: Revision,
    /// True when the change deleted the key (ends a generation).
    pub tombstone: bool,
}

/// Every retained change of one key, oldest first.
#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    revs: Vec<KeyRev>,
}

impl KeyIndex {
    /// Records a change.
    pub fn push(&mut self, rev: Revision, tombstone: bool) {
        self.revs.push(KeyRev { rev, tombstone });
    }

    /// The latest change at or before main revision `at`.
    pub fn at(&self, at: i64) -> Option<KeyRev> {
        let idx = self.revs.partition_point(|r| r.rev.main <= at);
        idx.checked_sub(1).map(|i| self.revs[i])
    }

    /// The live revision of the key at `at` (None if absent or deleted then).
    pub fn live_at(&self, at: i64) -> Option<Revision> {
        self.at(at).filter(|r| !r.tombstone).map(|r| r.rev)
    }

    /// The latest change of all.
    pub fn last(&self) -> Option<KeyRev> {
        self.revs.last().copied()
    }

    /// Drops history that compaction at `compact` makes unreachable: every change before
    /// `compact` except the latest one at or before it, which is kept unless it is a tombstone.
    /// Returns the dropped changes (their stored values can be removed).
    pub fn compact(&mut self, compact: i64) -> Vec<KeyRev> {
        let idx = self.revs.partition_point(|r| r.rev.main <= compact);
        if idx == 0 {
            return Vec::new();
        }
        let keep_from = if self.revs[idx - 1].tombstone {
            idx
        } else {
            idx - 1
        };
        self.revs.drain(..keep_from).collect()
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
