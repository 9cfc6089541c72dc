//! etcd's request semantics on top of the store: Range (filters, sorting, limit, `more`), Put
//! (prev_kv, ignore_value, ignore_lease), DeleteRange, and Txn (compares evaluated against the
//! state before the transaction, nested transactions, checks before any write).

use super::store::{EncodedRange, MvccStore, WriteTxn};
use super::{MvccError, Result};
use crate::proto::etcdserverpb::{
    compare, range_request, request_op, response_op, Compare, DeleteRangeRequest,
    DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::proto::mvccpb::KeyValue;

/// A view that ranges can be served from: the committed store or a write transaction.
pub trait ReadView {
    /// Key-values live at `rev` (0 = latest), at most `limit` (0 = all), the total count, and the
    /// view's current revision.
    ///
    /// # Errors
    /// Compacted or future revision, storage failure.
    fn range_kvs(
        &self,
        key: &[u8],
        range_end: &[u8],
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<(Vec<KeyValue>, usize, i64)>;
}

impl ReadView for MvccStore {
    fn range_kvs(
        &self,
        key: &[u8],
        range_end: &[u8],
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<(Vec<KeyValue>, usize, i64)> {
        let at = self.check_rev(rev)?;
        let (kvs, count) = self.range_at(key, range_end, at, limit, count_only)?;
        Ok((kvs, count, self.current_rev()))
    }
}

impl ReadView for WriteTxn<'_> {
    fn range_kvs(
        &self,
        key: &[u8],
        range_end: &[u8],
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<(Vec<KeyValue>, usize, i64)> {
        self.range(key, range_end, rev, limit, count_only)
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// Serves a Range request as etcd's applier does.
///
/// # Errors
/// Compacted or future revision, storage failure.
pub fn range(view: &impl ReadView, r: &RangeRequest) -> Result<RangeResponse> {
    crate::metrics::mvcc::range();
    let sort_order = range_request::SortOrder::try_from(r.sort_order).unwrap_or_default();
    let sort_target = range_request::SortTarget::try_from(r.sort_target).unwrap_or_default();
    let filtered = r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    let requested_limit = usize::try_from(r.limit.max(0)).unwrap_or(usize::MAX);
    let mut limit = if sort_order != range_request::SortOrder::None || filtered {
        0
    } else {
        requested_limit
    };
    if limit > 0 {
        limit += 1; // one more tells whether there is more
    }
    let (mut kvs, count, rev) =
        view.range_kvs(&r.key, &r.range_end, r.revision, limit, r.count_only)?;
    if r.max_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision <= r.max_mod_revision);
    }
    if r.min_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision >= r.min_mod_revision);
    }
    if r.max_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision <= r.max_create_revision);
    }
    if r.min_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision >= r.min_create_revision);
    }
    let mut order = sort_order;
    if sort_target != range_request::SortTarget::Key && order == range_request::SortOrder::None {
        order = range_request::SortOrder::Ascend;
    }
    if order != range_request::SortOrder::None {
        use range_request::SortTarget as T;
        kvs.sort_by(|a, b| {
            let o = match sort_target {
                T::Key => a.key.cmp(&b.key),
                T::Version => a.version.cmp(&b.version),
                T::Create => a.create_revision.cmp(&b.create_revision),
                T::Mod => a.mod_revision.cmp(&b.mod_revision),
                T::Value => a.value.cmp(&b.value),
            };
            if order == range_request::SortOrder::Descend {
                o.reverse()
            } else {
                o
            }
        });
    }
    let mut more = false;
    if requested_limit > 0 && kvs.len() > requested_limit {
        kvs.truncate(requested_limit);
        more = true;
    }
    if r.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }
    Ok(RangeResponse {
        header: header(rev),
        kvs,
        more,
        count: i64::try_from(count).unwrap_or(i64::MAX),
        ..Default::default()
    })
}

