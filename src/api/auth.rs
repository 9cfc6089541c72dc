//! The Auth service, and the API side of authentication: resolving a request's credentials to a
//! user, the permission check every handler calls in one line, and the identity a proposal
//! carries so apply checks it again.
//!
//! Passwords are hashed here, before proposing, so applying never runs bcrypt; the raft log and
//! the state tree only ever hold bcrypt hashes. Neither passwords nor tokens are logged.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::instrument;

use super::core::Core;
use super::status::{self, auth_service_refusal, ApiError};
use crate::apply::ApplyResponse;
use crate::auth::check::{check, lessor_keys, Need};
use crate::auth::token::simple_token_index;
use crate::auth::{current_credentials, AuthError, AuthInfo, Credentials, TokenKind, Tokens};
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse,
    AuthRoleAddRequest, AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse,
    AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleGrantPermissionRequest,
    AuthRoleGrantPermissionResponse, AuthRoleListRequest, AuthRoleListResponse,
    AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthStatusRequest,
    AuthStatusResponse, AuthUserAddRequest, AuthUserAddResponse, AuthUserChangePasswordRequest,
    AuthUserChangePasswordResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
    AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse,
    AuthUserListRequest, AuthUserListResponse, AuthUserRevokeRoleRequest,
    AuthUserRevokeRoleResponse, AuthenticateRequest, AuthenticateResponse, WatchCreateRequest,
    WatchResponse,
};
use crate::proto::kvdpb::{command::Op, AuthHeader, AuthenticateCommand};

/// How often Authenticate checks the password again when users change meanwhile.
const AUTHENTICATE_ATTEMPTS: usize = 5;

/// Hashes `password` with bcrypt at `cost` (off the async runtime), in the `$2a$` form etcd
/// writes.
///
/// # Errors
/// bcrypt refused the cost.
pub async fn hash_password(password: String, cost: u32) -> Result<String, Status> {
    let hashed = tokio::task::spawn_blocking(move || {
        bcrypt::hash_with_result(password, cost)
            .map(|h| h.format_for_version(bcrypt::Version::TwoA))
    })
    .await
    .map_err(|e| status::internal(format!("kvd: password hashing task failed: {e}")))?;
    hashed.map_err(status::plain_failure)
}

/// True when `password` matches the bcrypt `hash` (checked off the async runtime).
async fn password_matches(password: String, hash: Vec<u8>) -> bool {
    tokio::task::spawn_blocking(move || {
        std::str::from_utf8(&hash).is_ok_and(|h| bcrypt::verify(password, h).unwrap_or(false))
    })
    .await
    .unwrap_or(false)
}

impl Core {
    /// The user `credentials` stand for: a token wins; else, with `--client-cert-auth`, the
    /// verified certificate's Common Name; else nobody. This is what the HTTP gateway uses to
    /// identify a request too.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for an unknown, expired or forged token.
    pub async fn resolve_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<AuthInfo, AuthError> {
        let tokens: &Tokens = &self.state.tokens;
        let options = tokens.options();
        let Some(token) = &credentials.token else {
            if options.client_cert_auth {
                if let Some(cn) = &credentials.common_name {
                    let revision = self.state.auth.read().revision();
                    return Ok(AuthInfo {
                        user: cn.clone(),
                        revision,
                    });
                }
            }
            return Ok(AuthInfo::anonymous());
        };
        match options.token {
            TokenKind::Simple => {
                let index = simple_token_index(token).ok_or(AuthError::InvalidToken)?;
                let mut user = tokens.simple_user(token);
                if user.is_none() {
                    // Issued by an entry this member may not have applied yet: catch up once.
                    let applied = self.persisted.applied_index().unwrap_or(u64::MAX);
                    if index > applied && self.read_barrier().await.is_ok() {
                        user = tokens.simple_user(token);
                    }
                }
                let user = user.ok_or(AuthError::InvalidToken)?;
                let revision = self.state.auth.read().revision();
                Ok(AuthInfo { user, revision })
            }
            TokenKind::Jwt(keys) => {
                let (user, revision) = keys.verify(token).ok_or(AuthError::InvalidToken)?;
                Ok(AuthInfo { user, revision })
            }
        }
    }

