//! [`Rejected`]: why a connection's TLS handshake (or the checks right after it) failed,
//! worded as etcd logs it, so that users find the same text in kvd's log:
//! `rejected connection from "127.0.0.1:52370" (error "tls: client didn't provide a
//! certificate", ServerName "")`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::{
    AlertDescription, CertificateError, Error as TlsLibError, OtherError, PeerIncompatible,
};

use crate::x509::Failure;

/// The kind of a refused handshake, for callers that branch on it (tests, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// The client sent no certificate although one is required.
    NoCertificate,
    /// The client certificate does not chain to a trusted CA (or a signature is wrong).
    UnknownAuthority,
    /// The client certificate's extended key usage does not allow clientAuth.
    IncompatibleUsage,
    /// The client certificate (or one of its issuers) has expired.
    Expired,
    /// The client certificate (or one of its issuers) is not valid yet.
    NotYetValid,
    /// The client certificate is listed in a CRL.
    Revoked,
    /// Another problem with the client certificate (malformed, not a CA, ...).
    BadCertificate,
    /// The certificate is valid but not allowed here (`allowed-cn`, `allowed-hostname`).
    NotAllowed,
    /// Peer port: the certificate does not name the address the member connects from.
    AddressMismatch,
    /// The client refused kvd's certificate (a TLS alert from the client).
    RemoteAlert,
    /// The first bytes are not a TLS handshake (plaintext to a TLS port).
    NotTls,
    /// The connection closed during the handshake.
    Eof,
    /// The connection closed before sending anything (port probes, health checks).
    ClosedBeforeHandshake,
    /// The handshake did not finish in time.
    Timeout,
    /// Another TLS protocol failure (no common version or cipher suite, ...).
    Protocol,
    /// A network error.
    Io,
}

/// A refused connection: who, why, and the client certificate's subject when one was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The remote address.
    pub remote: SocketAddr,
    /// The kind of failure.
    pub kind: RejectKind,
    /// etcd's wording, e.g. `tls: failed to verify client certificate: x509: certificate
    /// signed by unknown authority`.
    pub reason: String,
    /// The subject of the client certificate (RFC 4514), when the client sent one.
    pub subject: Option<String>,
    /// The server name (SNI) the client asked for; empty when none.
    pub server_name: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rejected connection from \"{}\" (error {:?}, ServerName {:?}",
            self.remote, self.reason, self.server_name
        )?;
        if let Some(subject) = &self.subject {
            write!(f, ", subject {subject:?}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for Rejected {}

/// The error kvd's verifiers hand rustls (inside `CertificateError::Other`), carrying the
/// words and subject [`Rejected`] needs.
#[derive(Debug, Clone)]
pub(crate) struct CertRejection {
    pub(crate) kind: RejectKind,
    pub(crate) reason: String,
    pub(crate) subject: Option<String>,
}

impl fmt::Display for CertRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for CertRejection {}

impl CertRejection {
    /// A chain failure of a client certificate, as Go words it.
    pub(crate) fn client_chain(failure: &Failure, subject: Option<String>) -> CertRejection {
        CertRejection {
            kind: failure_kind(failure),
            reason: format!("tls: failed to verify client certificate: {failure}"),
            subject,
        }
    }

    /// Wraps this rejection as the rustls error a verifier returns.
    pub(crate) fn into_rustls(self) -> TlsLibError {
        TlsLibError::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }
}

/// The [`RejectKind`] of a chain failure.
pub(crate) fn failure_kind(failure: &Failure) -> RejectKind {
    match failure {
        Failure::UnknownAuthority { .. } => RejectKind::UnknownAuthority,
        Failure::IncompatibleUsage => RejectKind::IncompatibleUsage,
        Failure::Expired { .. } => RejectKind::Expired,
        Failure::NotYetValid { .. } => RejectKind::NotYetValid,
        Failure::Revoked { .. } => RejectKind::Revoked,
        Failure::Malformed(_)
        | Failure::NotAuthorizedToSign
        | Failure::TooManyIntermediates
        | Failure::UnhandledCriticalExtension(_)
        | Failure::NameConstraints
        | Failure::Host(_)
        | Failure::Refused(_) => RejectKind::BadCertificate,
    }
}

impl Rejected {
    /// A rejection from its parts.
    pub(crate) fn new(remote: SocketAddr, kind: RejectKind, reason: impl Into<String>) -> Rejected {
        Rejected {
            remote,
            kind,
            reason: reason.into(),
            subject: None,
            server_name: String::new(),
        }
    }

    /// The rejection for a failed handshake (`err` from tokio-rustls).
    pub(crate) fn from_io(remote: SocketAddr, err: &io::Error) -> Rejected {
        let tls = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TlsLibError>());
        match tls {
            Some(e) => Rejected::from_tls(remote, e),
            None if err.kind() == io::ErrorKind::UnexpectedEof => {
                Rejected::new(remote, RejectKind::Eof, "EOF")
            }
            None => Rejected::new(remote, RejectKind::Io, err.to_string()),
        }
    }

    fn from_tls(remote: SocketAddr, e: &TlsLibError) -> Rejected {
        use RejectKind::*;
        match e {
            TlsLibError::NoCertificatesPresented => Rejected::new(
                remote,
                NoCertificate,
                "tls: client didn't provide a certificate",
            ),
            TlsLibError::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
                match inner.downcast_ref::<CertRejection>() {
                    Some(r) => Rejected {
                        subject: r.subject.clone(),
                        ..Rejected::new(remote, r.kind, r.reason.clone())
                    },
                    None => Rejected::new(
                        remote,
                        BadCertificate,
                        format!("tls: failed to verify client certificate: {inner}"),
                    ),
                }
            }
            TlsLibError::InvalidCertificate(c) => Rejected::new(
                remote,
                BadCertificate,
                format!("tls: failed to verify client certificate: {c:?}"),
            ),
            TlsLibError::AlertReceived(alert) => Rejected::new(
                remote,
                RemoteAlert,
                format!("remote error: tls: {}", alert_text(*alert)),
            ),
            TlsLibError::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon) => {
                Rejected::new(
                    remote,
                    Protocol,
                    "tls: no cipher suite supported by both client and server",
                )
            }
            TlsLibError::PeerIncompatible(
                PeerIncompatible::SupportedVersionsExtensionRequired
                | PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::Tls13RequiredForQuic,
            ) => Rejected::new(
                remote,
                Protocol,
                format!("tls: client offered only unsupported versions ({e})"),
            ),
            TlsLibError::NoApplicationProtocol => Rejected::new(
                remote,
                Protocol,
                "tls: client requested unsupported application protocols",
            ),
            other => Rejected::new(remote, Protocol, format!("tls: {other}")),
        }
    }
}

