//! Applying auth commands, and the auth check every applied client command passes first.
//!
//! Runs under apply's MVCC lock; takes the auth store's lock, then (for lease keys) the
//! lessor's, never the other way round.

use super::{ApplyError, ApplyResponse, ApplyResult, SharedState};
use crate::auth::check::{check_command, lessor_keys};
use crate::proto::kvdpb::command::Op;
use crate::proto::kvdpb::AuthHeader;
use crate::storage::StateBatch;

/// The refusal of a client command the auth store does not allow (as etcd checks it when
/// applying), or `None`.
pub(super) fn refusal(
    state: &SharedState,
    header: Option<&AuthHeader>,
    op: &Op,
) -> Option<ApplyError> {
    let header = header?;
    let store = state.auth.read();
    if !store.is_enabled() {
        return None;
    }
    let lease_keys = lessor_keys(&state.lessor);
    check_command(&store, Some(header), op, &lease_keys)
        .err()
        .map(ApplyError::Auth)
}

/// True for the commands [`apply`] handles.
pub(super) fn is_auth_command(op: &Op) -> bool {
    matches!(
        op,
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
            | Op::RoleRevokePermission(_)
            | Op::Authenticate(_)
    )
}

/// Applies an auth command at raft index `index`. Passwords in `UserAdd` and
/// `UserChangePassword` are bcrypt hashes already.
pub(super) fn apply(
    state: &SharedState,
    op: Op,
    index: u64,
    batch: &mut StateBatch,
) -> ApplyResult {
    let mut store = state.auth.write();
    let outcome = match op {
        Op::AuthEnable(_) => {
            let r = store.enable(batch);
            if r.is_ok() {
                tracing::info!("enabled authentication");
            }
            r
        }
        Op::AuthDisable(_) => {
            if store.disable(batch) {
                state.tokens.clear();
                tracing::info!("disabled authentication");
            }
            Ok(())
        }
        Op::UserAdd(u) => store.user_add(&u.name, u.password.as_bytes(), u.options, batch),
        Op::UserDelete(u) => store
            .user_delete(&u.name, batch)
            .map(|()| state.tokens.invalidate_user(&u.name)),
        Op::UserChangePassword(u) => store
            .user_change_password(&u.name, u.password.as_bytes(), batch)
            .map(|()| state.tokens.invalidate_user(&u.name)),
        Op::UserGrantRole(g) => store.user_grant_role(&g.user, &g.role, batch),
        Op::UserRevokeRole(r) => store.user_revoke_role(&r.name, &r.role, batch),
        Op::RoleAdd(r) => store.role_add(&r.name, batch),
        Op::RoleDelete(r) => store.role_delete(&r.role, batch),
        Op::RoleGrantPermission(g) => {
            store.role_grant_permission(&g.name, g.perm.unwrap_or_default(), batch)
        }
        Op::RoleRevokePermission(r) => {
            store.role_revoke_permission(&r.role, &r.key, &r.range_end, batch)
        }
        Op::Authenticate(a) => {
            // The password was checked at `checked_revision`; if users changed since, the
            // proposer checks again.
            if store.revision() != a.checked_revision {
                return Err(ApplyError::Auth(crate::auth::AuthError::OldRevision));
            }
            return match store.may_authenticate(&a.name) {
                Ok(()) => Ok(ApplyResponse::AuthToken(state.tokens.assign_simple(
                    &a.token_prefix,
                    index,
                    &a.name,
                ))),
                Err(e) => Err(ApplyError::Auth(e)),
            };
        }
        _ => return Ok(ApplyResponse::Empty),
    };
    outcome
        .map(|()| ApplyResponse::Empty)
        .map_err(ApplyError::Auth)
}