    /// Who the request being served is made by; `None` when kvd itself is at work.
    ///
    /// # Errors
    /// An invalid token.
    pub async fn caller(&self) -> Result<Option<AuthInfo>, AuthError> {
        match current_credentials() {
            Some(c) => self.resolve_credentials(&c).await.map(Some),
            None => Ok(None),
        }
    }

    /// Checks that the request being served may do `need` (always, while auth is disabled);
    /// returns its identity (`None` for kvd itself).
    ///
    /// # Errors
    /// The auth store's refusal.
    pub async fn check_auth(&self, need: Need<'_>) -> Result<Option<AuthInfo>, AuthError> {
        let Some(who) = self.caller().await? else {
            return Ok(None);
        };
        let store = self.state.auth.read();
        if store.is_enabled() {
            let lease_keys = lessor_keys(&self.state.lessor);
            check(&store, &who, need, &lease_keys)?;
        }
        Ok(Some(who))
    }

    /// [`Core::check_auth`] with etcd's translated errors: the one line each handler calls.
    ///
    /// # Errors
    /// The auth store's refusal.
    pub async fn authorize(&self, need: Need<'_>) -> Result<Option<AuthInfo>, ApiError> {
        self.check_auth(need).await.map_err(ApiError::from)
    }

    /// After a local read: refuses the answer if the auth state changed while it was read
    /// (etcd's check that the identity's revision is still current).
    ///
    /// # Errors
    /// [`ApiError::AuthOldRevision`].
    pub fn auth_unchanged(&self, who: &Option<AuthInfo>) -> Result<(), ApiError> {
        match who {
            Some(w) if w.revision != 0 && w.revision != self.state.auth.read().revision() => {
                Err(ApiError::AuthOldRevision)
            }
            _ => Ok(()),
        }
    }

    /// The identity a proposal made now carries (`None` for kvd's own proposals).
    ///
    /// # Errors
    /// An invalid token.
    pub async fn command_auth(&self) -> Result<Option<AuthHeader>, ApiError> {
        Ok(self
            .caller()
            .await
            .map_err(ApiError::from)?
            .map(|w| AuthHeader {
                user: w.user,
                revision: w.revision,
            }))
    }
}

/// The answer to a watch the caller may not create, as etcd gives it (a canceled watch with
/// ID -1 and the reason), or `None` when it is allowed.
pub async fn watch_refusal(core: &Core, c: &WatchCreateRequest) -> Option<WatchResponse> {
    // etcd checks the request after its own normalisation: no key is "\0", and a range end of
    // "\0" becomes empty, so `--from-key` watches are checked on their first key only.
    let key: &[u8] = if c.key.is_empty() { b"\0" } else { &c.key };
    let range_end: &[u8] = if c.range_end == [0] {
        b""
    } else {
        &c.range_end
    };
    let refused = core
        .check_auth(Need::Range { key, range_end })
        .await
        .err()?;
    // etcd's reason is the text of its gRPC error value, code included; clients compare it to
    // decide whether to authenticate again.
    let (code, message) = match refused {
        AuthError::InvalidToken => ("Unauthenticated", ApiError::InvalidAuthToken),
        AuthError::OldRevision => ("InvalidArgument", ApiError::AuthOldRevision),
        AuthError::UserEmpty => ("InvalidArgument", ApiError::UserEmpty),
        _ => ("PermissionDenied", ApiError::PermissionDenied),
    };
    let message = message.code_and_message().1;
    Some(WatchResponse {
        header: core.header(0),
        watch_id: -1,
        created: true,
        canceled: true,
        cancel_reason: format!("rpc error: code = {code} desc = {message}"),
        ..Default::default()
    })
}

/// The Auth service.
pub struct AuthService {
    core: Arc<Core>,
}

