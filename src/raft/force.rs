//! `--force-new-cluster`: turns a member's log into that of a one-member cluster, keeping its
//! data, so that a member that lost its quorum can serve again.
//!
//! As etcd does, the log is cut after the commit index (entries nobody can prove were agreed
//! are dropped) and configuration entries that remove every other member are appended as
//! committed. They are applied through the normal path on start, so raft's configuration and
//! the member list change together and the change is in the log like any other.

use std::collections::BTreeSet;

use protobuf::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType};
use raft::{GetEntriesContext, Storage as _};

use super::node::decode_conf_change;
use super::LogBatch;
use super::LogStore;
use crate::storage::StorageError;

/// What forcing a one-member cluster changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForcedCluster {
    /// Members removed from the configuration.
    pub removed: Vec<u64>,
    /// Log entries after the commit index that were dropped.
    pub discarded: u64,
    /// The log index of the last appended configuration entry (the new commit index).
    pub commit: u64,
}

/// Rewrites the log in `store` so that `me` is the only voter once it is applied; `applied`
/// is the state machine's applied index. Does nothing (and returns no removals) when the
/// configuration already is `me` alone and no uncommitted entry exists.
///
/// # Errors
/// Storage failure or a log that cannot be read.
pub fn force_new_cluster(
    store: &LogStore,
    me: u64,
    applied: u64,
) -> Result<ForcedCluster, StorageError> {
    let mut hs = store.hard_state();
    let last = store.last_index();
    let cs = store.conf_state();
    // Everything applied was committed, even if a crash kept the recorded commit lower; and
    // a member that already is the only voter committed every entry it made durable (the
    // recorded commit index may lag the acknowledged writes after a crash).
    let alone = cs.voters == [me] && cs.voters_outgoing.is_empty();
    let commit = if alone {
        last
    } else {
        hs.commit.max(applied).min(last)
    };
    let mut voters: BTreeSet<u64> = cs.voters.iter().copied().collect();
    let mut learners: BTreeSet<u64> = cs.learners.iter().copied().collect();
    voters.extend(cs.voters_outgoing.iter().copied());
    learners.extend(cs.learners_next.iter().copied());
    let joint = !cs.voters_outgoing.is_empty();
    // Committed configuration entries not applied yet take effect before ours.
    let pending = committed_after(store, applied.max(store.snapshot_index()), commit)?;
    let mut leaves_joint = false;
    for e in &pending {
        if !matches!(
            e.get_entry_type(),
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2
        ) {
            continue;
        }
        let cc = decode_conf_change(e);
        if cc.changes.is_empty() {
            leaves_joint = true;
        }
        for c in &cc.changes {
            match c.get_change_type() {
                ConfChangeType::AddNode => {
                    learners.remove(&c.node_id);
                    voters.insert(c.node_id);
                }
                ConfChangeType::AddLearnerNode => {
                    voters.remove(&c.node_id);
                    learners.insert(c.node_id);
                }
                ConfChangeType::RemoveNode => {
                    voters.remove(&c.node_id);
                    learners.remove(&c.node_id);
                }
            }
        }
    }
    let mut changes: Vec<Entry> = Vec::new();
    let mut index = commit;
    let mut next = |entry_type: EntryType, data: Vec<u8>| {
        index += 1;
        let mut e = Entry::default();
        e.set_entry_type(entry_type);
        e.term = hs.term;
        e.index = index;
        e.data = data.into();
        e
    };
    if joint && !leaves_joint {
        // raft refuses simple changes in a joint configuration: leave it first.
        let leave = ConfChangeV2::default();
        changes.push(next(
            EntryType::EntryConfChangeV2,
            leave.write_to_bytes().unwrap_or_default(),
        ));
    }
    let mut removed = Vec::new();
    for id in voters.iter().chain(learners.iter()).copied() {
        if id == me {
            continue;
        }
        removed.push(id);
        changes.push(next(
            EntryType::EntryConfChange,
            simple(ConfChangeType::RemoveNode, id),
        ));
    }
    if !voters.contains(&me) {
        changes.push(next(
            EntryType::EntryConfChange,
            simple(ConfChangeType::AddNode, me),
        ));
    }
    let discarded = last - commit;
    if changes.is_empty() && discarded == 0 && commit <= hs.commit {
        return Ok(ForcedCluster {
            commit,
            ..ForcedCluster::default()
        });
    }
    let mut batch = LogBatch::default();
    store.truncate_after(commit, &mut batch);
    store.append(&changes, &mut batch);
    hs.commit = index;
    store.set_hard_state(&hs, &mut batch);
    store.write(batch);
    store.sync()?;
    Ok(ForcedCluster {
        removed,
        discarded,
        commit: index,
    })
}

fn simple(kind: ConfChangeType, id: u64) -> Vec<u8> {
    let mut cc = ConfChange::default();
    cc.set_change_type(kind);
    cc.node_id = id;
    cc.write_to_bytes().unwrap_or_default()
}

