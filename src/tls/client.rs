//! rustls client configuration for kvd's own outgoing connections (member to member):
//! it presents `client-cert-file`/`client-key-file` (or `cert-file`/`key-file`, or the
//! auto-TLS certificate) and verifies the other member's server certificate against
//! `trusted-ca-file` (the system's CA bundle when none is given) with kvd's own chain
//! verification, so v1 roots work on this side too. Towards auto-TLS members nothing is
//! verified, as in etcd.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ClientConfig;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, Error, SignatureScheme, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::TlsError;
use super::reject::{failure_kind, CertRejection, RejectKind};
use crate::x509::cert;
use crate::x509::sig;
use crate::x509::TrustStore;

/// How kvd checks the servers it dials.
#[derive(Debug)]
pub(crate) enum ServerCheck {
    /// Verify against this store.
    Verify(Arc<TrustStore>),
    /// Accept any certificate (towards auto-TLS members); handshake signatures are still
    /// checked.
    Skip,
}

/// A [`ServerCertVerifier`] using [`TrustStore`] and Go's host-name rules.
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    check: ServerCheck,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let ServerCheck::Verify(trust) = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        let leaf = cert::parse(end_entity)
            .map_err(|e| reject(RejectKind::BadCertificate, format!("x509: {e}"), None))?;
        let subject = Some(cert::dn_string(leaf.subject()));
        if trust.len() == 0 {
            return Err(reject(
                RejectKind::UnknownAuthority,
                "x509: certificate signed by unknown authority (kvd found no CA to trust: set the trusted-ca-file of this port)".to_string(),
                subject,
            ));
        }
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        trust
            .verify_server(end_entity, intermediates, server_name, now)
            .map_err(|f| reject(failure_kind(&f), f.to_string(), subject.clone()))?;
        Ok(ServerCertVerified::assertion())
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

fn reject(kind: RejectKind, reason: String, subject: Option<String>) -> Error {
    CertRejection {
        kind,
        reason,
        subject,
    }
    .into_rustls()
}

/// Builds the client configuration.
pub(crate) fn build(
    provider: Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    identity: Option<Arc<CertifiedKey>>,
    check: ServerCheck,
) -> Result<ClientConfig, TlsError> {
    let verifier = Arc::new(ServerVerifier {
        check,
        algs: provider.signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Where Linux distributions keep the system CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system CA bundle (read once; empty when none is found).
pub(crate) fn system_trust() -> Arc<TrustStore> {
    static SYSTEM: OnceLock<Arc<TrustStore>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            for path in SYSTEM_BUNDLES {
                let Ok(bytes) = std::fs::read(path) else {
                    continue;
                };
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                    .filter_map(Result::ok)
                    .filter(|c| cert::parse(c).is_ok())
                    .collect();
                if let Ok(store) = TrustStore::new(certs, Vec::new()) {
                    if store.len() > 0 {
                        return Arc::new(store);
                    }
                }
            }
            Arc::new(TrustStore::default())
        })
        .clone()
}
