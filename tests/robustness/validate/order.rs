//! Revisions respect real time, the way etcd orders operations: an operation invoked after
//! another one returned comes later in revision order. A write then gets a revision above
//! everything that completed before it was sent (writes and the header revision of reads);
//! a read returns a header revision at or above every write and read that completed before
//! it was sent. This is what a put applied again after later writes, or a stale read,
//! breaks.

use crate::record::{Record, Request, Response};

/// (revision, is a write) of an acknowledged operation that has a place in revision order.
fn position(r: &Record) -> Option<(i64, bool)> {
    let resp = r.resp.as_ref().ok()?;
    match (&r.req, resp) {
        (Request::Get { .. }, Response::Get { revision, .. }) => Some((*revision, false)),
        (Request::Put { .. }, Response::Put { revision }) => Some((*revision, true)),
        (Request::Delete { .. }, Response::Delete { deleted, revision }) => {
            Some((*revision, *deleted > 0))
        }
        (
            Request::Txn { .. },
            Response::Txn {
                succeeded,
                revision,
                ..
            },
        ) => Some((*revision, *succeeded)),
        (Request::List { revision: 0, .. }, Response::List { revision, .. }) => {
            Some((*revision, false))
        }
        _ => None,
    }
}

/// Runs the check.
pub fn check(records: &[Record]) -> Vec<String> {
    let ops: Vec<(&Record, u64, i64, bool)> = records
        .iter()
        .filter_map(|r| {
            let (rev, write) = position(r)?;
            Some((r, r.ret?, rev, write))
        })
        .collect();
    let mut by_call: Vec<usize> = (0..ops.len()).collect();
    by_call.sort_by_key(|&i| ops[i].0.call);
    let mut by_ret: Vec<usize> = (0..ops.len()).collect();
    by_ret.sort_by_key(|&i| ops[i].1);
    let mut problems = Vec::new();
    // the completed operation with the highest revision so far
    let mut top: Option<usize> = None;
    let mut j = 0;
    for &b in &by_call {
        let (rb, _, rev_b, write_b) = ops[b];
        while j < by_ret.len() && ops[by_ret[j]].1 < rb.call {
            let a = by_ret[j];
            if top.is_none_or(|t| ops[a].2 > ops[t].2) {
                top = Some(a);
            }
            j += 1;
        }
        let Some(t) = top else { continue };
        let (ra, _, rev_a, _) = ops[t];
        let wrong = if write_b {
            rev_b <= rev_a
        } else {
            rev_b < rev_a
        };
        if wrong {
            problems.push(format!(
                "{} at revision {rev_b} was sent after {} at revision {rev_a} had returned: {} / {}",
                if write_b { "a write" } else { "a read" },
                if ops[t].3 { "a write" } else { "a read" },
                rb.describe(),
                ra.describe()
            ));
        }
    }
    problems
}
