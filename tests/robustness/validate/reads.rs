//! Every answer matches the replayed history at its revision: a get returns the key-value
//! the history holds at the header revision; a txn's compare held on the state before its
//! revision when it succeeded and failed on the state at its revision when it did not (and
//! its else-read returned that state); a delete that removed nothing found nothing; a list
//! page at revision R holds exactly the first keys the history holds at R after its start.

use crate::history::History;
use crate::record::{Cond, Kv, Record, Request, Response};

fn holds(cond: &Cond, state: &Option<Kv>) -> bool {
    match cond {
        Cond::Value(Some(v)) => state.as_ref().is_some_and(|kv| kv.value == *v),
        Cond::Value(None) => state.is_none(),
        Cond::ModRevision { rev, .. } => state.as_ref().map_or(0, |kv| kv.mod_revision) == *rev,
        Cond::Version(v) => state.as_ref().map_or(0, |kv| kv.version) == *v,
    }
}

/// Runs the check (only on a complete history: a partial one cannot say what was there).
pub fn check(records: &[Record], history: &History) -> Vec<String> {
    let mut problems = Vec::new();
    if !history.complete {
        return problems;
    }
    for r in records {
        let Ok(resp) = &r.resp else { continue };
        match (&r.req, resp) {
            (Request::Get { key }, Response::Get { kv, revision }) => {
                let want = history.state(key, *revision);
                if *kv != want {
                    problems.push(format!(
                        "the history holds {want:?} at revision {revision}: {}",
                        r.describe()
                    ));
                }
            }
            (
                Request::Txn { key, cond, .. },
                Response::Txn {
                    succeeded,
                    revision,
                    else_kv,
                },
            ) => {
                if *succeeded {
                    let before = history.state(key, revision - 1);
                    if !holds(cond, &before) {
                        problems.push(format!(
                            "the compare succeeded although the history holds {before:?} before revision {revision}: {}",
                            r.describe()
                        ));
                    }
                } else {
                    let now = history.state(key, *revision);
                    if holds(cond, &now) {
                        problems.push(format!(
                            "the compare failed although the history holds {now:?} at revision {revision}: {}",
                            r.describe()
                        ));
                    }
                    if *else_kv != now {
                        problems.push(format!(
                            "the else-read differs from the history's {now:?} at revision {revision}: {}",
                            r.describe()
                        ));
                    }
                }
            }
            (Request::Delete { key }, Response::Delete { deleted, revision }) => {
                let at = if *deleted > 0 {
                    revision - 1
                } else {
                    *revision
                };
                let state = history.state(key, at);
                if state.is_some() != (*deleted > 0) {
                    problems.push(format!(
                        "the history holds {state:?} at revision {at}: {}",
                        r.describe()
                    ));
                }
            }
            (
                Request::List {
                    start,
                    end,
                    limit,
                    revision,
                },
                Response::List {
                    kvs,
                    more,
                    revision: header,
                },
            ) => {
                let at = if *revision == 0 { *header } else { *revision };
                let mut want = history.range(start, end, at);
                let want_more = i64::try_from(want.len()).unwrap_or(i64::MAX) > *limit;
                want.truncate(usize::try_from(*limit).unwrap_or(usize::MAX));
                if *kvs != want || *more != want_more {
                    problems.push(format!(
                        "the history holds {want:?} (more: {want_more}) at revision {at}: {}",
                        r.describe()
                    ));
                }
            }
            _ => {}
        }
    }
    problems
}
