//! The Auth methods of the gateway while kvd has no auth store: the answers etcd 3.4 gives
//! when authentication is disabled and no user or role exists (observed with curl against
//! etcd 3.4.23). Adding users or roles (`/v3/auth/user/add`, `/v3/auth/role/add`) needs an
//! auth store and is not served; once kvd has an Auth service, these calls go to it instead.

use std::sync::Arc;

use super::error::GatewayError;
use super::Gateway;
use crate::api::ApiError;
use crate::proto::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse,
    AuthRoleDeleteRequest, AuthRoleDeleteResponse, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse, AuthRoleListRequest,
    AuthRoleListResponse, AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse,
    AuthUserChangePasswordRequest, AuthUserChangePasswordResponse, AuthUserDeleteRequest,
    AuthUserDeleteResponse, AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest,
    AuthUserGrantRoleResponse, AuthUserListRequest, AuthUserListResponse,
    AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, AuthenticateRequest,
    AuthenticateResponse,
};

type Shared = Arc<Gateway>;

/// Enabling needs a root user, and there is none.
pub(super) async fn enable(
    _gw: Shared,
    _r: AuthEnableRequest,
) -> Result<AuthEnableResponse, GatewayError> {
    Err(ApiError::RootUserNotExist.into())
}

/// Authentication is already disabled: nothing to do.
pub(super) async fn disable(
    gw: Shared,
    _r: AuthDisableRequest,
) -> Result<AuthDisableResponse, GatewayError> {
    Ok(AuthDisableResponse {
        header: gw.core.header(0),
    })
}

/// No token is issued while authentication is disabled.
pub(super) async fn authenticate(
    _gw: Shared,
    _r: AuthenticateRequest,
) -> Result<AuthenticateResponse, GatewayError> {
    Err(ApiError::AuthNotEnabled.into())
}

/// No user exists.
pub(super) async fn user_get(
    _gw: Shared,
    _r: AuthUserGetRequest,
) -> Result<AuthUserGetResponse, GatewayError> {
    Err(ApiError::UserNotFound.into())
}

/// The (empty) list of users.
pub(super) async fn user_list(
    gw: Shared,
    _r: AuthUserListRequest,
) -> Result<AuthUserListResponse, GatewayError> {
    Ok(AuthUserListResponse {
        header: gw.core.header(0),
        users: Vec::new(),
    })
}

/// No user exists.
pub(super) async fn user_delete(
    _gw: Shared,
    _r: AuthUserDeleteRequest,
) -> Result<AuthUserDeleteResponse, GatewayError> {
    Err(ApiError::UserNotFound.into())
}

/// No user exists.
pub(super) async fn user_change_password(
    _gw: Shared,
    _r: AuthUserChangePasswordRequest,
) -> Result<AuthUserChangePasswordResponse, GatewayError> {
    Err(ApiError::UserNotFound.into())
}

/// No user exists.
pub(super) async fn user_grant_role(
    _gw: Shared,
    _r: AuthUserGrantRoleRequest,
) -> Result<AuthUserGrantRoleResponse, GatewayError> {
    Err(ApiError::UserNotFound.into())
}

/// No user exists.
pub(super) async fn user_revoke_role(
    _gw: Shared,
    _r: AuthUserRevokeRoleRequest,
) -> Result<AuthUserRevokeRoleResponse, GatewayError> {
    Err(ApiError::UserNotFound.into())
}

/// No role exists.
pub(super) async fn role_get(
    _gw: Shared,
    _r: AuthRoleGetRequest,
) -> Result<AuthRoleGetResponse, GatewayError> {
    Err(ApiError::RoleNotFound.into())
}

/// The (empty) list of roles.
pub(super) async fn role_list(
    gw: Shared,
    _r: AuthRoleListRequest,
) -> Result<AuthRoleListResponse, GatewayError> {
    Ok(AuthRoleListResponse {
        header: gw.core.header(0),
        roles: Vec::new(),
    })
}

/// No role exists.
pub(super) async fn role_delete(
    _gw: Shared,
    _r: AuthRoleDeleteRequest,
) -> Result<AuthRoleDeleteResponse, GatewayError> {
    Err(ApiError::RoleNotFound.into())
}

/// No role exists.
pub(super) async fn role_grant_permission(
    _gw: Shared,
    _r: AuthRoleGrantPermissionRequest,
) -> Result<AuthRoleGrantPermissionResponse, GatewayError> {
    Err(ApiError::RoleNotFound.into())
}

/// No role exists.
pub(super) async fn role_revoke_permission(
    _gw: Shared,
    _r: AuthRoleRevokePermissionRequest,
) -> Result<AuthRoleRevokePermissionResponse, GatewayError> {
    Err(ApiError::RoleNotFound.into())
}
