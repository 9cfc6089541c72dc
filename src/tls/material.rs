//! One loaded set of a port's TLS files (certificate and key, client certificate and key,
//! CA bundle, CRL, or the auto-TLS pair) turned into the port's rustls server
//! configuration and its client configuration for outgoing connections. Reloading builds
//! a new [`Material`] and swaps it in whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::ClientConfig;
use rustls::server::ServerConfig;
use rustls::sign::CertifiedKey;

use super::auto;
use super::client::{self, ServerCheck};
use super::error::{FileProblem, TlsError};
use super::load;
use super::server;
use super::setting::{Named, Setting};
use super::verify::{Allowed, ClientVerifier};
use super::{client_certs_required, uses_auto_tls, ListenerKind, TlsOptions};
use crate::config::TransportSecurity;
use crate::x509::cert::{self, Usage};
use crate::x509::TrustStore;

/// The rustls client configuration kvd uses to dial other members' `kind` port with the
/// settings of that port, e.g. `client_config(ListenerKind::Peer, &cfg.peer_tls, ...)`.
///
/// It presents `client-cert-file`/`client-key-file` when given, else `cert-file`/
/// `key-file` (else the auto-TLS certificate, created under `data_dir` for `hosts` if
/// missing, as [`super::ServerTls::new`] does); verifies the server's certificate
/// (serverAuth, validity, chain, CRL, and the dialed name or IP in its SANs) against
/// `trusted-ca-file`, or the system CA bundle when none is given; with auto TLS it does not
/// verify the server, as etcd. ALPN offers `h2` (the peer transport is gRPC); change
/// `alpn_protocols` for HTTP/1.1 dials.
///
/// Prefer [`super::ServerTls::client_config`] when the port's [`super::ServerTls`] exists:
/// it follows file reloads.
///
/// # Errors
/// The same startup errors as [`super::ServerTls::new`].
pub fn client_config(
    kind: ListenerKind,
    security: &TransportSecurity,
    options: &TlsOptions,
    data_dir: &Path,
    hosts: &[String],
) -> Result<ClientConfig, TlsError> {
    let material = Material::load(kind, security, options, data_dir, hosts)?;
    Ok(material.client.as_ref().clone())
}

/// A port's TLS set-up built from its files.
#[derive(Debug)]
pub(crate) struct Material {
    /// What the listener serves with.
    pub(crate) server: Arc<ServerConfig>,
    /// What kvd dials other members' ports with.
    pub(crate) client: Arc<ClientConfig>,
    /// The files this set-up was read from (watched for changes).
    pub(crate) files: Vec<PathBuf>,
    /// Things worth a warning at startup (expired certificate, missing usages, ...).
    pub(crate) warnings: Vec<String>,
    /// With auto TLS, when its certificate expires (it is then regenerated).
    pub(crate) auto_not_after: Option<i64>,
    /// When the served certificate expires (Unix seconds), for the expiry metric.
    pub(crate) served_not_after: Option<i64>,
    /// True when connecting clients must present a verified certificate.
    pub(crate) requires_client_cert: bool,
}

