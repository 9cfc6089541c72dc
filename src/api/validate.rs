//! Request checks made before anything is proposed: keys present, option combinations, txn
//! size and duplicate keys.

use std::collections::HashSet;

use super::status::ApiError;
use crate::proto::etcdserverpb::{
    request_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

/// Checks a Range request.
///
/// # Errors
/// [`ApiError::EmptyKey`].
pub fn range(r: &RangeRequest) -> Result<(), ApiError> {
    if r.key.is_empty() {
        return Err(ApiError::EmptyKey);
    }
    Ok(())
}

/// Checks a Put request.
///
/// # Errors
/// Empty key, or a value/lease given together with ignore_value/ignore_lease.
pub fn put(p: &PutRequest) -> Result<(), ApiError> {
    if p.key.is_empty() {
        return Err(ApiError::EmptyKey);
    }
    if p.ignore_value && !p.value.is_empty() {
        return Err(ApiError::ValueProvided);
    }
    if p.ignore_lease && p.lease != 0 {
        return Err(ApiError::LeaseProvided);
    }
    Ok(())
}

/// Checks a DeleteRange request.
///
/// # Errors
/// [`ApiError::EmptyKey`].
pub fn delete_range(d: &DeleteRangeRequest) -> Result<(), ApiError> {
    if d.key.is_empty() {
        return Err(ApiError::EmptyKey);
    }
    Ok(())
}

/// Checks a Txn request: sizes, every operation, and duplicate keys. As etcd, a nested txn
/// gets what its parent left of the operation budget, so deep nesting runs out of it.
///
/// # Errors
/// Too many operations, an invalid operation, or a duplicate key.
pub fn txn(t: &TxnRequest, max_ops: usize) -> Result<(), ApiError> {
    let ops = t.compare.len().max(t.success.len()).max(t.failure.len());
    if ops > max_ops {
        return Err(ApiError::TooManyOps);
    }
    for c in &t.compare {
        if c.key.is_empty() {
            return Err(ApiError::EmptyKey);
        }
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) => range(r)?,
            Some(request_op::Request::RequestPut(p)) => put(p)?,
            Some(request_op::Request::RequestDeleteRange(d)) => delete_range(d)?,
            Some(request_op::Request::RequestTxn(inner)) => txn(inner, max_ops - ops)?,
            None => {}
        }
    }
    check_intervals(&t.success)?;
    check_intervals(&t.failure)?;
    Ok(())
}

struct Writes {
    puts: HashSet<Vec<u8>>,
    deletes: Vec<(Vec<u8>, Vec<u8>)>,
}

fn in_range(key: &[u8], (start, end): &(Vec<u8>, Vec<u8>)) -> bool {
    if end.is_empty() {
        key == start.as_slice()
    } else if end.as_slice() == [0] {
        key >= start.as_slice()
    } else {
        key >= start.as_slice() && key < end.as_slice()
    }
}

/// etcd's rule: within one branch a key may be written once, and not both put and deleted.
/// The two branches of a nested txn never both run, so they may overlap each other.
fn check_intervals(ops: &[RequestOp]) -> Result<Writes, ApiError> {
    let mut w = Writes {
        puts: HashSet::new(),
        deletes: Vec::new(),
    };
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestDeleteRange(d)) => {
                w.deletes.push((d.key.clone(), d.range_end.clone()));
            }
            Some(request_op::Request::RequestPut(p)) if !w.puts.insert(p.key.clone()) => {
                return Err(ApiError::DuplicateKey);
            }
            _ => {}
        }
    }
    for op in ops {
        if let Some(request_op::Request::RequestTxn(inner)) = &op.request {
            let s = check_intervals(&inner.success)?;
            let f = check_intervals(&inner.failure)?;
            for k in s.puts.iter().chain(f.puts.iter()) {
                if w.puts.contains(k) {
                    return Err(ApiError::DuplicateKey);
                }
            }
            for k in s.puts.into_iter().chain(f.puts) {
                w.puts.insert(k);
            }
            w.deletes.extend(s.deletes);
            w.deletes.extend(f.deletes);
        }
    }
    for k in &w.puts {
        if w.deletes.iter().any(|r| in_range(k, r)) {
            return Err(ApiError::DuplicateKey);
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::request_op::Request;

    fn put_op(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: k.into(),
                ..Default::default()
            })),
        }
    }

    fn del_op(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: k.into(),
                range_end: end.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_within_a_branch_only() {
        let t = TxnRequest {
            success: vec![put_op("a"), put_op("a")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(ApiError::DuplicateKey));
        let t = TxnRequest {
            success: vec![put_op("b"), del_op("a", "c")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(ApiError::DuplicateKey));
        let t = TxnRequest {
            success: vec![put_op("a")],
            failure: vec![put_op("a")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Ok(()));
        let nested = TxnRequest {
            success: vec![put_op("a")],
            failure: vec![put_op("a")],
            ..Default::default()
        };
        let t = TxnRequest {
            success: vec![
                RequestOp {
                    request: Some(Request::RequestTxn(nested)),
                },
                put_op("a"),
            ],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(ApiError::DuplicateKey));
    }

    #[test]
    fn too_many_ops_and_empty_keys() {
        let t = TxnRequest {
            success: (0..3).map(|i| put_op(&i.to_string())).collect(),
            ..Default::default()
        };
        assert_eq!(txn(&t, 2), Err(ApiError::TooManyOps));
        assert_eq!(put(&PutRequest::default()), Err(ApiError::EmptyKey));
        let p = PutRequest {
            key: "k".into(),
            value: "v".into(),
            ignore_value: true,
            ..Default::default()
        };
        assert_eq!(put(&p), Err(ApiError::ValueProvided));
    }
}
