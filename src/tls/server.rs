//! rustls configuration shared by server and client sides: the crypto provider with the
//! chosen cipher suites (`--cipher-suites`, Go's names), the protocol versions
//! (`--tls-min-version`, `--tls-max-version`), and the listeners' [`ServerConfig`] with
//! ALPN `h2` and `http/1.1` (gRPC and HTTP share each port).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ServerConfig};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::error::TlsError;
use super::setting::Setting;
use super::verify::ClientVerifier;
use super::{ListenerKind, TlsOptions};
use crate::config::TlsVersion;

/// The TLS 1.3 suite names etcd accepts (Go always enables them; kvd too).
const TLS13_NAMES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Go's short names for the ChaCha20 suites.
fn canonical(name: &str) -> String {
    match name {
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
            format!("{name}_SHA256")
        }
        _ => name.to_string(),
    }
}

/// ring's provider with the TLS 1.2 suites `--cipher-suites` names (in that order) and
/// every TLS 1.3 suite; all of ring's suites when none are named.
pub(crate) fn provider(
    kind: ListenerKind,
    options: &TlsOptions,
) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if options.cipher_suites.is_empty() {
        return Ok(Arc::new(provider));
    }
    let all = provider.cipher_suites.clone();
    let is_tls12 = |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls12(_));
    let mut chosen: Vec<SupportedCipherSuite> =
        all.iter().filter(|s| !is_tls12(s)).copied().collect();
    for name in &options.cipher_suites {
        if TLS13_NAMES.contains(&name.as_str()) {
            continue;
        }
        let want = canonical(name);
        let found = all
            .iter()
            .find(|s| is_tls12(s) && s.suite().as_str() == Some(want.as_str()));
        match found {
            Some(s) if !chosen.contains(s) => chosen.push(*s),
            Some(_) => {}
            None => {
                let known: Vec<&str> = all
                    .iter()
                    .filter(|s| is_tls12(s))
                    .filter_map(|s| s.suite().as_str())
                    .collect();
                return Err(TlsError::Config(format!(
                    "{}: kvd cannot use the cipher suite {name:?}; its TLS 1.2 suites are {}",
                    Setting::CipherSuites.of(kind),
                    known.join(", ")
                )));
            }
        }
    }
    provider.cipher_suites = chosen;
    Ok(Arc::new(provider))
}

/// The protocol versions between `--tls-min-version` (default 1.2) and
/// `--tls-max-version` (default 1.3), dropping TLS 1.2 when `provider` has no TLS 1.2
/// suite left.
pub(crate) fn versions(
    kind: ListenerKind,
    options: &TlsOptions,
    provider: &CryptoProvider,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let min = options.min_version.unwrap_or(TlsVersion::Tls12);
    let max = options.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(TlsError::Config(format!(
            "{} ({min}) is above {} ({max})",
            Setting::TlsMinVersion.of(kind),
            Setting::TlsMaxVersion.of(kind)
        )));
    }
    if min == TlsVersion::Tls13 && !options.cipher_suites.is_empty() {
        return Err(TlsError::Config(format!(
            "cipher suites cannot be configured when only TLS1.3 is enabled ({} with {}=TLS1.3)",
            Setting::CipherSuites.of(kind),
            Setting::TlsMinVersion.of(kind)
        )));
    }
    let has_tls12 = provider
        .cipher_suites
        .iter()
        .any(|s| matches!(s, SupportedCipherSuite::Tls12(_)));
    let mut out = Vec::new();
    if max >= TlsVersion::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls12 && has_tls12 {
        out.push(&rustls::version::TLS12);
    }
    if out.is_empty() {
        return Err(TlsError::Config(format!(
            "{} names no TLS 1.2 suite, and {} is TLS1.2: no connection could be made",
            Setting::CipherSuites.of(kind),
            Setting::TlsMaxVersion.of(kind)
        )));
    }
    Ok(out)
}

/// A listener's server configuration: serve `key`, require and verify client
/// certificates with `verifier` when given.
pub(crate) fn server_config(
    provider: Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    key: Arc<CertifiedKey>,
    verifier: Option<Arc<ClientVerifier>>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider).with_protocol_versions(versions)?;
    let requires_client_cert = verifier.is_some();
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if requires_client_cert {
        // A resumed session skips certificate verification; every connection must be
        // checked against the current CA bundle and CRL.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(suites: &[&str], min: Option<TlsVersion>, max: Option<TlsVersion>) -> TlsOptions {
        TlsOptions {
            cipher_suites: suites.iter().map(|s| s.to_string()).collect(),
            min_version: min,
            max_version: max,
            ..TlsOptions::default()
        }
    }

    #[test]
    fn go_names_choose_tls12_suites_and_keep_tls13() {
        let o = opts(
            &[
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_AES_128_GCM_SHA256",
            ],
            None,
            None,
        );
        let p = provider(ListenerKind::Client, &o).unwrap();
        let names: Vec<&str> = p
            .cipher_suites
            .iter()
            .filter_map(|s| s.suite().as_str())
            .collect();
        assert_eq!(
            &names[names.len() - 2..],
            [
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(names.iter().filter(|n| n.starts_with("TLS13_")).count(), 3);
        assert_eq!(versions(ListenerKind::Client, &o, &p).unwrap().len(), 2);
    }

    #[test]
    fn unknown_suites_and_bad_versions_are_errors() {
        let o = opts(&["TLS_RSA_WITH_RC4_128_SHA"], None, None);
        let e = provider(ListenerKind::Peer, &o).unwrap_err().to_string();
        assert!(e.starts_with("--cipher-suites: kvd cannot use"), "{e}");
        let o = opts(&[], Some(TlsVersion::Tls13), Some(TlsVersion::Tls12));
        let p = provider(ListenerKind::Client, &o).unwrap();
        assert!(versions(ListenerKind::Client, &o, &p).is_err());
        let o = opts(&["TLS_AES_128_GCM_SHA256"], None, Some(TlsVersion::Tls12));
        let p = provider(ListenerKind::Client, &o).unwrap();
        assert!(versions(ListenerKind::Client, &o, &p).is_err());
        let o = opts(&[], Some(TlsVersion::Tls13), None);
        let p = provider(ListenerKind::Client, &o).unwrap();
        assert_eq!(versions(ListenerKind::Client, &o, &p).unwrap().len(), 1);
    }
}