impl Material {
    /// Reads the files `security` names (or creates the auto-TLS pair under `data_dir` for
    /// `hosts`) and builds both configurations.
    pub(crate) fn load(
        kind: ListenerKind,
        security: &TransportSecurity,
        options: &TlsOptions,
        data_dir: &Path,
        hosts: &[String],
    ) -> Result<Material, TlsError> {
        let named = |s: Setting| s.of(kind);
        if security.allowed_cn.is_some() && !security.allowed_hostname.is_empty() {
            return Err(TlsError::Config(format!(
                "{} and {} are mutually exclusive (cn={:?}, hostname={:?}): set only one",
                named(Setting::AllowedCn),
                named(Setting::AllowedHostname),
                security.allowed_cn.as_deref().unwrap_or_default(),
                security.allowed_hostname.join(",")
            )));
        }
        let provider = server::provider(kind, options)?;
        let versions = server::versions(kind, options, &provider)?;
        let mut warnings = Vec::new();
        let mut files = Vec::new();

        // The certificate this port serves.
        let auto = uses_auto_tls(security);
        let (cert_setting, cert_path, key_setting, key_path, auto_not_after) = if auto {
            let a = auto::ensure(
                kind,
                data_dir,
                hosts,
                options.self_signed_cert_validity_years,
                &provider,
            )?;
            let s = named(Setting::AutoTls);
            (s, a.cert, s, a.key, Some(a.not_after))
        } else {
            match (&security.cert_file, &security.key_file) {
                (Some(c), Some(k)) => (
                    named(Setting::CertFile),
                    c.clone(),
                    named(Setting::KeyFile),
                    k.clone(),
                    None,
                ),
                _ => {
                    return Err(TlsError::Config(format!(
                        "the {} port serves TLS but has no certificate: set {} and {}, or {}",
                        kind.name(),
                        named(Setting::CertFile),
                        named(Setting::KeyFile),
                        named(Setting::AutoTls)
                    )))
                }
            }
        };
        let served =
            load::certified_key(&provider, cert_setting, &cert_path, key_setting, &key_path)?;
        check_leaf(
            &served,
            cert_setting,
            &cert_path,
            Usage::ServerAuth,
            &mut warnings,
        )?;
        files.push(cert_path.clone());
        files.push(key_path.clone());
        let served_not_after = served
            .cert
            .first()
            .and_then(|d| cert::parse(d).ok())
            .map(|leaf| cert::validity(&leaf).1);
        let served = Arc::new(served);

        // The certificate kvd presents when it dials.
        let identity = match (&security.client_cert_file, &security.client_key_file) {
            (Some(c), Some(k)) if !auto => {
                let (cs, ks) = (
                    named(Setting::ClientCertFile),
                    named(Setting::ClientKeyFile),
                );
                let pair = load::certified_key(&provider, cs, c, ks, k)?;
                check_leaf(&pair, cs, c, Usage::ClientAuth, &mut warnings)?;
                files.push(c.clone());
                files.push(k.clone());
                Arc::new(pair)
            }
            _ => {
                if kind == ListenerKind::Peer && !auto {
                    warn_without_client_auth(&served, cert_setting, &cert_path, &mut warnings);
                }
                served.clone()
            }
        };

        // Who may connect.
        let requires_client_cert = client_certs_required(security);
        let trust = match (&security.trusted_ca_file, requires_client_cert) {
            (Some(ca), true) => {
                files.push(ca.clone());
                if let Some(crl) = &security.crl_file {
                    files.push(crl.clone());
                }
                Some(Arc::new(trust_store(
                    kind,
                    ca,
                    security.crl_file.as_deref(),
                    &mut warnings,
                )?))
            }
            (None, true) => {
                return Err(TlsError::Config(format!(
                    "the {} port requires client certificates but has no CA to verify them: set {}",
                    kind.name(),
                    named(Setting::TrustedCaFile)
                )))
            }
            (_, false) => {
                if security.crl_file.is_some() {
                    warnings.push(format!(
                        "{} has no effect: this port does not ask for client certificates (set {})",
                        named(Setting::CrlFile),
                        named(Setting::TrustedCaFile)
                    ));
                }
                if security.allowed_cn.is_some() || !security.allowed_hostname.is_empty() {
                    warnings.push(format!(
                        "{} / {} have no effect: this port does not ask for client certificates (set {})",
                        named(Setting::AllowedCn),
                        named(Setting::AllowedHostname),
                        named(Setting::TrustedCaFile)
                    ));
                }
                None
            }
        };
        let verifier = trust.as_ref().map(|t| {
            Arc::new(ClientVerifier::new(
                t.clone(),
                allowed(kind, security),
                provider.signature_verification_algorithms,
            ))
        });
        let server = server::server_config(provider.clone(), &versions, served, verifier)?;

        let check = if auto {
            ServerCheck::Skip
        } else {
            match (&trust, &security.trusted_ca_file) {
                (Some(t), _) => ServerCheck::Verify(t.clone()),
                (None, Some(ca)) => {
                    ServerCheck::Verify(Arc::new(trust_store(kind, ca, None, &mut warnings)?))
                }
                (None, None) => ServerCheck::Verify(client::system_trust()),
            }
        };
        let client = client::build(provider, &versions, Some(identity), check)?;
        files.sort();
        files.dedup();
        Ok(Material {
            served_not_after,
            server: Arc::new(server),
            client: Arc::new(client),
            files,
            warnings,
            auto_not_after,
            requires_client_cert,
        })
    }
}