/// Whether `r` returns key-values in key order, unfiltered: what [`range_encoded`] serves.
fn in_key_order_unfiltered(r: &RangeRequest) -> bool {
    use range_request::{SortOrder, SortTarget};
    let order = SortOrder::try_from(r.sort_order).unwrap_or_default();
    let target = SortTarget::try_from(r.sort_target).unwrap_or_default();
    target == SortTarget::Key
        && matches!(order, SortOrder::None | SortOrder::Ascend)
        && r.min_mod_revision == 0
        && r.max_mod_revision == 0
        && r.min_create_revision == 0
        && r.max_create_revision == 0
}

/// A Range request begun under the MVCC lock and finished without it (see
/// [`start_range_encoded`]).
pub enum RangeJob {
    /// Served already (requests that sort or filter).
    Done(RangeResponse),
    /// The revisions are chosen; their values are still to read.
    Read {
        /// The reads left.
        values: EncodedRange,
        /// The store's revision when the request began.
        revision: i64,
    },
}

impl RangeJob {
    /// The response.
    ///
    /// # Errors
    /// Storage failure.
    pub fn finish(self) -> Result<RangeResponse> {
        match self {
            Self::Done(resp) => Ok(resp),
            Self::Read { values, revision } => {
                let (encoded_kvs, count, more) = values.read()?;
                Ok(RangeResponse {
                    header: header(revision),
                    kvs: Vec::new(),
                    more,
                    count: i64::try_from(count).unwrap_or(i64::MAX),
                    encoded_kvs,
                })
            }
        }
    }
}

/// Begins serving a Range request as [`range`] does, with the key-values in their wire form
/// (`encoded_kvs`), copied from storage as stored: what needs `store` happens here, the
/// reading of values in [`RangeJob::finish`], which the caller runs after releasing the MVCC
/// lock. Requests that sort or filter are served here, by [`range`].
///
/// # Errors
/// Compacted or future revision, storage failure.
pub fn start_range_encoded(store: &MvccStore, r: &RangeRequest) -> Result<RangeJob> {
    if !in_key_order_unfiltered(r) {
        return range(store, r).map(RangeJob::Done);
    }
    crate::metrics::mvcc::range();
    let at = store.check_rev(r.revision)?;
    let limit = usize::try_from(r.limit.max(0)).unwrap_or(usize::MAX);
    let values =
        store.plan_encoded_range(&r.key, &r.range_end, at, limit, r.count_only, r.keys_only);
    Ok(RangeJob::Read {
        values,
        revision: store.current_rev(),
    })
}

