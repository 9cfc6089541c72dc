//! Exactly once: every value is applied at most once; an acknowledged write is in the
//! history at the revision it was acknowledged with (a put with the lease it named); a txn
//! whose compare failed wrote nothing; every put in the history was asked for by a client,
//! and every delete by a client or a lease.

use std::collections::HashMap;

use crate::history::History;
use crate::record::{Record, Request, Response, Then};

/// Runs the check.
pub fn check(records: &[Record], history: &History) -> Vec<String> {
    let mut problems = Vec::new();
    // every revision a value was put at
    let mut applied: HashMap<&str, Vec<(i64, &str, i64)>> = HashMap::new();
    for e in history.events().filter(|e| !e.delete) {
        applied.entry(e.kv.value.as_str()).or_default().push((
            e.kv.mod_revision,
            e.kv.key.as_str(),
            e.kv.lease,
        ));
    }
    let mut writer: HashMap<&str, &Record> = HashMap::new();
    for r in records {
        if let Some(v) = r.req.written_value() {
            writer.insert(v, r);
        }
    }
    for (v, at) in &applied {
        if at.len() > 1 {
            let revs: Vec<i64> = at.iter().map(|a| a.0).collect();
            let who = writer
                .get(v)
                .map_or_else(|| "no client".to_string(), |r| r.describe());
            problems.push(format!(
                "value {v:?} applied at {} revisions {revs:?}; written by {who}",
                revs.len()
            ));
        }
        if !writer.contains_key(v) {
            problems.push(format!(
                "revision {}: {}={v:?} was written by no client",
                at[0].0, at[0].1
            ));
        }
    }
    for r in records {
        let Some(v) = r.req.written_value() else {
            continue;
        };
        let key = r.req.key().unwrap_or_default();
        let at = applied.get(v).map(Vec::as_slice).unwrap_or_default();
        if let Some((rev, k, _)) = at.iter().find(|(_, k, _)| *k != key) {
            problems.push(format!(
                "{v:?} was applied to {k} at revision {rev}, but written to {key}: {}",
                r.describe()
            ));
        }
        let acked_at = match (&r.req, &r.resp) {
            (Request::Put { .. }, Ok(Response::Put { revision })) => Some(*revision),
            (
                Request::Txn { .. },
                Ok(Response::Txn {
                    succeeded: true,
                    revision,
                    ..
                }),
            ) => Some(*revision),
            (
                Request::Txn { .. },
                Ok(Response::Txn {
                    succeeded: false, ..
                }),
            ) => {
                if !at.is_empty() {
                    problems.push(format!(
                        "a txn whose compare failed was applied at revision {}: {}",
                        at[0].0,
                        r.describe()
                    ));
                }
                None
            }
            _ => None,
        };
        let Some(rev) = acked_at else { continue };
        if !history.complete && at.is_empty() {
            continue;
        }
        match at.iter().find(|a| a.0 == rev) {
            None if at.is_empty() => problems.push(format!(
                "acknowledged at revision {rev} but never applied: {}",
                r.describe()
            )),
            None => problems.push(format!(
                "acknowledged at revision {rev} but applied at {:?}: {}",
                at.iter().map(|a| a.0).collect::<Vec<_>>(),
                r.describe()
            )),
            Some((_, _, lease)) => {
                if let Request::Put { lease: want, .. } = &r.req {
                    if lease != want {
                        problems.push(format!(
                            "revision {rev}: put with lease {want:x} stored with lease {lease:x}: {}",
                            r.describe()
                        ));
                    }
                }
            }
        }
    }
    problems.extend(deletes(records, history));
    problems
}

/// Acknowledged deletes are in the history at their revision; every other delete of a key
/// was asked for by a client whose outcome is unknown, or removed a key with a lease.
fn deletes(records: &[Record], history: &History) -> Vec<String> {
    let mut problems = Vec::new();
    let mut claimed: HashMap<(i64, &str), &Record> = HashMap::new();
    let mut unknown: HashMap<&str, usize> = HashMap::new();
    for r in records {
        let is_delete = matches!(
            &r.req,
            Request::Delete { .. }
                | Request::Txn {
                    then: Then::Delete,
                    ..
                }
        );
        if !is_delete {
            continue;
        }
        let key = r.req.key().unwrap_or_default();
        match &r.resp {
            Ok(Response::Delete {
                deleted: 1..,
                revision,
            })
            | Ok(Response::Txn {
                succeeded: true,
                revision,
                ..
            }) => {
                claimed.insert((*revision, key), r);
                let found = history
                    .revs
                    .get(revision)
                    .is_some_and(|evs| evs.iter().any(|e| e.delete && e.kv.key == key));
                if history.complete && !found {
                    problems.push(format!(
                        "acknowledged delete at revision {revision} is not in the history (there: {:?}): {}",
                        history.revs.get(revision),
                        r.describe()
                    ));
                }
            }
            Err(_) => *unknown.entry(key).or_default() += 1,
            _ => {}
        }
    }
    let mut unexplained: HashMap<&str, Vec<i64>> = HashMap::new();
    for e in history.events().filter(|e| e.delete) {
        let rev = e.revision();
        let key = e.kv.key.as_str();
        if claimed.contains_key(&(rev, key)) {
            continue;
        }
        let leased = history
            .prev(rev, key)
            .flatten()
            .is_some_and(|kv| kv.lease != 0);
        if !leased {
            unexplained.entry(key).or_default().push(rev);
        }
    }
    for (key, revs) in unexplained {
        let allowed = unknown.get(key).copied().unwrap_or(0);
        if revs.len() > allowed {
            problems.push(format!(
                "{key} was deleted at revisions {revs:?}, but only {allowed} delete(s) of it have an unknown outcome and no lease was attached"
            ));
        }
    }
    problems
}
