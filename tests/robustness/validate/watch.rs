//! etcd's watch guarantees (https://etcd.io/docs/v3.5/learning/api_guarantees/#watch-apis),
//! checked on every watcher:
//! - ordered: events arrive in revision order;
//! - unique: no event (revision, key) arrives twice;
//! - atomic: all events of one revision arrive in one response;
//! - bookmarkable: a progress notification's revision R means every event up to R was
//!   delivered on that stream: no later event has a revision at or below R;
//! - reliable: from its first event on, a watch receives every event of the history that
//!   passes its key range and filters, with no gap;
//! - resumable: a watch started at revision S first receives the history's first matching
//!   event at or after S;
//! - prev_kv: each event's previous key-value is the replayed state before it (and none is
//!   sent unless asked for); filters and key range hold; every watch is confirmed with a
//!   created response first.

use std::collections::HashSet;

use crate::history::History;
use crate::watch::{Event, WatchReport};

/// Problems found, and violations of the bookmarkable guarantee that were counted but not
/// reported (for a server known to break it).
pub struct Outcome {
    /// Problems.
    pub problems: Vec<String>,
    /// Bookmarkable violations seen while that check was skipped.
    pub skipped_bookmarkable: usize,
}

/// Runs the checks; with `check_bookmarkable` false, bookmarkable violations are only
/// counted.
pub fn check(reports: &[WatchReport], history: &History, check_bookmarkable: bool) -> Outcome {
    let mut problems = Vec::new();
    let mut skipped = 0;
    for rep in reports {
        let name = &rep.spec.name;
        let mut last_rev = 0;
        let mut seen: HashSet<(i64, &str)> = HashSet::new();
        let mut progress: Option<(i64, String)> = None;
        let mut last_resp_rev: Option<i64> = None;
        for (i, op) in rep.ops.iter().enumerate() {
            let at = format!(
                "{name} watch #{i} on {} from {}",
                op.member, op.start_revision
            );
            if let Some(first) = op.responses.first() {
                if !first.created {
                    problems.push(format!(
                        "{at}: the first response is not a creation: {first:?}"
                    ));
                }
            }
            for resp in &op.responses {
                if let (Some(first), Some(prev)) = (resp.events.first(), last_resp_rev) {
                    if first.revision() == prev {
                        problems.push(format!(
                            "atomic: {at}: revision {prev} split over two responses"
                        ));
                    }
                }
                if let Some(last) = resp.events.last() {
                    last_resp_rev = Some(last.revision());
                }
                for e in &resp.events {
                    let rev = e.revision();
                    let key = e.kv.key.as_str();
                    if rev < last_rev {
                        problems.push(format!(
                            "ordered: {at}: revision {rev} ({key}) after revision {last_rev}"
                        ));
                    }
                    last_rev = last_rev.max(rev);
                    if !seen.insert((rev, key)) {
                        problems.push(format!("unique: {at}: {key} at revision {rev} again"));
                    }
                    if let Some((p, when)) = &progress {
                        if rev <= *p {
                            if check_bookmarkable {
                                problems.push(format!(
                                    "bookmarkable: {at}: event {key} at revision {rev} arrived after a progress notification at revision {p} ({when})"
                                ));
                            } else {
                                skipped += 1;
                            }
                        }
                    }
                    if !rep.spec.matches(key, e.delete) {
                        problems.push(format!(
                            "filter: {at}: {} event on {key} at revision {rev} is outside the watch",
                            if e.delete { "delete" } else { "put" }
                        ));
                    }
                    check_prev(&mut problems, &at, rep.spec.prev_kv, e, history);
                }
                if resp.progress {
                    progress = Some((
                        resp.revision,
                        format!("from {} at {:.3}s", op.member, crate::record::secs(resp.at)),
                    ));
                }
            }
            if history.complete {
                check_sequence(&mut problems, &at, rep, op, history);
            }
        }
    }
    Outcome {
        problems,
        skipped_bookmarkable: skipped,
    }
}

fn check_prev(problems: &mut Vec<String>, at: &str, asked: bool, e: &Event, history: &History) {
    let rev = e.revision();
    let key = &e.kv.key;
    if !asked {
        if e.prev.is_some() {
            problems.push(format!(
                "prev_kv: {at}: {key} at revision {rev} carries a prev_kv nobody asked for"
            ));
        }
        return;
    }
    if let Some(want) = history.prev(rev, key) {
        if e.prev != want {
            problems.push(format!(
                "prev_kv: {at}: {key} at revision {rev} has prev_kv {:?}; the replayed history has {want:?}",
                e.prev
            ));
        }
    }
}

/// Reliable and resumable for one watch.
fn check_sequence(
    problems: &mut Vec<String>,
    at: &str,
    rep: &WatchReport,
    op: &crate::watch::WatchOp,
    history: &History,
) {
    let got: Vec<Event> = op
        .responses
        .iter()
        .flat_map(|r| r.events.iter())
        .map(Event::bare)
        .collect();
    let Some(first) = got.first() else { return };
    let compacted = op.responses.iter().any(|r| r.compact_revision > 0);
    let want: Vec<&Event> = history
        .events()
        .filter(|e| e.revision() >= op.start_revision && rep.spec.matches(&e.kv.key, e.delete))
        .collect();
    if !compacted {
        match want.first() {
            Some(w) if *w != first => problems.push(format!(
                "resumable: {at}: the first event is {} at revision {}; the history's first from {} is {} at revision {}",
                first.kv.key,
                first.revision(),
                op.start_revision,
                w.kv.key,
                w.revision()
            )),
            None => problems.push(format!(
                "resumable: {at}: received {} at revision {}, which the history does not have",
                first.kv.key,
                first.revision()
            )),
            _ => {}
        }
    }
    let Some(start) = want.iter().position(|w| *w == first) else {
        return;
    };
    for (k, e) in got.iter().enumerate() {
        match want.get(start + k) {
            Some(w) if *w == e => {}
            Some(w) => {
                let before = k.checked_sub(1).map_or(0, |p| got[p].revision());
                problems.push(format!(
                    "reliable: {at}: after {k} events (the last at revision {before}) it received {} at revision {}, where the history has {} at revision {} next",
                    e.kv.key,
                    e.revision(),
                    w.kv.key,
                    w.revision()
                ));
                return;
            }
            None => {
                problems.push(format!(
                    "reliable: {at}: received {} at revision {} past the end of the history",
                    e.kv.key,
                    e.revision()
                ));
                return;
            }
        }
    }
}
