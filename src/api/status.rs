//! The one mapping from kvd's errors to etcd's gRPC status codes and messages.
//!
//! etcd clients recognise errors by their message text, so every message here is byte-identical
//! to etcd 3.4's `rpctypes`.

use thiserror::Error;
use tonic::{Code, Status};

use crate::apply::ApplyError;
use crate::auth::AuthError;
use crate::lease::LeaseError;
use crate::raft::ProposeError;

/// Everything an API call can fail with.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ApiError {
    #[error("key is not provided")]
    EmptyKey,
    #[error("key not found")]
    KeyNotFound,
    #[error("value is provided")]
    ValueProvided,
    #[error("lease is provided")]
    LeaseProvided,
    #[error("too many operations in txn request")]
    TooManyOps,
    #[error("duplicate key given in txn request")]
    DuplicateKey,
    #[error("required revision has been compacted")]
    Compacted,
    #[error("required revision is a future revision")]
    FutureRev,
    #[error("database space exceeded")]
    NoSpace,
    #[error("requested lease not found")]
    LeaseNotFound,
    #[error("lease already exists")]
    LeaseExist,
    #[error("too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("member ID already exist")]
    MemberExist,
    #[error("Peer URLs already exists")]
    PeerUrlExist,
    #[error("not enough started members")]
    MemberNotEnoughStarted,
    #[error("given member URLs are invalid")]
    MemberBadUrls,
    #[error("member not found")]
    MemberNotFound,
    #[error("can only promote a learner member")]
    MemberNotLearner,
    #[error("learner not in sync")]
    LearnerNotReady,
    #[error("too many learner members")]
    TooManyLearners,
    #[error("request is too large")]
    RequestTooLarge,
    #[error("too many requests")]
    TooManyRequests,
    #[error("root user does not exist")]
    RootUserNotExist,
    #[error("root user does not have root role")]
    RootRoleNotExist,
    #[error("user name already exists")]
    UserAlreadyExist,
    #[error("user name is empty")]
    UserEmpty,
    #[error("user name not found")]
    UserNotFound,
    #[error("role name already exists")]
    RoleAlreadyExist,
    #[error("role name not found")]
    RoleNotFound,
    #[error("role name is empty")]
    RoleEmpty,
    #[error("authentication failed")]
    AuthFailed,
    #[error("permission denied")]
    PermissionDenied,
    #[error("role is not granted to the user")]
    RoleNotGranted,
    #[error("permission is not granted to the role")]
    PermissionNotGranted,
    #[error("authentication is not enabled")]
    AuthNotEnabled,
    #[error("invalid auth token")]
    InvalidAuthToken,
    #[error("invalid auth management")]
    InvalidAuthMgmt,
    #[error("revision of auth store is old")]
    AuthOldRevision,
    #[error("no leader")]
    NoLeader,
    #[error("not leader")]
    NotLeader,
    #[error("leader changed")]
    LeaderChanged,
    #[error("not capable")]
    NotCapable,
    #[error("server stopped")]
    Stopped,
    #[error("request timed out")]
    Timeout,
    #[error("request timed out, possibly due to previous leader failure")]
    TimeoutDueToLeaderFail,
    #[error("unhealthy cluster")]
    Unhealthy,
    #[error("corrupt cluster")]
    Corrupt,
    #[error("rpc not supported for learner")]
    NotSupportedForLearner,
    #[error("bad leader transferee")]
    BadLeaderTransferee,
    #[error("election: not leader")]
    ElectionNotLeader,
    #[error("election: no leader")]
    ElectionNoLeader,
    #[error("\"leader\" field must be provided")]
    MissingLeaderKey,
}

