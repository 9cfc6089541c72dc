//! [`Failure`]: why a certificate chain was refused, in Go's words, whichever path judged it.

use std::fmt;

use x509_parser::certificate::X509Certificate;

use super::cert;

/// Why a certificate chain was refused, in Go's words (see [`fmt::Display`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A certificate cannot be parsed.
    Malformed(String),
    /// No chain to a trusted CA; `hint` says what went wrong with a candidate issuer.
    UnknownAuthority {
        /// `(problem, candidate name)` from the last candidate issuer that failed.
        hint: Option<(String, String)>,
    },
    /// Outside the validity period: `now` after `not_after`.
    Expired {
        /// Unix seconds.
        now: i64,
        /// Unix seconds.
        not_after: i64,
    },
    /// Outside the validity period: `now` before `not_before`.
    NotYetValid {
        /// Unix seconds.
        now: i64,
        /// Unix seconds.
        not_before: i64,
    },
    /// Extended key usage does not allow the wanted use.
    IncompatibleUsage,
    /// An intermediate that is not a CA.
    NotAuthorizedToSign,
    /// A path-length constraint is exceeded.
    TooManyIntermediates,
    /// A critical extension kvd does not handle.
    UnhandledCriticalExtension(String),
    /// Outside the names a CA's name constraints permit (webpki enforces them).
    NameConstraints,
    /// The server certificate does not name the host dialed (Go's `x509.HostnameError`).
    Host(String),
    /// Another refusal of webpki's, in its words.
    Refused(String),
    /// Listed in a CRL issued by its issuer.
    Revoked {
        /// The serial number, colon-separated hex.
        serial: String,
        /// The CRL issuer.
        issuer: String,
    },
}

impl Failure {
    /// How telling an error is, to pick one when several candidate chains fail.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Failure::UnknownAuthority { hint: None } => 0,
            Failure::UnknownAuthority { hint: Some(_) } => 1,
            Failure::IncompatibleUsage => 2,
            Failure::Malformed(_) => 3,
            Failure::Expired { .. }
            | Failure::NotYetValid { .. }
            | Failure::NotAuthorizedToSign
            | Failure::TooManyIntermediates
            | Failure::UnhandledCriticalExtension(_)
            | Failure::NameConstraints
            | Failure::Refused(_) => 4,
            Failure::Revoked { .. } | Failure::Host(_) => 5,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Malformed(e) => write!(f, "x509: {e}"),
            Failure::UnknownAuthority { hint: None } => {
                f.write_str("x509: certificate signed by unknown authority")
            }
            Failure::UnknownAuthority {
                hint: Some((problem, name)),
            } => write!(
                f,
                "x509: certificate signed by unknown authority (possibly because of {problem:?} \
                 while trying to verify candidate authority certificate {name:?})"
            ),
            Failure::Expired { now, not_after } => write!(
                f,
                "x509: certificate has expired or is not yet valid: current time {} is after {}",
                cert::go_time(*now),
                cert::go_time(*not_after)
            ),
            Failure::NotYetValid { now, not_before } => write!(
                f,
                "x509: certificate has expired or is not yet valid: current time {} is before {}",
                cert::go_time(*now),
                cert::go_time(*not_before)
            ),
            Failure::IncompatibleUsage => {
                f.write_str("x509: certificate specifies an incompatible key usage")
            }
            Failure::NotAuthorizedToSign => {
                f.write_str("x509: certificate is not authorized to sign other certificates")
            }
            Failure::TooManyIntermediates => {
                f.write_str("x509: too many intermediates for path length constraint")
            }
            Failure::UnhandledCriticalExtension(what) => {
                write!(f, "x509: unhandled critical extension ({what})")
            }
            Failure::NameConstraints => f.write_str(
                "x509: a root or intermediate certificate is not authorized to sign for this name",
            ),
            Failure::Host(text) => f.write_str(text),
            Failure::Refused(what) => write!(f, "x509: {what}"),
            Failure::Revoked { serial, issuer } => write!(
                f,
                "x509: certificate revoked by CRL (serial {serial}, CRL issuer {issuer:?})"
            ),
        }
    }
}

impl std::error::Error for Failure {}

/// Refuses a certificate outside its validity period at Unix time `now`.
pub(super) fn check_time(c: &X509Certificate<'_>, now: i64) -> Result<(), Failure> {
    let (not_before, not_after) = cert::validity(c);
    if now < not_before {
        return Err(Failure::NotYetValid { now, not_before });
    }
    if now > not_after {
        return Err(Failure::Expired { now, not_after });
    }
    Ok(())
}
