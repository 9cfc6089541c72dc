//! The one mapping from kvd's errors to etcd's gRPC status codes and messages.
//!
//! etcd clients recognise errors by their message text, so every message here is byte-identical
//! to etcd 3.4's `rpctypes`.

use thiserror::Error;
use tonic::{Code, Status};

use crate::apply::ApplyError;
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
}
