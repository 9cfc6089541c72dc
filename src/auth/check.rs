//! Which permissions each request needs, and the check of them against the auth store.
//!
//! The same [`check`] runs before a request is proposed (so a refused request costs no raft
//! entry) and again when its command is applied, with the identity the command carries (so a
//! permission revoked in between is honoured on every member alike, as etcd's apply-time
//! check does). The needs follow etcd 3.4:
//! - range and compare: read on `[key, range_end)`;
//! - put: write on the key, write on every key already attached to its lease, read on the key
//!   with `prev_kv`;
//! - delete: write on the range, read on it with `prev_kv`;
//! - txn: every compare and every operation of both branches, nested transactions included
//!   (etcd 3.4 skips nested ones; kvd checks them, and checks the lease and `prev_kv` of puts
//!   inside transactions as for plain puts);
//! - lease revoke: write on every attached key;
//! - administration (users, roles, enabling auth, and kvd's admin-only RPCs): the root role.

use parking_lot::Mutex;

use super::perms::Access;
use super::{AuthError, AuthInfo, AuthStore};
use crate::lease::Lessor;
use crate::proto::etcdserverpb::{request_op, DeleteRangeRequest, PutRequest, TxnRequest};
use crate::proto::kvdpb::{command::Op, AuthHeader};

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy)]
pub enum Need<'a> {
    /// Reading `[key, range_end)` (one key when `range_end` is empty).
    Range {
        /// First key.
        key: &'a [u8],
        /// End of the range.
        range_end: &'a [u8],
    },
    /// A put.
    Put(&'a PutRequest),
    /// A delete.
    Delete(&'a DeleteRangeRequest),
    /// A transaction.
    Txn(&'a TxnRequest),
    /// Revoking a lease (and deleting its keys).
    LeaseRevoke(i64),
    /// An administrative operation.
    Admin,
}

/// The keys attached to a lease (none for an unknown lease).
pub type LeaseKeys<'a> = &'a dyn Fn(i64) -> Vec<Vec<u8>>;

/// [`LeaseKeys`] read from `lessor` (locked briefly for each lease asked about).
pub fn lessor_keys(lessor: &Mutex<Lessor>) -> impl Fn(i64) -> Vec<Vec<u8>> + '_ {
    move |id| {
        lessor
            .lock()
            .get(id)
            .map(|l| l.keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Checks that `who` may do `need`. Allowed whenever auth is disabled.
///
/// # Errors
/// The first refusal, as etcd would report it.
pub fn check(
    store: &AuthStore,
    who: &AuthInfo,
    need: Need<'_>,
    lease_keys: LeaseKeys<'_>,
) -> Result<(), AuthError> {
    if !store.is_enabled() {
        return Ok(());
    }
    match need {
        Need::Range { key, range_end } => store.check_key_op(who, key, range_end, Access::Read),
        Need::Put(p) => check_put(store, who, p, lease_keys),
        Need::Delete(d) => check_delete(store, who, d),
        Need::Txn(t) => check_txn(store, who, t, lease_keys),
        Need::LeaseRevoke(id) => check_lease_keys(store, who, id, lease_keys),
        Need::Admin => store.check_admin(who),
    }
}

fn check_put(
    store: &AuthStore,
    who: &AuthInfo,
    p: &PutRequest,
    lease_keys: LeaseKeys<'_>,
) -> Result<(), AuthError> {
    store.check_key_op(who, &p.key, b"", Access::Write)?;
    if p.lease != 0 {
        check_lease_keys(store, who, p.lease, lease_keys)?;
    }
    if p.prev_kv {
        store.check_key_op(who, &p.key, b"", Access::Read)?;
    }
    Ok(())
}

fn check_delete(
    store: &AuthStore,
    who: &AuthInfo,
    d: &DeleteRangeRequest,
) -> Result<(), AuthError> {
    if d.prev_kv {
        store.check_key_op(who, &d.key, &d.range_end, Access::Read)?;
    }
    store.check_key_op(who, &d.key, &d.range_end, Access::Write)
}

fn check_lease_keys(
    store: &AuthStore,
    who: &AuthInfo,
    lease: i64,
    lease_keys: LeaseKeys<'_>,
) -> Result<(), AuthError> {
    for key in lease_keys(lease) {
        store.check_key_op(who, &key, b"", Access::Write)?;
    }
    Ok(())
}

fn check_txn(
    store: &AuthStore,
    who: &AuthInfo,
    t: &TxnRequest,
    lease_keys: LeaseKeys<'_>,
) -> Result<(), AuthError> {
    for c in &t.compare {
        store.check_key_op(who, &c.key, &c.range_end, Access::Read)?;
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                store.check_key_op(who, &r.key, &r.range_end, Access::Read)?;
            }
            Some(request_op::Request::RequestPut(p)) => check_put(store, who, p, lease_keys)?,
            Some(request_op::Request::RequestDeleteRange(d)) => check_delete(store, who, d)?,
            Some(request_op::Request::RequestTxn(inner)) => {
                check_txn(store, who, inner, lease_keys)?;
            }
            None => {}
        }
    }
    Ok(())
}

/// What an applied command needs, if etcd checks it when applying.
fn command_need(op: &Op) -> Option<Need<'_>> {
    Some(match op {
        Op::Put(p) => Need::Put(p),
        Op::DeleteRange(d) => Need::Delete(d),
        Op::Txn(t) => Need::Txn(t),
        Op::LeaseRevoke(r) => Need::LeaseRevoke(r.id),
        Op::AuthEnable(_)
        | Op::AuthDisable(_)
        | Op::UserAdd(_)
        | Op::UserDelete(_)
        | Op::UserChangePassword(_)
        | Op::UserGrantRole(_)
        | Op::UserRevokeRole(_)
        | Op::RoleAdd(_)
        | Op::RoleDelete(_)
        | Op::RoleGrantPermission(_)
        | Op::RoleRevokePermission(_) => Need::Admin,
        _ => return None,
    })
}

/// The apply-time check of a command proposed for a client (`header` is absent for kvd's own
/// commands, which are trusted).
///
/// # Errors
/// The refusal, as etcd would report it.
pub fn check_command(
    store: &AuthStore,
    header: Option<&AuthHeader>,
    op: &Op,
    lease_keys: LeaseKeys<'_>,
) -> Result<(), AuthError> {
    let (Some(header), Some(need)) = (header, command_need(op)) else {
        return Ok(());
    };
    let who = AuthInfo {
        user: header.user.clone(),
        revision: header.revision,
    };
    check(store, &who, need, lease_keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::authpb::{permission::Type as PermType, Permission};
    use crate::proto::etcdserverpb::{Compare, RangeRequest, RequestOp};
    use crate::storage::StateBatch;

    fn store() -> AuthStore {
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        for u in ["root", "alice"] {
            s.user_add(u, b"h", None, &mut b).expect("add");
        }
        s.user_grant_role("root", "root", &mut b).expect("grant");
        s.role_add("app", &mut b).expect("role");
        let perm = |k: &str, e: &str, t: PermType| Permission {
            perm_type: t as i32,
            key: k.as_bytes().to_vec(),
            range_end: e.as_bytes().to_vec(),
        };
        s.role_grant_permission("app", perm("/app/", "/app0", PermType::Readwrite), &mut b)
            .expect("grant");
        s.role_grant_permission("app", perm("/ro/", "/ro0", PermType::Read), &mut b)
            .expect("grant");
        s.user_grant_role("alice", "app", &mut b).expect("grant");
        s.enable(&mut b).expect("enable");
        s
    }

    fn alice(s: &AuthStore) -> AuthInfo {
        AuthInfo {
            user: "alice".into(),
            revision: s.revision(),
        }
    }

    fn no_leases(_: i64) -> Vec<Vec<u8>> {
        Vec::new()
    }

    fn put(key: &str) -> PutRequest {
        PutRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn op_put(key: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(put(key))),
        }
    }

    #[test]
    fn put_needs_write_and_prev_kv_needs_read() {
        let s = store();
        let a = alice(&s);
        check(&s, &a, Need::Put(&put("/app/x")), &no_leases).expect("rw");
        assert_eq!(
            check(&s, &a, Need::Put(&put("/ro/x")), &no_leases),
            Err(AuthError::PermissionDenied)
        );
        let mut p = put("/app/x");
        p.lease = 5;
        let lease_keys = |_: i64| vec![b"/ro/held".to_vec()];
        assert_eq!(
            check(&s, &a, Need::Put(&p), &lease_keys),
            Err(AuthError::PermissionDenied)
        );
        assert_eq!(
            check(&s, &a, Need::LeaseRevoke(5), &lease_keys),
            Err(AuthError::PermissionDenied)
        );
        check(&s, &a, Need::LeaseRevoke(6), &no_leases).expect("no keys, nothing to check");
    }

    #[test]
    fn txn_checks_compares_and_both_branches_recursively() {
        let s = store();
        let a = alice(&s);
        let mut t = TxnRequest {
            compare: vec![Compare {
                key: b"/app/c".to_vec(),
                ..Default::default()
            }],
            success: vec![op_put("/app/s")],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: b"/ro/".to_vec(),
                    range_end: b"/ro0".to_vec(),
                    ..Default::default()
                })),
            }],
        };
        check(&s, &a, Need::Txn(&t), &no_leases).expect("allowed");
        t.compare.push(Compare {
            key: b"/secret".to_vec(),
            ..Default::default()
        });
        assert_eq!(
            check(&s, &a, Need::Txn(&t), &no_leases),
            Err(AuthError::PermissionDenied)
        );
        t.compare.pop();
        let nested = TxnRequest {
            failure: vec![op_put("/ro/x")],
            ..Default::default()
        };
        t.success.push(RequestOp {
            request: Some(request_op::Request::RequestTxn(nested)),
        });
        assert_eq!(
            check(&s, &a, Need::Txn(&t), &no_leases),
            Err(AuthError::PermissionDenied)
        );
    }

    #[test]
    fn commands_without_header_are_trusted() {
        let s = store();
        let op = Op::Put(put("/secret"));
        check_command(&s, None, &op, &no_leases).expect("kvd's own command");
        let anonymous = AuthHeader::default();
        assert_eq!(
            check_command(&s, Some(&anonymous), &op, &no_leases),
            Err(AuthError::UserEmpty)
        );
        let stale = AuthHeader {
            user: "root".into(),
            revision: s.revision() - 1,
        };
        assert_eq!(
            check_command(&s, Some(&stale), &op, &no_leases),
            Err(AuthError::OldRevision)
        );
        let alice = AuthHeader {
            user: "alice".into(),
            revision: s.revision(),
        };
        let add = Op::RoleAdd(Default::default());
        assert_eq!(
            check_command(&s, Some(&alice), &add, &no_leases),
            Err(AuthError::PermissionDenied)
        );
        let grant = Op::LeaseGrant(Default::default());
        check_command(&s, Some(&anonymous), &grant, &no_leases).expect("not checked, as in etcd");
    }
}