/// Applies a Put inside a write transaction.
///
/// # Errors
/// [`MvccError::KeyNotFound`] for ignore_value/ignore_lease on a missing key; storage failure.
pub fn put(txn: &mut WriteTxn<'_>, p: &PutRequest) -> Result<PutResponse> {
    let prev = if p.ignore_value || p.ignore_lease || p.prev_kv {
        txn.get(&p.key)?
    } else {
        None
    };
    if (p.ignore_value || p.ignore_lease) && prev.is_none() {
        return Err(MvccError::KeyNotFound);
    }
    let value = match (&prev, p.ignore_value) {
        (Some(prev), true) => prev.value.clone(),
        _ => p.value.clone(),
    };
    let lease = match (&prev, p.ignore_lease) {
        (Some(prev), true) => prev.lease,
        _ => p.lease,
    };
    let rev = txn.put(&p.key, &value, lease)?;
    crate::metrics::mvcc::put(p.key.len(), value.len());
    Ok(PutResponse {
        header: header(rev),
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

/// Applies a DeleteRange inside a write transaction.
///
/// # Errors
/// Storage failure.
pub fn delete_range(txn: &mut WriteTxn<'_>, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
    let prev_kvs = if d.prev_kv {
        txn.range(&d.key, &d.range_end, 0, 0, false)?.0
    } else {
        Vec::new()
    };
    let deleted = txn.delete_range(&d.key, &d.range_end)?;
    crate::metrics::mvcc::delete();
    let rev = if deleted > 0 || txn.read_rev() > txn.begin_rev() {
        txn.begin_rev() + 1
    } else {
        txn.begin_rev()
    };
    Ok(DeleteRangeResponse {
        header: header(rev),
        deleted,
        prev_kvs,
    })
}

fn compare_one(view: &impl ReadView, c: &Compare) -> Result<bool> {
    // A compare reads its key: etcd counts it as a range.
    crate::metrics::mvcc::range();
    let (kvs, _, _) = match view.range_kvs(&c.key, &c.range_end, 0, 0, false) {
        Ok(r) => r,
        Err(MvccError::Storage(e)) => return Err(MvccError::Storage(e)),
        Err(_) => return Ok(false),
    };
    let target = compare::CompareTarget::try_from(c.target).unwrap_or_default();
    if kvs.is_empty() {
        if target == compare::CompareTarget::Value {
            return Ok(false);
        }
        return Ok(compare_kv(c, &KeyValue::default()));
    }
    Ok(kvs.iter().all(|kv| compare_kv(c, kv)))
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use compare::TargetUnion as U;
    let ord = match &c.target_union {
        Some(U::Value(v)) => kv.value.as_slice().cmp(v.as_slice()),
        Some(U::Version(v)) => kv.version.cmp(v),
        Some(U::CreateRevision(v)) => kv.create_revision.cmp(v),
        Some(U::ModRevision(v)) => kv.mod_revision.cmp(v),
        Some(U::Lease(v)) => kv.lease.cmp(v),
        None => match compare::CompareTarget::try_from(c.target).unwrap_or_default() {
            compare::CompareTarget::Value => kv.value.as_slice().cmp(&[][..]),
            compare::CompareTarget::Version => kv.version.cmp(&0),
            compare::CompareTarget::Create => kv.create_revision.cmp(&0),
            compare::CompareTarget::Mod => kv.mod_revision.cmp(&0),
            compare::CompareTarget::Lease => kv.lease.cmp(&0),
        },
    };
    match compare::CompareResult::try_from(c.result).unwrap_or_default() {
        compare::CompareResult::Equal => ord.is_eq(),
        compare::CompareResult::NotEqual => ord.is_ne(),
        compare::CompareResult::Greater => ord.is_gt(),
        compare::CompareResult::Less => ord.is_lt(),
    }
}

/// Evaluates every compare of a transaction and its nested transactions against `view` before
/// anything is written, in the order the branches will run (etcd's "txn path").
///
/// # Errors
/// Storage failure.
pub fn compare_path(view: &impl ReadView, t: &TxnRequest) -> Result<Vec<bool>> {
    let path = branch_path(view, t)?;
    // Every compare is a read; with the branch's operations, more than one makes it a txn.
    let branch = if path[0] { &t.success } else { &t.failure };
    crate::metrics::mvcc::txn(t.compare.len() + branch.len());
    Ok(path)
}

fn branch_path(view: &impl ReadView, t: &TxnRequest) -> Result<Vec<bool>> {
    let mut ok = true;
    for c in &t.compare {
        if !compare_one(view, c)? {
            ok = false;
            break;
        }
    }
    let mut path = vec![ok];
    let ops = if ok { &t.success } else { &t.failure };
    for op in ops {
        if let Some(request_op::Request::RequestTxn(inner)) = &op.request {
            path.extend(branch_path(view, inner)?);
        }
    }
    Ok(path)
}

/// Checks the operations a transaction will run before anything is written: ranges at readable
/// revisions, puts on existing leases and (for ignore_value/ignore_lease) existing keys.
///
/// # Errors
/// The first failing check.
pub fn check_txn_requests(
    view: &impl ReadView,
    t: &TxnRequest,
    path: &[bool],
    lease_exists: &dyn Fn(i64) -> bool,
) -> Result<usize> {
    let ops = if path[0] { &t.success } else { &t.failure };
    let mut used = 1;
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                if r.revision != 0 {
                    view.range_kvs(&r.key, &r.range_end, r.revision, 1, true)?;
                }
            }
            Some(request_op::Request::RequestPut(p)) => {
                if p.lease != 0 && !p.ignore_lease && !lease_exists(p.lease) {
                    return Err(MvccError::LeaseNotFound);
                }
                if p.ignore_value || p.ignore_lease {
                    let (kvs, _, _) = view.range_kvs(&p.key, b"", 0, 1, false)?;
                    if kvs.is_empty() {
                        return Err(MvccError::KeyNotFound);
                    }
                }
            }
            Some(request_op::Request::RequestTxn(inner)) => {
                used += check_txn_requests(view, inner, &path[used..], lease_exists)?;
            }
            Some(request_op::Request::RequestDeleteRange(_)) | None => {}
        }
    }
    Ok(used)
}