impl ApiError {
    /// etcd's gRPC code and message for this error.
    pub fn code_and_message(self) -> (Code, &'static str) {
        use ApiError as E;
        match self {
            E::EmptyKey => (Code::InvalidArgument, "etcdserver: key is not provided"),
            E::KeyNotFound => (Code::InvalidArgument, "etcdserver: key not found"),
            E::ValueProvided => (Code::InvalidArgument, "etcdserver: value is provided"),
            E::LeaseProvided => (Code::InvalidArgument, "etcdserver: lease is provided"),
            E::TooManyOps => (
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
            E::DuplicateKey => (
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request",
            ),
            E::Compacted => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            E::FutureRev => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            E::NoSpace => (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
            E::LeaseNotFound => (Code::NotFound, "etcdserver: requested lease not found"),
            E::LeaseExist => (Code::FailedPrecondition, "etcdserver: lease already exists"),
            E::LeaseTtlTooLarge => (Code::OutOfRange, "etcdserver: too large lease TTL"),
            E::MemberExist => (
                Code::FailedPrecondition,
                "etcdserver: member ID already exist",
            ),
            E::PeerUrlExist => (
                Code::FailedPrecondition,
                "etcdserver: Peer URLs already exists",
            ),
            E::MemberNotEnoughStarted => (
                Code::FailedPrecondition,
                "etcdserver: re-configuration failed due to not enough started members",
            ),
            E::MemberBadUrls => (
                Code::InvalidArgument,
                "etcdserver: given member URLs are invalid",
            ),
            E::MemberNotFound => (Code::NotFound, "etcdserver: member not found"),
            E::MemberNotLearner => (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member",
            ),
            E::LearnerNotReady => (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader",
            ),
            E::TooManyLearners => (
                Code::FailedPrecondition,
                "etcdserver: too many learner members in cluster",
            ),
            E::RequestTooLarge => (Code::InvalidArgument, "etcdserver: request is too large"),
            E::TooManyRequests => (Code::ResourceExhausted, "etcdserver: too many requests"),
            E::RootUserNotExist => (
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
            ),
            E::RootRoleNotExist => (
                Code::FailedPrecondition,
                "etcdserver: root user does not have root role",
            ),
            E::UserAlreadyExist => (
                Code::FailedPrecondition,
                "etcdserver: user name already exists",
            ),
            E::UserEmpty => (Code::InvalidArgument, "etcdserver: user name is empty"),
            E::UserNotFound => (Code::FailedPrecondition, "etcdserver: user name not found"),
            E::RoleAlreadyExist => (
                Code::FailedPrecondition,
                "etcdserver: role name already exists",
            ),
            E::RoleNotFound => (Code::FailedPrecondition, "etcdserver: role name not found"),
            E::RoleEmpty => (Code::InvalidArgument, "etcdserver: role name is empty"),
            E::AuthFailed => (
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            E::PermissionDenied => (Code::PermissionDenied, "etcdserver: permission denied"),
            E::RoleNotGranted => (
                Code::FailedPrecondition,
                "etcdserver: role is not granted to the user",
            ),
            E::PermissionNotGranted => (
                Code::FailedPrecondition,
                "etcdserver: permission is not granted to the role",
            ),
            E::AuthNotEnabled => (
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ),
            E::InvalidAuthToken => (Code::Unauthenticated, "etcdserver: invalid auth token"),
            E::InvalidAuthMgmt => (Code::InvalidArgument, "etcdserver: invalid auth management"),
            E::AuthOldRevision => (
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
            ),
            E::NoLeader => (Code::Unavailable, "etcdserver: no leader"),
            E::NotLeader => (Code::FailedPrecondition, "etcdserver: not leader"),
            E::LeaderChanged => (Code::Unavailable, "etcdserver: leader changed"),
            E::NotCapable => (Code::Unavailable, "etcdserver: not capable"),
            E::Stopped => (Code::Unavailable, "etcdserver: server stopped"),
            E::Timeout => (Code::Unavailable, "etcdserver: request timed out"),
            E::TimeoutDueToLeaderFail => (
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure",
            ),
            E::Unhealthy => (Code::Unavailable, "etcdserver: unhealthy cluster"),
            E::Corrupt => (Code::DataLoss, "etcdserver: corrupt cluster"),
            E::NotSupportedForLearner => (
                Code::Unavailable,
                "etcdserver: rpc not supported for learner",
            ),
            E::BadLeaderTransferee => (
                Code::FailedPrecondition,
                "etcdserver: bad leader transferee",
            ),
            // The Election service's own errors are plain errors in etcd, so their code is Unknown.
            E::ElectionNotLeader => (Code::Unknown, "election: not leader"),
            E::ElectionNoLeader => (Code::Unknown, "election: no leader"),
            E::MissingLeaderKey => (Code::Unknown, "\"leader\" field must be provided"),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let (code, msg) = e.code_and_message();
        Status::new(code, msg)
    }
}

/// How the Lock and Election services answer an error: with etcd's message but code `Unknown`.
///
/// etcd serves those two services through an internal client, which turns each error of its KV,
/// Lease and Watch requests into a plain error value carrying only the message; gRPC then sends
/// that as `Unknown`. Clients match on the message, which stays byte-identical.
pub fn relayed(e: ApiError) -> Status {
    Status::new(Code::Unknown, e.code_and_message().1)
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use AuthError as A;
        match e {
            A::RootUserNotExist => ApiError::RootUserNotExist,
            A::RootRoleNotExist => ApiError::RootRoleNotExist,
            A::UserAlreadyExist => ApiError::UserAlreadyExist,
            A::UserEmpty => ApiError::UserEmpty,
            A::UserNotFound => ApiError::UserNotFound,
            A::RoleAlreadyExist => ApiError::RoleAlreadyExist,
            A::RoleNotFound => ApiError::RoleNotFound,
            A::RoleEmpty => ApiError::RoleEmpty,
            // Only Authenticate sees NoPasswordUser, and answers it untranslated (see
            // `auth_service_refusal`).
            A::AuthFailed | A::NoPasswordUser => ApiError::AuthFailed,
            A::PermissionDenied => ApiError::PermissionDenied,
            A::RoleNotGranted => ApiError::RoleNotGranted,
            A::PermissionNotGranted => ApiError::PermissionNotGranted,
            A::AuthNotEnabled => ApiError::AuthNotEnabled,
            A::OldRevision => ApiError::AuthOldRevision,
            A::InvalidToken => ApiError::InvalidAuthToken,
            A::InvalidAuthMgmt => ApiError::InvalidAuthMgmt,
        }
    }
}

/// How etcd's Maintenance service answers an auth refusal: the auth store's own text
/// (`auth: permission denied`) with code Unknown, untranslated.
pub fn auth_store_refusal(e: AuthError) -> Status {
    Status::new(Code::Unknown, e.to_string())
}

/// How the Auth service answers an auth refusal: etcd's translated error, except the one etcd
/// leaves untranslated (a password given for a user without one).
pub fn auth_service_refusal(e: AuthError) -> Status {
    match e {
        AuthError::NoPasswordUser => auth_store_refusal(e),
        other => ApiError::from(other).into(),
    }
}

/// A failure etcd has no text for (a task that died, a token that could not be signed): code
/// Unknown with the failure's own text, as etcd passes a plain Go error on.
pub fn plain_failure(e: impl std::fmt::Display) -> Status {
    Status::new(Code::Unknown, e.to_string())
}

/// A failure inside kvd itself (the applier answered with the wrong kind of response, a worker
/// task died): code Internal.
pub fn internal(what: impl std::fmt::Display) -> Status {
    Status::new(Code::Internal, what.to_string())
}

/// What a gRPC call to a service or method nothing serves gets (grpc-go's answer).
pub fn unknown_method() -> Status {
    Status::new(Code::Unimplemented, "unknown service or method")
}

/// grpc-go's answer (and so etcd's) to a request message over the size limit: code
/// ResourceExhausted, "grpc: received message larger than max (N vs. M)".
pub fn message_too_large(found: usize, limit: usize) -> Status {
    Status::new(
        Code::ResourceExhausted,
        message_too_large_text(found, limit),
    )
}

fn message_too_large_text(found: impl std::fmt::Display, limit: impl std::fmt::Display) -> String {
    format!("grpc: received message larger than max ({found} vs. {limit})")
}

/// tonic's answer to a request message over the size limit, rewritten as grpc-go's, which etcd
/// clients show verbatim: tonic answers OutOfRange "Error, decoded message length too large:
/// found N bytes, the limit is: M bytes", grpc-go (and so etcd) ResourceExhausted "grpc:
/// received message larger than max (N vs. M)". `None` for any other message.
pub fn grpc_go_size_status(tonic_message: &str) -> Option<Status> {
    let rest = tonic_message.strip_prefix("Error, decoded message length too large: found ")?;
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let (found, limit) = (numbers.next()?, numbers.next()?);
    Some(Status::new(
        Code::ResourceExhausted,
        message_too_large_text(found, limit),
    ))
}

/// The cancel reason of a watch created with an ID already in use on its stream (etcd's text).
pub const DUPLICATE_WATCH_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

impl From<ProposeError> for ApiError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::NoLeader => ApiError::NoLeader,
            ProposeError::Timeout => ApiError::Timeout,
            ProposeError::Stopped => ApiError::Stopped,
            ProposeError::LeaderChanged => ApiError::LeaderChanged,
            ProposeError::Busy => ApiError::TooManyRequests,
        }
    }
}

