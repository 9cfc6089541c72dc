//! Authentication and authorization as etcd 3.4 does them.
//!
//! This module owns:
//! - [`store`]: the replicated auth state — users (bcrypt password hashes, `no_password`),
//!   roles with key permissions, the enabled flag and the auth revision — its mutations as
//!   applied from the raft log, its records in the state tree and in snapshots;
//! - [`perms`]: etcd's permission arithmetic (a user's permissions are the union of its
//!   roles; a range request must be covered as a whole);
//! - [`check`]: which permission each request needs, checked the same way before a request is
//!   proposed and again when it is applied;
//! - [`token`]: the member-local token providers (`simple`, `jwt`) and the bcrypt cost;
//! - [`jwt`]: signing and verifying JSON Web Tokens with the keys of `--auth-token jwt,...`;
//! - [`credentials`]: what a client request brings (a `token` header, the Common Name of its
//!   verified client certificate), carried in a task-local while the request is served.
//!
//! Requests served on the client port run inside a credentials scope (see
//! [`credentials::with_credentials`]); work kvd does by itself (lease expiry, compaction,
//! alarms, publishing member attributes) runs outside any scope and is trusted, as etcd's own
//! requests are.

pub mod check;
pub mod credentials;
pub mod jwt;
pub mod perms;
pub mod store;
pub mod token;

use thiserror::Error;

pub use credentials::{current_credentials, with_credentials, Credentials};
pub use store::AuthStore;
pub use token::{AuthOptions, AuthOptionsError, TokenKind, Tokens};

/// The name of the user (and of the role) that may do everything.
pub const ROOT: &str = "root";

/// Who a request is made by, once its credentials are resolved.
///
/// `revision` is the auth revision the identity was established at; 0 means no user (the
/// request brought neither a token nor a usable certificate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    /// The user name ("" for none).
    pub user: String,
    /// The auth revision the identity is valid for.
    pub revision: u64,
}

impl AuthInfo {
    /// An identity with no user.
    pub fn anonymous() -> Self {
        Self::default()
    }
}

/// Why the auth store refused something. The text is etcd's own error text (`auth: ...`),
/// which etcd sends as is from the Maintenance service; other services translate these into
/// their `etcdserver: ...` equivalents (see `api::auth`).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// `auth enable` without a user `root`.
    #[error("auth: root user does not exist")]
    RootUserNotExist,
    /// `auth enable` while `root` lacks the role `root`.
    #[error("auth: root user does not have root role")]
    RootRoleNotExist,
    /// The user exists already.
    #[error("auth: user already exists")]
    UserAlreadyExist,
    /// No user name given (or a request without credentials while auth is enabled).
    #[error("auth: user name is empty")]
    UserEmpty,
    /// No such user.
    #[error("auth: user not found")]
    UserNotFound,
    /// The role exists already.
    #[error("auth: role already exists")]
    RoleAlreadyExist,
    /// No such role.
    #[error("auth: role not found")]
    RoleNotFound,
    /// No role name given.
    #[error("auth: role name is empty")]
    RoleEmpty,
    /// Unknown user or wrong password.
    #[error("auth: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// A password was given for a user created with `no_password`.
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    /// The user may not do this.
    #[error("auth: permission denied")]
    PermissionDenied,
    /// The user does not have the role being revoked.
    #[error("auth: role is not granted to the user")]
    RoleNotGranted,
    /// The role does not have the permission being revoked.
    #[error("auth: permission is not granted to the role")]
    PermissionNotGranted,
    /// Authentication is disabled.
    #[error("auth: authentication is not enabled")]
    AuthNotEnabled,
    /// The identity was established before the auth state last changed.
    #[error("auth: revision in header is old")]
    OldRevision,
    /// The token is unknown, expired or forged.
    #[error("auth: invalid auth token")]
    InvalidToken,
    /// The change would lock everyone out (deleting `root`, its role, or revoking it).
    #[error("auth: invalid auth management")]
    InvalidAuthMgmt,
}