impl AuthService {
    /// An Auth service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Proposes an administrative command (checked first) and waits until it is applied.
    async fn admin(&self, op: Op) -> Result<ApplyResponse, Status> {
        self.core.authorize(Need::Admin).await?;
        Ok(self.core.propose(op).await?)
    }

    fn bcrypt_cost(&self) -> u32 {
        self.core.state.tokens.options().bcrypt_cost
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    #[instrument(skip_all)]
    async fn auth_enable(
        &self,
        request: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        self.admin(Op::AuthEnable(request.into_inner())).await?;
        Ok(Response::new(AuthEnableResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn auth_disable(
        &self,
        request: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        self.admin(Op::AuthDisable(request.into_inner())).await?;
        Ok(Response::new(AuthDisableResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn auth_status(
        &self,
        _request: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        self.core.read_barrier().await?;
        let (enabled, auth_revision) = {
            let store = self.core.state.auth.read();
            (store.is_enabled(), store.revision())
        };
        Ok(Response::new(AuthStatusResponse {
            header: self.core.header(0),
            enabled,
            auth_revision,
        }))
    }

    #[instrument(skip_all)]
    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let AuthenticateRequest { name, password } = request.into_inner();
        self.core.read_barrier().await?;
        for _ in 0..AUTHENTICATE_ATTEMPTS {
            let found = self.core.state.auth.read().password_hash(&name);
            let (hash, checked_revision) = found.map_err(auth_service_refusal)?;
            if !password_matches(password.clone(), hash).await {
                tracing::info!(user = %name, "authentication failed: invalid password");
                return Err(ApiError::AuthFailed.into());
            }
            let token = match self.core.state.tokens.options().token {
                TokenKind::Jwt(keys) => keys.sign(&name, checked_revision).map_err(|e| {
                    tracing::warn!(user = %name, error = %e, "cannot issue a token");
                    status::plain_failure(e)
                })?,
                TokenKind::Simple => {
                    let cmd = AuthenticateCommand {
                        name: name.clone(),
                        token_prefix: Tokens::new_simple_prefix(),
                        checked_revision,
                    };
                    match self.core.propose(Op::Authenticate(cmd)).await {
                        Ok(ApplyResponse::AuthToken(token)) => token,
                        Ok(other) => {
                            tracing::error!(response = ?other, "authenticate: unexpected apply response");
                            return Err(ApiError::Corrupt.into());
                        }
                        // Users changed after the password was checked: check it again.
                        Err(ApiError::AuthOldRevision) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            tracing::debug!(user = %name, "authenticated a user");
            return Ok(Response::new(AuthenticateResponse {
                header: self.core.header(0),
                token,
            }));
        }
        Err(ApiError::AuthOldRevision.into())
    }

    #[instrument(skip_all)]
    async fn user_add(
        &self,
        request: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        self.core.authorize(Need::Admin).await?;
        let mut r = request.into_inner();
        // Refuse what apply would refuse before paying for bcrypt.
        if r.name.is_empty() {
            return Err(ApiError::UserEmpty.into());
        }
        if self.core.state.auth.read().user(&r.name).is_some() {
            return Err(ApiError::UserAlreadyExist.into());
        }
        let no_password = r.options.as_ref().is_some_and(|o| o.no_password);
        let password = std::mem::take(&mut r.password);
        if !no_password {
            r.password = hash_password(password, self.bcrypt_cost()).await?;
        }
        self.admin(Op::UserAdd(r)).await?;
        Ok(Response::new(AuthUserAddResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn user_get(
        &self,
        request: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        let r = request.into_inner();
        self.core.read_barrier().await?;
        let who = self.core.caller().await.map_err(auth_service_refusal)?;
        let roles = {
            let store = self.core.state.auth.read();
            if let Some(who) = &who {
                // A user may read itself; other users need the root role.
                if let Err(e) = store.check_admin(who) {
                    if r.name != who.user {
                        return Err(auth_service_refusal(e));
                    }
                }
            }
            store
                .user(&r.name)
                .ok_or(ApiError::UserNotFound)?
                .roles
                .clone()
        };
        Ok(Response::new(AuthUserGetResponse {
            header: self.core.header(0),
            roles,
        }))
    }

    #[instrument(skip_all)]
    async fn user_list(
        &self,
        _request: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        self.core.read_barrier().await?;
        self.core.authorize(Need::Admin).await?;
        let users = self.core.state.auth.read().user_names();
        Ok(Response::new(AuthUserListResponse {
            header: self.core.header(0),
            users,
        }))
    }

    #[instrument(skip_all)]
    async fn user_delete(
        &self,
        request: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        self.admin(Op::UserDelete(request.into_inner())).await?;
        Ok(Response::new(AuthUserDeleteResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn user_change_password(
        &self,
        request: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        self.core.authorize(Need::Admin).await?;
        let mut r = request.into_inner();
        if self.core.state.auth.read().user(&r.name).is_none() {
            return Err(ApiError::UserNotFound.into());
        }
        let password = std::mem::take(&mut r.password);
        r.password = hash_password(password, self.bcrypt_cost()).await?;
        self.admin(Op::UserChangePassword(r)).await?;
        Ok(Response::new(AuthUserChangePasswordResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn user_grant_role(
        &self,
        request: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        self.admin(Op::UserGrantRole(request.into_inner())).await?;
        Ok(Response::new(AuthUserGrantRoleResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn user_revoke_role(
        &self,
        request: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        self.admin(Op::UserRevokeRole(request.into_inner())).await?;
        Ok(Response::new(AuthUserRevokeRoleResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn role_add(
        &self,
        request: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        self.admin(Op::RoleAdd(request.into_inner())).await?;
        Ok(Response::new(AuthRoleAddResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn role_get(
        &self,
        request: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        let r = request.into_inner();
        self.core.read_barrier().await?;
        let who = self.core.caller().await.map_err(auth_service_refusal)?;
        let perm = {
            let store = self.core.state.auth.read();
            if let Some(who) = &who {
                // A user may read its own roles; other roles need the root role.
                if let Err(e) = store.check_admin(who) {
                    if !store.has_role(&who.user, &r.role) {
                        return Err(auth_service_refusal(e));
                    }
                }
            }
            store
                .role(&r.role)
                .ok_or(ApiError::RoleNotFound)?
                .key_permission
                .clone()
        };
        Ok(Response::new(AuthRoleGetResponse {
            header: self.core.header(0),
            perm,
        }))
    }

    #[instrument(skip_all)]
    async fn role_list(
        &self,
        _request: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        self.core.read_barrier().await?;
        self.core.authorize(Need::Admin).await?;
        let roles = self.core.state.auth.read().role_names();
        Ok(Response::new(AuthRoleListResponse {
            header: self.core.header(0),
            roles,
        }))
    }

    #[instrument(skip_all)]
    async fn role_delete(
        &self,
        request: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        self.admin(Op::RoleDelete(request.into_inner())).await?;
        Ok(Response::new(AuthRoleDeleteResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn role_grant_permission(
        &self,
        request: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        self.admin(Op::RoleGrantPermission(request.into_inner()))
            .await?;
        Ok(Response::new(AuthRoleGrantPermissionResponse {
            header: self.core.header(0),
        }))
    }

    #[instrument(skip_all)]
    async fn role_revoke_permission(
        &self,
        request: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        self.admin(Op::RoleRevokePermission(request.into_inner()))
            .await?;
        Ok(Response::new(AuthRoleRevokePermissionResponse {
            header: self.core.header(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_etcds_prefix() {
        let hash = hash_password("pw".into(), 4).await.expect("hash");
        assert!(hash.starts_with("$2a$04$"), "{hash}");
        assert!(password_matches("pw".into(), hash.clone().into_bytes()).await);
        assert!(!password_matches("bad".into(), hash.into_bytes()).await);
        assert!(!password_matches("pw".into(), Vec::new()).await);
    }
}