/// The outcome of running a transaction's branch.
pub struct TxnOutcome {
    /// The response.
    pub response: TxnResponse,
    /// How many entries of the path it consumed.
    pub used: usize,
}

/// Runs the branch chosen by `path` inside a write transaction.
///
/// # Errors
/// Storage failure (checks were made before).
pub fn run_txn(txn: &mut WriteTxn<'_>, t: &TxnRequest, path: &[bool]) -> Result<TxnOutcome> {
    let succeeded = path[0];
    let ops = if succeeded { &t.success } else { &t.failure };
    let mut used = 1;
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let response = match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                Some(response_op::Response::ResponseRange(range(txn, r)?))
            }
            Some(request_op::Request::RequestPut(p)) => {
                Some(response_op::Response::ResponsePut(put(txn, p)?))
            }
            Some(request_op::Request::RequestDeleteRange(d)) => Some(
                response_op::Response::ResponseDeleteRange(delete_range(txn, d)?),
            ),
            Some(request_op::Request::RequestTxn(inner)) => {
                let out = run_txn(txn, inner, &path[used..])?;
                used += out.used;
                Some(response_op::Response::ResponseTxn(out.response))
            }
            None => None,
        };
        responses.push(ResponseOp { response });
    }
    Ok(TxnOutcome {
        response: TxnResponse {
            header: header(txn.read_rev()),
            succeeded,
            responses,
        },
        used,
    })
}

/// Runs a read-only transaction against the committed store.
///
/// # Errors
/// Compacted or future revision, storage failure.
pub fn run_read_only_txn(store: &MvccStore, t: &TxnRequest) -> Result<TxnResponse> {
    let path = compare_path(store, t)?;
    check_txn_requests(store, t, &path, &|_| true)?;
    read_only_branch(store, t, &path).map(|(r, _)| r)
}

fn read_only_branch(
    store: &MvccStore,
    t: &TxnRequest,
    path: &[bool],
) -> Result<(TxnResponse, usize)> {
    let succeeded = path[0];
    let ops = if succeeded { &t.success } else { &t.failure };
    let mut used = 1;
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let response = match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                Some(response_op::Response::ResponseRange(range(store, r)?))
            }
            Some(request_op::Request::RequestTxn(inner)) => {
                let (resp, n) = read_only_branch(store, inner, &path[used..])?;
                used += n;
                Some(response_op::Response::ResponseTxn(resp))
            }
            _ => None,
        };
        responses.push(ResponseOp { response });
    }
    Ok((
        TxnResponse {
            header: header(store.current_rev()),
            succeeded,
            responses,
        },
        used,
    ))
}

/// True when no branch of the transaction (at any depth) writes.
pub fn is_read_only(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).all(op_is_read_only)
}

fn op_is_read_only(op: &RequestOp) -> bool {
    match &op.request {
        Some(request_op::Request::RequestPut(_))
        | Some(request_op::Request::RequestDeleteRange(_)) => false,
        Some(request_op::Request::RequestTxn(t)) => is_read_only(t),
        _ => true,
    }
}