/// Which client certificates the port accepts beyond verification.
fn allowed(kind: ListenerKind, security: &TransportSecurity) -> Allowed {
    if let Some(cn) = &security.allowed_cn {
        return Allowed::Cn(cn.clone(), Setting::AllowedCn.of(kind).to_string());
    }
    if !security.allowed_hostname.is_empty() {
        return Allowed::Hostnames(
            security.allowed_hostname.clone(),
            Setting::AllowedHostname.of(kind).to_string(),
        );
    }
    Allowed::Any
}

/// The CA bundle and CRLs.
fn trust_store(
    kind: ListenerKind,
    ca: &Path,
    crl: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<TrustStore, TlsError> {
    let ca_setting = Setting::TrustedCaFile.of(kind);
    let crl_setting = Setting::CrlFile.of(kind);
    let anchors = load::ca_bundle(ca_setting, ca)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for der in &anchors {
        if let Ok(c) = cert::parse(der) {
            let (_, not_after) = cert::validity(&c);
            if not_after < now {
                warnings.push(format!(
                    "{ca_setting} {ca:?}: the CA {:?} expired at {}; certificates it issued are refused",
                    cert::dn_string(c.subject()),
                    cert::go_time(not_after)
                ));
            }
        }
    }
    let crls = match crl {
        Some(path) => load::crls(crl_setting, path)?,
        None => Vec::new(),
    };
    let store = TrustStore::new(anchors, crls).map_err(|(index, reason)| match (index, crl) {
        (Some(i), _) => load::file_error(
            ca_setting,
            ca,
            FileProblem::BadCertificate {
                index: i + 1,
                reason,
            },
        ),
        (None, Some(path)) => load::file_error(crl_setting, path, FileProblem::BadCrl(reason)),
        (None, None) => TlsError::Config(reason),
    })?;
    if let Some(path) = crl {
        for issuer in store.foreign_crl_issuers() {
            warnings.push(format!(
                "{crl_setting} {path:?}: the CRL of {issuer:?} is not from a CA in {ca_setting}; it applies only to certificates that CA issued"
            ));
        }
    }
    Ok(store)
}

/// Refuses a certificate whose extended key usage forbids its role; warns when it has
/// expired or is not valid yet.
fn check_leaf(
    pair: &CertifiedKey,
    setting: Named,
    path: &Path,
    usage: Usage,
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    let Some(der) = pair.cert.first() else {
        return Ok(());
    };
    let leaf = cert::parse(der).map_err(|reason| {
        load::file_error(
            setting,
            path,
            FileProblem::BadCertificate { index: 1, reason },
        )
    })?;
    if !cert::eku_allows(&leaf, usage) {
        let (role, eku) = match usage {
            Usage::ServerAuth => ("server", "serverAuth"),
            Usage::ClientAuth => ("client", "clientAuth"),
        };
        return Err(load::file_error(
            setting,
            path,
            FileProblem::WrongUsage(format!(
                "the certificate's extended key usage is [{}] without {eku}, so peers refuse it as a TLS {role} certificate (\"incompatible key usage\"); issue it with {eku} (or with no extended key usage)",
                cert::eku_names(&leaf).join(", ")
            )),
        ));
    }
    let (not_before, not_after) = cert::validity(&leaf);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now > not_after {
        warnings.push(format!(
            "{setting} {path:?}: the certificate expired at {}; clients will refuse it",
            cert::go_time(not_after)
        ));
    } else if now < not_before {
        warnings.push(format!(
            "{setting} {path:?}: the certificate is not valid before {}; clients will refuse it until then",
            cert::go_time(not_before)
        ));
    }
    Ok(())
}

/// Warns when the peer certificate (also presented when dialing) lacks clientAuth.
fn warn_without_client_auth(
    pair: &CertifiedKey,
    setting: Named,
    path: &Path,
    warnings: &mut Vec<String>,
) {
    let Some(leaf) = pair.cert.first().and_then(|d| cert::parse(d).ok()) else {
        return;
    };
    if !cert::eku_allows(&leaf, Usage::ClientAuth) {
        warnings.push(format!(
            "{setting} {path:?}: the certificate has no clientAuth usage, but kvd also presents it when dialing other members, which will refuse it (\"incompatible key usage\"); issue it with serverAuth and clientAuth, or set {}",
            Setting::ClientCertFile.of(ListenerKind::Peer)
        ));
    }
}