/// Entries `(after, upto]` of the log.
fn committed_after(store: &LogStore, after: u64, upto: u64) -> Result<Vec<Entry>, StorageError> {
    if upto <= after {
        return Ok(Vec::new());
    }
    store
        .entries(after + 1, upto + 1, None, GetEntriesContext::empty(false))
        .map_err(|e| StorageError::Corrupt {
            what: "raft log".into(),
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::prelude::HardState;

    fn wal() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        (dir, path)
    }

    fn normal(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: b"x".to_vec().into(),
            ..Default::default()
        }
    }

    fn conf(index: u64, term: u64, kind: ConfChangeType, id: u64) -> Entry {
        let mut e = Entry::default();
        e.set_entry_type(EntryType::EntryConfChange);
        e.index = index;
        e.term = term;
        e.data = simple(kind, id).into();
        e
    }

    /// A three-member log: entries 2..=6 at term 2, committed up to `commit`.
    fn three_members(wal: &std::path::Path, extra: Vec<Entry>, commit: u64) -> LogStore {
        let store = LogStore::open(wal, None).unwrap();
        let mut batch = LogBatch::default();
        store.bootstrap_voters(&[1, 2, 3], &mut batch);
        let mut entries: Vec<Entry> = (2..=4).map(|i| normal(i, 2)).collect();
        entries.extend(extra);
        store.append(&entries, &mut batch);
        let hs = HardState {
            term: 3,
            vote: 1,
            commit,
            ..Default::default()
        };
        store.set_hard_state(&hs, &mut batch);
        store.write(batch);
        store.sync().unwrap();
        store
    }

    fn kinds(store: &LogStore, from: u64) -> Vec<(ConfChangeType, u64)> {
        store
            .entries(
                from,
                store.last_index() + 1,
                None,
                GetEntriesContext::empty(false),
            )
            .unwrap()
            .iter()
            .map(|e| {
                let c = &decode_conf_change(e).changes[0];
                (c.get_change_type(), c.node_id)
            })
            .collect()
    }

    #[test]
    fn removes_the_others_after_the_commit_index_and_drops_uncommitted_entries() {
        let (_d, wal) = wal();
        let store = three_members(&wal, vec![normal(5, 3), normal(6, 3)], 4);
        let forced = force_new_cluster(&store, 2, 3).unwrap();
        assert_eq!(forced.removed, vec![1, 3]);
        assert_eq!(forced.discarded, 2);
        assert_eq!(forced.commit, 6);
        drop(store);
        let reopened = LogStore::open(&wal, None).unwrap();
        assert_eq!(reopened.last_index(), 6);
        assert_eq!(reopened.hard_state().commit, 6);
        assert_eq!(
            kinds(&reopened, 5),
            vec![
                (ConfChangeType::RemoveNode, 1),
                (ConfChangeType::RemoveNode, 3)
            ]
        );
        assert!(reopened
            .entries(5, 7, None, GetEntriesContext::empty(false))
            .unwrap()
            .iter()
            .all(|e| e.term == 3));
    }

    #[test]
    fn committed_but_unapplied_additions_are_removed_too() {
        let (_d, wal) = wal();
        let store = three_members(&wal, vec![conf(5, 3, ConfChangeType::AddLearnerNode, 9)], 5);
        let forced = force_new_cluster(&store, 1, 4).unwrap();
        assert_eq!(forced.removed, vec![2, 3, 9]);
        assert_eq!(forced.discarded, 0);
    }

    #[test]
    fn a_learner_forced_alone_becomes_a_voter() {
        let (_d, wal) = wal();
        let store = three_members(&wal, vec![conf(5, 3, ConfChangeType::AddLearnerNode, 7)], 5);
        force_new_cluster(&store, 7, 5).unwrap();
        assert_eq!(
            kinds(&store, 6),
            vec![
                (ConfChangeType::RemoveNode, 1),
                (ConfChangeType::RemoveNode, 2),
                (ConfChangeType::RemoveNode, 3),
                (ConfChangeType::AddNode, 7)
            ]
        );
    }

    #[test]
    fn a_lone_voter_keeps_entries_past_its_recorded_commit() {
        let (_d, wal) = wal();
        let store = LogStore::open(&wal, None).unwrap();
        let mut batch = LogBatch::default();
        store.bootstrap_voters(&[5], &mut batch);
        store.append(&[normal(2, 2), normal(3, 2)], &mut batch);
        store.write(batch);
        let forced = force_new_cluster(&store, 5, 1).unwrap();
        assert_eq!(forced.discarded, 0);
        assert_eq!(forced.commit, 3);
        assert_eq!(store.last_index(), 3);
        assert_eq!(store.hard_state().commit, 3);
    }

    #[test]
    fn a_member_already_alone_is_left_unchanged() {
        let (_d, wal) = wal();
        let store = LogStore::open(&wal, None).unwrap();
        let mut batch = LogBatch::default();
        store.bootstrap_voters(&[5], &mut batch);
        store.write(batch);
        let forced = force_new_cluster(&store, 5, 1).unwrap();
        assert_eq!(forced.removed, Vec::<u64>::new());
        assert_eq!(forced.discarded, 0);
        assert_eq!(store.last_index(), 1);
    }
}
