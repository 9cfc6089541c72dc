//! kvd's client-certificate verifier for the client and peer listeners.
//!
//! It requires a certificate, verifies its chain with [`TrustStore`] (which accepts X.509 v1
//! certificates and roots, as etcd does), requires clientAuth when the certificate lists
//! extended key usages, checks CRLs, and applies `allowed-cn` / `allowed-hostname`.
//! Refusals carry etcd's wording and the certificate's subject ([`CertRejection`]).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::reject::{CertRejection, RejectKind};
use crate::x509::cert::{self, Usage};
use crate::x509::sig;
use crate::x509::TrustStore;

/// Which verified client certificates a port accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Allowed {
    /// Any certificate that verifies.
    Any,
    /// Only this Common Name (`allowed-cn`); the setting's label for messages.
    Cn(String, String),
    /// Only certificates valid for one of these host names (`allowed-hostname`).
    Hostnames(Vec<String>, String),
}

impl Allowed {
    /// `Err(reason)` when the certificate is not allowed.
    fn check(&self, leaf: &x509_parser::certificate::X509Certificate<'_>) -> Result<(), String> {
        match self {
            Allowed::Any => Ok(()),
            Allowed::Cn(want, label) => {
                let cn = cert::common_name(leaf).unwrap_or_default();
                if &cn == want {
                    Ok(())
                } else {
                    Err(format!(
                        "client certificate authentication failed: CN {cn:?} is not the allowed CN {want:?} ({label})"
                    ))
                }
            }
            Allowed::Hostnames(hosts, label) => {
                let sans = cert::sans(leaf);
                if hosts.iter().any(|h| cert::host_matches(&sans, h)) {
                    Ok(())
                } else {
                    Err(format!(
                        "client certificate authentication failed: the certificate is not valid for {} ({label})",
                        hosts.join(", ")
                    ))
                }
            }
        }
    }
}

/// Requires and verifies client certificates.
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    trust: Arc<TrustStore>,
    allowed: Allowed,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    /// A verifier trusting `trust`, accepting what `allowed` allows, checking handshake
    /// signatures with `algs`.
    pub(crate) fn new(
        trust: Arc<TrustStore>,
        allowed: Allowed,
        algs: WebPkiSupportedAlgorithms,
    ) -> ClientVerifier {
        ClientVerifier {
            trust,
            allowed,
            algs,
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.trust.hints()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let leaf = cert::parse(end_entity).map_err(|e| {
            CertRejection {
                kind: RejectKind::BadCertificate,
                reason: format!("tls: failed to parse client certificate: x509: {e}"),
                subject: None,
            }
            .into_rustls()
        })?;
        let subject = Some(cert::dn_string(leaf.subject()));
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        self.trust
            .verify(end_entity, intermediates, now, Usage::ClientAuth)
            .map_err(|f| CertRejection::client_chain(&f, subject.clone()).into_rustls())?;
        self.allowed.check(&leaf).map_err(|reason| {
            CertRejection {
                kind: RejectKind::NotAllowed,
                reason,
                subject,
            }
            .into_rustls()
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        sig::verify(message, cert, dss, &self.algs, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        sig::verify(message, cert, dss, &self.algs, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
