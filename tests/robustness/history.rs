//! The cluster's revision history as the history watchers (every key, no filter) received
//! it, merged and replayed.
//!
//! Merging: every revision's events must be the same on every history watcher that received
//! it, and together they must cover every revision from 2 (a fresh cluster is at revision 1)
//! to the final one; otherwise the history is incomplete and the checks that rely on it say
//! so. Replaying: each event must follow from the state before it as etcd's MVCC numbers it
//! (a put's version is the previous version + 1 and keeps the create revision; a delete
//! removes a key that exists), and gives the state of every key at every revision.

use std::collections::{BTreeMap, HashMap};

use crate::record::Kv;
use crate::watch::{Event, WatchReport};

/// The merged, replayed history.
pub struct History {
    /// Events of each revision, in the order they were delivered (without prev_kv).
    pub revs: BTreeMap<i64, Vec<Event>>,
    /// The final revision of the scenario.
    pub final_rev: i64,
    /// Every revision from 2 to `final_rev` is known.
    pub complete: bool,
    /// Per key: (revision, state after it), ascending.
    timelines: BTreeMap<String, Vec<(i64, Option<Kv>)>>,
    /// Per (revision, key): the state before the event (what prev_kv must be).
    prev: HashMap<(i64, String), Option<Kv>>,
}

impl History {
    /// Merges the history watchers' events up to `final_rev`; problems go to `problems`.
    pub fn build(reports: &[WatchReport], final_rev: i64, problems: &mut Vec<String>) -> History {
        let mut revs: BTreeMap<i64, (String, Vec<Event>)> = BTreeMap::new();
        for rep in reports.iter().filter(|r| r.spec.history) {
            let mut mine: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
            for e in rep.events() {
                mine.entry(e.revision()).or_default().push(e.bare());
            }
            for (rev, evs) in mine {
                match revs.get(&rev) {
                    Some((who, theirs)) if *theirs != evs => problems.push(format!(
                        "history watchers disagree at revision {rev}: {who} received {theirs:?}, {} received {evs:?}",
                        rep.spec.name
                    )),
                    Some(_) => {}
                    None => {
                        revs.insert(rev, (rep.spec.name.clone(), evs));
                    }
                }
            }
        }
        let revs: BTreeMap<i64, Vec<Event>> =
            revs.into_iter().map(|(r, (_, evs))| (r, evs)).collect();
        let top = revs.keys().next_back().copied().unwrap_or(1).max(final_rev);
        let missing = ranges((2..=top).filter(|r| !revs.contains_key(r)));
        let complete = missing.is_empty();
        if !complete {
            problems.push(format!(
                "history incomplete: no history watcher received revisions {missing} (final revision {final_rev}); the checks that replay the history are partial"
            ));
        }
        let mut h = History {
            revs,
            final_rev,
            complete,
            timelines: BTreeMap::new(),
            prev: HashMap::new(),
        };
        h.replay(problems);
        h
    }

    fn replay(&mut self, problems: &mut Vec<String>) {
        let mut state: HashMap<String, Kv> = HashMap::new();
        for (&rev, events) in &self.revs {
            for e in events {
                let key = &e.kv.key;
                let before = state.get(key).cloned();
                self.prev.insert((rev, key.clone()), before.clone());
                if e.kv.mod_revision != rev {
                    problems.push(format!(
                        "revision {rev}: event on {key} carries mod_revision {}",
                        e.kv.mod_revision
                    ));
                }
                if e.delete {
                    if before.is_none() && self.complete {
                        problems.push(format!(
                            "revision {rev}: delete of {key}, which does not exist in the replayed history"
                        ));
                    }
                    state.remove(key);
                    self.timelines
                        .entry(key.clone())
                        .or_default()
                        .push((rev, None));
                } else {
                    let (version, create) = match &before {
                        Some(b) => (b.version + 1, b.create_revision),
                        None => (1, rev),
                    };
                    if self.complete && (e.kv.version != version || e.kv.create_revision != create)
                    {
                        problems.push(format!(
                            "revision {rev}: put of {key} has version {} and create_revision {}; the replayed history gives {version} and {create}",
                            e.kv.version, e.kv.create_revision
                        ));
                    }
                    state.insert(key.clone(), e.kv.clone());
                    self.timelines
                        .entry(key.clone())
                        .or_default()
                        .push((rev, Some(e.kv.clone())));
                }
            }
        }
    }

    /// The state of `key` at revision `rev` (after every event up to `rev`).
    pub fn state(&self, key: &str, rev: i64) -> Option<Kv> {
        let tl = self.timelines.get(key)?;
        let at = tl.partition_point(|(r, _)| *r <= rev);
        if at == 0 {
            None
        } else {
            tl[at - 1].1.clone()
        }
    }

    /// The key-values in `[start, end)` at revision `rev` (`end` empty: `start` only; `[0]`:
    /// every key from `start`), in key order.
    pub fn range(&self, start: &str, end: &str, rev: i64) -> Vec<Kv> {
        let upper = |k: &str| {
            if end.is_empty() {
                k == start
            } else if end == "\u{0}" {
                true
            } else {
                k < end
            }
        };
        self.timelines
            .range(start.to_string()..)
            .take_while(|(k, _)| upper(k))
            .filter_map(|(k, _)| self.state(k, rev))
            .collect()
    }

    /// The state before the event on `key` at revision `rev` (what its prev_kv must be).
    pub fn prev(&self, rev: i64, key: &str) -> Option<Option<Kv>> {
        self.prev.get(&(rev, key.to_string())).cloned()
    }

    /// Every event, in revision order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.revs.values().flatten()
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.revs.values().map(Vec::len).sum()
    }
}

/// `2..=4, 9` style text for a sorted list of revisions.
pub fn ranges(revs: impl IntoIterator<Item = i64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(i64, i64)> = None;
    let flush = |run: (i64, i64), out: &mut Vec<String>| {
        out.push(if run.0 == run.1 {
            run.0.to_string()
        } else {
            format!("{}..={}", run.0, run.1)
        })
    };
    for r in revs {
        run = match run {
            Some((a, b)) if r == b + 1 => Some((a, r)),
            Some(done) => {
                flush(done, &mut out);
                Some((r, r))
            }
            None => Some((r, r)),
        };
    }
    if let Some(done) = run {
        flush(done, &mut out);
    }
    out.join(", ")
}