/// Go's text for a TLS alert (`remote error: tls: bad certificate`).
fn alert_text(alert: AlertDescription) -> String {
    use AlertDescription::*;
    let text = match alert {
        CloseNotify => "close notify",
        UnexpectedMessage => "unexpected message",
        BadRecordMac => "bad record MAC",
        DecryptionFailed => "decryption failed",
        RecordOverflow => "record overflow",
        DecompressionFailure => "decompression failure",
        HandshakeFailure => "handshake failure",
        BadCertificate => "bad certificate",
        UnsupportedCertificate => "unsupported certificate",
        CertificateRevoked => "revoked certificate",
        CertificateExpired => "expired certificate",
        CertificateUnknown => "unknown certificate",
        IllegalParameter => "illegal parameter",
        UnknownCA => "unknown certificate authority",
        AccessDenied => "access denied",
        DecodeError => "error decoding message",
        DecryptError => "error decrypting message",
        ProtocolVersion => "protocol version not supported",
        InsufficientSecurity => "insufficient security level",
        InternalError => "internal error",
        InappropriateFallback => "inappropriate fallback",
        UserCanceled => "user canceled",
        NoRenegotiation => "no renegotiation",
        MissingExtension => "missing extension",
        UnsupportedExtension => "unsupported extension",
        UnrecognisedName => "unrecognized name",
        NoApplicationProtocol => "no application protocol",
        CertificateRequired => "certificate required",
        other => return format!("alert({})", u8::from(other)),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 52370))
    }

    #[test]
    fn log_line_reads_like_etcds() {
        let r = Rejected::from_tls(addr(), &TlsLibError::NoCertificatesPresented);
        assert_eq!(
            r.to_string(),
            "rejected connection from \"127.0.0.1:52370\" (error \"tls: client didn't provide a certificate\", ServerName \"\")"
        );
        let r = Rejected::from_tls(
            addr(),
            &TlsLibError::AlertReceived(AlertDescription::BadCertificate),
        );
        assert_eq!(r.reason, "remote error: tls: bad certificate");
        assert_eq!(r.kind, RejectKind::RemoteAlert);
    }

    #[test]
    fn verifier_rejections_keep_reason_and_subject() {
        let rej = CertRejection::client_chain(
            &Failure::UnknownAuthority { hint: None },
            Some("CN=alice".to_string()),
        );
        let io = io::Error::new(io::ErrorKind::InvalidData, rej.into_rustls());
        let r = Rejected::from_io(addr(), &io);
        assert_eq!(r.kind, RejectKind::UnknownAuthority);
        assert_eq!(
            r.reason,
            "tls: failed to verify client certificate: x509: certificate signed by unknown authority"
        );
        assert!(r.to_string().ends_with(", subject \"CN=alice\")"));
    }

    #[test]
    fn eof_reads_eof() {
        let io = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(Rejected::from_io(addr(), &io).reason, "EOF");
    }
}
