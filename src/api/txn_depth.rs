//! How deeply a Txn request nests, read from its protobuf encoding without decoding it.
//!
//! A Txn may contain Txns (`RequestOp.request_txn`), and decoding, validating and applying
//! one recurses once per level. The depth is measured iteratively, before anything decodes
//! the request, so that a hostile request cannot exhaust a thread's stack: one nested beyond
//! [`MAX_TXN_DEPTH`], or beyond what etcd's operation budget could ever accept, is refused
//! with etcd's `too many operations in txn request` without being decoded.

/// The deepest Txn nesting kvd decodes, whatever `--max-txn-ops` allows (etcd's default budget
/// of 128 operations accepts at most 129 levels).
pub const MAX_TXN_DEPTH: usize = 256;

/// The deepest nesting that etcd's operation budget of `max_txn_ops` can accept: every level
/// but the innermost spends at least one operation on the Txn it contains.
pub fn depth_limit(max_txn_ops: usize) -> usize {
    max_txn_ops.saturating_add(1).min(MAX_TXN_DEPTH)
}

/// `TxnRequest` fields holding `RequestOp`s (success, failure).
const TXN_OP_FIELDS: [u64; 2] = [2, 3];
/// The `RequestOp` field holding a `TxnRequest`.
const OP_TXN_FIELD: u64 = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Txn,
    Op,
}

/// The nesting depth of the encoded `TxnRequest` in `bytes` (1 = no Txn inside), or `limit + 1`
/// as soon as it is known to exceed `limit`. `None` when the bytes are not well-formed protobuf
/// (the decoder then gives its own error).
pub fn txn_depth(bytes: &[u8], limit: usize) -> Option<usize> {
    let mut deepest = 1;
    let mut pending: Vec<(&[u8], Kind, usize)> = vec![(bytes, Kind::Txn, 1)];
    while let Some((mut msg, kind, depth)) = pending.pop() {
        while !msg.is_empty() {
            let key = varint(&mut msg)?;
            let (field, wire_type) = (key >> 3, key & 7);
            match wire_type {
                0 => {
                    varint(&mut msg)?;
                }
                1 => msg = msg.get(8..)?,
                5 => msg = msg.get(4..)?,
                2 => {
                    let len = usize::try_from(varint(&mut msg)?).ok()?;
                    let inner = msg.get(..len)?;
                    msg = &msg[len..];
                    match kind {
                        Kind::Txn if TXN_OP_FIELDS.contains(&field) => {
                            pending.push((inner, Kind::Op, depth));
                        }
                        Kind::Op if field == OP_TXN_FIELD => {
                            deepest = deepest.max(depth + 1);
                            if deepest > limit {
                                return Some(limit + 1);
                            }
                            pending.push((inner, Kind::Txn, depth + 1));
                        }
                        _ => {}
                    }
                }
                _ => return None,
            }
        }
    }
    Some(deepest)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::proto::etcdserverpb::request_op::Request;
    use crate::proto::etcdserverpb::{PutRequest, RequestOp, TxnRequest};

    /// The encoding of a chain of `levels` Txns, each holding the next in its failure branch,
    /// the innermost a put: built iteratively (encoding or dropping a deep value recurses).
    fn chain(levels: usize) -> Vec<u8> {
        let mut bytes = TxnRequest {
            success: vec![RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: b"k".to_vec(),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        }
        .encode_to_vec();
        for _ in 1..levels {
            let mut op = Vec::new();
            prost::encoding::bytes::encode(4, &bytes, &mut op);
            let mut txn = Vec::new();
            prost::encoding::bytes::encode(3, &op, &mut txn);
            bytes = txn;
        }
        bytes
    }

    #[test]
    fn measures_nesting_without_decoding() {
        for levels in [1, 2, 50, 129] {
            let bytes = chain(levels);
            assert_eq!(txn_depth(&bytes, 1000), Some(levels));
        }
        let bytes = chain(5000);
        assert_eq!(txn_depth(&bytes, depth_limit(128)), Some(130));
        assert_eq!(txn_depth(&[0x12, 0x05, 0x01], 10), None, "truncated");
    }

    #[test]
    fn etcds_budget_bounds_the_depth() {
        assert_eq!(depth_limit(128), 129);
        assert_eq!(depth_limit(1_000_000), MAX_TXN_DEPTH);
    }

    #[test]
    fn the_deepest_accepted_txn_decodes_on_a_small_stack() {
        let bytes = chain(MAX_TXN_DEPTH);
        let decoded = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || TxnRequest::decode(bytes.as_slice()).map(|t| t.encoded_len()))
            .expect("thread")
            .join()
            .expect("no stack overflow");
        assert!(decoded.is_ok(), "{decoded:?}");
    }
}