impl From<LeaseError> for ApiError {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::NotFound => ApiError::LeaseNotFound,
            LeaseError::Exists => ApiError::LeaseExist,
            LeaseError::TtlTooLarge => ApiError::LeaseTtlTooLarge,
            LeaseError::NotLeader => ApiError::NotLeader,
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Compacted => ApiError::Compacted,
            ApplyError::FutureRev => ApiError::FutureRev,
            ApplyError::KeyNotFound => ApiError::KeyNotFound,
            ApplyError::LeaseNotFound => ApiError::LeaseNotFound,
            ApplyError::Lease(l) => l.into(),
            ApplyError::Malformed => ApiError::Corrupt,
            ApplyError::MemberNotFound => ApiError::MemberNotFound,
            ApplyError::Auth(a) => a.into(),
            // Never reaches a client: the proposer proposes again.
            ApplyError::Fenced => ApiError::TimeoutDueToLeaderFail,
        }
    }
}

impl From<crate::mvcc::MvccError> for ApiError {
    fn from(e: crate::mvcc::MvccError) -> Self {
        use crate::mvcc::MvccError as M;
        match e {
            M::Compacted => ApiError::Compacted,
            M::FutureRev => ApiError::FutureRev,
            M::KeyNotFound => ApiError::KeyNotFound,
            M::LeaseNotFound => ApiError::LeaseNotFound,
            M::Storage(s) => {
                tracing::error!(error = %s, "storage failure while serving a read");
                ApiError::Corrupt
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// etcd 3.4's texts for the auth errors, as test data: (error, code, message).
    #[test]
    fn auth_errors_map_to_etcds_code_and_message() {
        let table = [
            (
                AuthError::RootUserNotExist,
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
            ),
            (
                AuthError::RootRoleNotExist,
                Code::FailedPrecondition,
                "etcdserver: root user does not have root role",
            ),
            (
                AuthError::UserAlreadyExist,
                Code::FailedPrecondition,
                "etcdserver: user name already exists",
            ),
            (
                AuthError::UserEmpty,
                Code::InvalidArgument,
                "etcdserver: user name is empty",
            ),
            (
                AuthError::UserNotFound,
                Code::FailedPrecondition,
                "etcdserver: user name not found",
            ),
            (
                AuthError::RoleAlreadyExist,
                Code::FailedPrecondition,
                "etcdserver: role name already exists",
            ),
            (
                AuthError::RoleNotFound,
                Code::FailedPrecondition,
                "etcdserver: role name not found",
            ),
            (
                AuthError::RoleEmpty,
                Code::InvalidArgument,
                "etcdserver: role name is empty",
            ),
            (
                AuthError::AuthFailed,
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            (
                AuthError::PermissionDenied,
                Code::PermissionDenied,
                "etcdserver: permission denied",
            ),
            (
                AuthError::RoleNotGranted,
                Code::FailedPrecondition,
                "etcdserver: role is not granted to the user",
            ),
            (
                AuthError::PermissionNotGranted,
                Code::FailedPrecondition,
                "etcdserver: permission is not granted to the role",
            ),
            (
                AuthError::AuthNotEnabled,
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ),
            (
                AuthError::OldRevision,
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
            ),
            (
                AuthError::InvalidToken,
                Code::Unauthenticated,
                "etcdserver: invalid auth token",
            ),
            (
                AuthError::InvalidAuthMgmt,
                Code::InvalidArgument,
                "etcdserver: invalid auth management",
            ),
            (
                AuthError::NoPasswordUser,
                Code::Unknown,
                "auth: authentication failed, password was given for no password user",
            ),
        ];
        for (err, code, msg) in table {
            let status = auth_service_refusal(err);
            assert_eq!((status.code(), status.message()), (code, msg), "{err:?}");
        }
        let raw = auth_store_refusal(AuthError::PermissionDenied);
        assert_eq!(
            (raw.code(), raw.message()),
            (Code::Unknown, "auth: permission denied")
        );
    }

    /// etcd 3.4's rpctypes, as test data: (error, code, message).
    #[test]
    fn every_error_maps_to_etcds_code_and_message() {
        let table = [
            (
                ApiError::EmptyKey,
                Code::InvalidArgument,
                "etcdserver: key is not provided",
            ),
            (
                ApiError::KeyNotFound,
                Code::InvalidArgument,
                "etcdserver: key not found",
            ),
            (
                ApiError::TooManyOps,
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
            (
                ApiError::DuplicateKey,
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request",
            ),
            (
                ApiError::Compacted,
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            (
                ApiError::FutureRev,
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            (
                ApiError::NoSpace,
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
            (
                ApiError::LeaseNotFound,
                Code::NotFound,
                "etcdserver: requested lease not found",
            ),
            (
                ApiError::LeaseExist,
                Code::FailedPrecondition,
                "etcdserver: lease already exists",
            ),
            (
                ApiError::LeaseTtlTooLarge,
                Code::OutOfRange,
                "etcdserver: too large lease TTL",
            ),
            (
                ApiError::MemberNotFound,
                Code::NotFound,
                "etcdserver: member not found",
            ),
            (
                ApiError::RequestTooLarge,
                Code::InvalidArgument,
                "etcdserver: request is too large",
            ),
            (
                ApiError::NoLeader,
                Code::Unavailable,
                "etcdserver: no leader",
            ),
            (
                ApiError::Timeout,
                Code::Unavailable,
                "etcdserver: request timed out",
            ),
            (
                ApiError::TimeoutDueToLeaderFail,
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure",
            ),
            (
                ApiError::LeaderChanged,
                Code::Unavailable,
                "etcdserver: leader changed",
            ),
            (
                ApiError::TooManyRequests,
                Code::ResourceExhausted,
                "etcdserver: too many requests",
            ),
            (
                ApiError::InvalidAuthToken,
                Code::Unauthenticated,
                "etcdserver: invalid auth token",
            ),
            (
                ApiError::PermissionDenied,
                Code::PermissionDenied,
                "etcdserver: permission denied",
            ),
            (
                ApiError::AuthFailed,
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            (
                ApiError::LearnerNotReady,
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader",
            ),
        ];
        for (err, code, msg) in table {
            let status = Status::from(err);
            assert_eq!((status.code(), status.message()), (code, msg), "{err:?}");
        }
    }

    /// etcd 3.4's Lock and Election services, as observed: every error comes as Unknown.
    #[test]
    fn lock_and_election_errors_are_relayed_as_unknown() {
        let table = [
            (
                ApiError::LeaseNotFound,
                "etcdserver: requested lease not found",
            ),
            (ApiError::EmptyKey, "etcdserver: key is not provided"),
            (ApiError::ElectionNotLeader, "election: not leader"),
            (ApiError::ElectionNoLeader, "election: no leader"),
            (
                ApiError::MissingLeaderKey,
                "\"leader\" field must be provided",
            ),
        ];
        for (err, msg) in table {
            let status = relayed(err);
            assert_eq!(
                (status.code(), status.message()),
                (Code::Unknown, msg),
                "{err:?}"
            );
        }
    }

    #[test]
    fn tonics_size_refusal_is_rewritten_in_grpc_gos_words() {
        let status = grpc_go_size_status(
            "Error, decoded message length too large: found 2097162 bytes, the limit is: 1572864 bytes",
        )
        .expect("a size refusal");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "grpc: received message larger than max (2097162 vs. 1572864)"
        );
        assert_eq!(
            message_too_large(2097162, 1572864).message(),
            status.message()
        );
        assert!(grpc_go_size_status("some other error").is_none());
        assert!(grpc_go_size_status("Error, decoded message length too large: found x").is_none());
    }
}
