//! The Auth methods of the gateway: each goes to kvd's Auth service, as gRPC calls do.

use std::sync::Arc;

use tonic::Request;

use super::error::GatewayError;
use super::Gateway;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::*;

type Shared = Arc<Gateway>;

/// `auth_enable` through the Auth service.
pub(super) async fn enable(
    gw: Shared,
    r: AuthEnableRequest,
) -> Result<AuthEnableResponse, GatewayError> {
    Ok(gw.auth.auth_enable(Request::new(r)).await?.into_inner())
}

/// `auth_disable` through the Auth service.
pub(super) async fn disable(
    gw: Shared,
    r: AuthDisableRequest,
) -> Result<AuthDisableResponse, GatewayError> {
    Ok(gw.auth.auth_disable(Request::new(r)).await?.into_inner())
}

/// `auth_status` through the Auth service.
pub(super) async fn status(
    gw: Shared,
    r: AuthStatusRequest,
) -> Result<AuthStatusResponse, GatewayError> {
    Ok(gw.auth.auth_status(Request::new(r)).await?.into_inner())
}

/// `authenticate` through the Auth service.
pub(super) async fn authenticate(
    gw: Shared,
    r: AuthenticateRequest,
) -> Result<AuthenticateResponse, GatewayError> {
    Ok(gw.auth.authenticate(Request::new(r)).await?.into_inner())
}

/// `user_add` through the Auth service.
pub(super) async fn user_add(
    gw: Shared,
    r: AuthUserAddRequest,
) -> Result<AuthUserAddResponse, GatewayError> {
    Ok(gw.auth.user_add(Request::new(r)).await?.into_inner())
}

/// `user_get` through the Auth service.
pub(super) async fn user_get(
    gw: Shared,
    r: AuthUserGetRequest,
) -> Result<AuthUserGetResponse, GatewayError> {
    Ok(gw.auth.user_get(Request::new(r)).await?.into_inner())
}

/// `user_list` through the Auth service.
pub(super) async fn user_list(
    gw: Shared,
    r: AuthUserListRequest,
) -> Result<AuthUserListResponse, GatewayError> {
    Ok(gw.auth.user_list(Request::new(r)).await?.into_inner())
}

/// `user_delete` through the Auth service.
pub(super) async fn user_delete(
    gw: Shared,
    r: AuthUserDeleteRequest,
) -> Result<AuthUserDeleteResponse, GatewayError> {
    Ok(gw.auth.user_delete(Request::new(r)).await?.into_inner())
}

/// `user_change_password` through the Auth service.
pub(super) async fn user_change_password(
    gw: Shared,
    r: AuthUserChangePasswordRequest,
) -> Result<AuthUserChangePasswordResponse, GatewayError> {
    Ok(gw
        .auth
        .user_change_password(Request::new(r))
        .await?
        .into_inner())
}

/// `user_grant_role` through the Auth service.
pub(super) async fn user_grant_role(
    gw: Shared,
    r: AuthUserGrantRoleRequest,
) -> Result<AuthUserGrantRoleResponse, GatewayError> {
    Ok(gw.auth.user_grant_role(Request::new(r)).await?.into_inner())
}

/// `user_revoke_role` through the Auth service.
pub(super) async fn user_revoke_role(
    gw: Shared,
    r: AuthUserRevokeRoleRequest,
) -> Result<AuthUserRevokeRoleResponse, GatewayError> {
    Ok(gw
        .auth
        .user_revoke_role(Request::new(r))
        .await?
        .into_inner())
}

/// `role_add` through the Auth service.
pub(super) async fn role_add(
    gw: Shared,
    r: AuthRoleAddRequest,
) -> Result<AuthRoleAddResponse, GatewayError> {
    Ok(gw.auth.role_add(Request::new(r)).await?.into_inner())
}

/// `role_get` through the Auth service.
pub(super) async fn role_get(
    gw: Shared,
    r: AuthRoleGetRequest,
) -> Result<AuthRoleGetResponse, GatewayError> {
    Ok(gw.auth.role_get(Request::new(r)).await?.into_inner())
}

/// `role_list` through the Auth service.
pub(super) async fn role_list(
    gw: Shared,
    r: AuthRoleListRequest,
) -> Result<AuthRoleListResponse, GatewayError> {
    Ok(gw.auth.role_list(Request::new(r)).await?.into_inner())
}

/// `role_delete` through the Auth service.
pub(super) async fn role_delete(
    gw: Shared,
    r: AuthRoleDeleteRequest,
) -> Result<AuthRoleDeleteResponse, GatewayError> {
    Ok(gw.auth.role_delete(Request::new(r)).await?.into_inner())
}

/// `role_grant_permission` through the Auth service.
pub(super) async fn role_grant_permission(
    gw: Shared,
    r: AuthRoleGrantPermissionRequest,
) -> Result<AuthRoleGrantPermissionResponse, GatewayError> {
    Ok(gw
        .auth
        .role_grant_permission(Request::new(r))
        .await?
        .into_inner())
}

/// `role_revoke_permission` through the Auth service.
pub(super) async fn role_revoke_permission(
    gw: Shared,
    r: AuthRoleRevokePermissionRequest,
) -> Result<AuthRoleRevokePermissionResponse, GatewayError> {
    Ok(gw
        .auth
        .role_revoke_permission(Request::new(r))
        .await?
        .into_inner())
}
