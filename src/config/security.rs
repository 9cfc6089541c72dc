//! TLS settings: the per-port [`TransportSecurity`], TLS versions and cipher-suite names.
//!
//! Owns the vocabulary etcd uses for TLS (`TLS1.2`, Go's cipher-suite names) and what kvd's
//! TLS stack (rustls) can honour. It does not read certificates: files are only named here
//! and checked when the TLS layer loads them.

use std::fmt;
use std::path::PathBuf;

/// The TLS settings of one port: the client port (`--cert-file`, `--trusted-ca-file`, ...)
/// or the peer port (`--peer-cert-file`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportSecurity {
    /// The server certificate (PEM).
    pub cert_file: Option<PathBuf>,
    /// The key of [`TransportSecurity::cert_file`] (PEM, unencrypted).
    pub key_file: Option<PathBuf>,
    /// The certificate kvd presents when it dials as a client (other members, or its own
    /// client port for the gateway); `None` means use `cert_file` (etcd 3.5's
    /// `--client-cert-file` / `--peer-client-cert-file`).
    pub client_cert_file: Option<PathBuf>,
    /// The key of [`TransportSecurity::client_cert_file`].
    pub client_key_file: Option<PathBuf>,
    /// `--client-cert-auth`: clients must present a certificate signed by the trusted CA,
    /// and with auth enabled its CN names the user.
    pub client_cert_auth: bool,
    /// CA bundle that client certificates must chain to. As in etcd, setting it alone
    /// already makes client certificates required (see
    /// [`TransportSecurity::requires_client_cert`]).
    pub trusted_ca_file: Option<PathBuf>,
    /// Generate a self-signed certificate under `<data-dir>/fixtures/{client,peer}`. kvd
    /// sets this to false (with a warning) when certificate files are given, as etcd ignores
    /// auto TLS then.
    pub auto_tls: bool,
    /// Certificate revocation list checked on each connection.
    pub crl_file: Option<PathBuf>,
    /// Only client certificates with this Common Name are accepted.
    pub allowed_cn: Option<String>,
    /// Only client certificates valid for one of these host names are accepted.
    pub allowed_hostname: Vec<String>,
    /// Skip checking that a connecting member's certificate has its address in its SANs
    /// (peer port only: `--experimental-peer-skip-client-san-verification`).
    pub skip_client_san_verification: bool,
}

impl TransportSecurity {
    /// True when a certificate and key are given.
    pub fn has_cert(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// True when this port has what TLS needs: files or auto TLS.
    pub fn can_serve_tls(&self) -> bool {
        self.has_cert() || self.auto_tls
    }

    /// True when connecting clients must present a verified certificate: etcd requires and
    /// verifies client certificates when `client-cert-auth` is on OR a trusted CA is given.
    pub fn requires_client_cert(&self) -> bool {
        self.client_cert_auth || self.trusted_ca_file.is_some()
    }

    /// True when any TLS setting is given.
    pub(crate) fn is_configured(&self) -> bool {
        self.cert_file.is_some()
            || self.key_file.is_some()
            || self.client_cert_auth
            || self.trusted_ca_file.is_some()
            || self.crl_file.is_some()
            || self.allowed_cn.is_some()
            || !self.allowed_hostname.is_empty()
    }
}

/// A TLS protocol version kvd can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// Parses etcd's spelling (`TLS1.2`, `TLS1.3`).
    ///
    /// # Errors
    ///
    /// A message saying which versions exist (etcd's text), or that kvd has no TLS 1.0/1.1.
    pub(crate) fn parse(s: &str) -> Result<TlsVersion, String> {
        match s {
            "TLS1.2" => Ok(TlsVersion::Tls12),
            "TLS1.3" => Ok(TlsVersion::Tls13),
            "TLS1.0" | "TLS1.1" => Err(format!(
                "kvd supports only TLS1.2 and TLS1.3; {s} is too old to be safe"
            )),
            _ => Err(format!(
                "unexpected TLS version {s:?} (must be one of: TLS1.2, TLS1.3)"
            )),
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLS1.2",
            TlsVersion::Tls13 => "TLS1.3",
        })
    }
}

/// What kvd can do with a cipher-suite name etcd accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cipher {
    /// A TLS 1.2 suite kvd implements; the canonical (IANA) name.
    Tls12(&'static str),
    /// A TLS 1.3 suite (etcd accepts the name but Go ignores it; kvd passes it on).
    Tls13(&'static str),
    /// A suite etcd knows but kvd's TLS stack does not implement (CBC, RC4, 3DES, RSA key
    /// exchange): all are considered weak today.
    NotImplemented,
}

/// Every cipher-suite name etcd 3.4 (Go 1.19) accepts, and what kvd does with it.
#[rustfmt::skip]
const CIPHER_SUITES: &[(&str, Cipher)] = &[
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Cipher::Tls12("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Cipher::Tls12("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Cipher::Tls12("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", Cipher::Tls12("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Cipher::Tls12("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Cipher::Tls12("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Cipher::Tls12("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", Cipher::Tls12("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")),
    ("TLS_AES_128_GCM_SHA256", Cipher::Tls13("TLS_AES_128_GCM_SHA256")),
    ("TLS_AES_256_GCM_SHA384", Cipher::Tls13("TLS_AES_256_GCM_SHA384")),
    ("TLS_CHACHA20_POLY1305_SHA256", Cipher::Tls13("TLS_CHACHA20_POLY1305_SHA256")),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Cipher::NotImplemented),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", Cipher::NotImplemented),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", Cipher::NotImplemented),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", Cipher::NotImplemented),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Cipher::NotImplemented),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", Cipher::NotImplemented),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", Cipher::NotImplemented),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Cipher::NotImplemented),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", Cipher::NotImplemented),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", Cipher::NotImplemented),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", Cipher::NotImplemented),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", Cipher::NotImplemented),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", Cipher::NotImplemented),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", Cipher::NotImplemented),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", Cipher::NotImplemented),
    ("TLS_RSA_WITH_RC4_128_SHA", Cipher::NotImplemented),
];

/// What kvd does with the cipher-suite name `name`, or `None` if etcd does not know it.
pub(crate) fn cipher(name: &str) -> Option<Cipher> {
    CIPHER_SUITES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// The TLS 1.2 suites kvd implements, for messages.
pub(crate) fn implemented_tls12_suites() -> Vec<&'static str> {
    CIPHER_SUITES
        .iter()
        .filter_map(|(n, c)| match c {
            Cipher::Tls12(canonical) if canonical == n => Some(*n),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tls_versions_use_etcds_spelling() {
        assert_eq!(TlsVersion::parse("TLS1.2").unwrap(), TlsVersion::Tls12);
        assert_eq!(TlsVersion::parse("TLS1.3").unwrap().to_string(), "TLS1.3");
        assert_eq!(
            TlsVersion::parse("TLS12").unwrap_err(),
            "unexpected TLS version \"TLS12\" (must be one of: TLS1.2, TLS1.3)"
        );
        assert!(TlsVersion::parse("TLS1.0")
            .unwrap_err()
            .contains("only TLS1.2 and TLS1.3"));
        assert!(TlsVersion::Tls12 < TlsVersion::Tls13);
    }

    #[test]
    fn cipher_names_and_aliases() {
        assert_eq!(
            cipher("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"),
            Some(Cipher::Tls12("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"))
        );
        assert_eq!(
            cipher("TLS_RSA_WITH_RC4_128_SHA"),
            Some(Cipher::NotImplemented)
        );
        assert_eq!(
            cipher("TLS_AES_128_GCM_SHA256"),
            Some(Cipher::Tls13("TLS_AES_128_GCM_SHA256"))
        );
        assert_eq!(cipher("tls_ecdhe_rsa_with_aes_128_gcm_sha256"), None);
        assert_eq!(implemented_tls12_suites().len(), 6);
    }

    #[test]
    fn client_certificates_are_required_by_a_trusted_ca_alone() {
        let mut t = TransportSecurity::default();
        assert!(!t.requires_client_cert());
        t.trusted_ca_file = Some("ca.crt".into());
        assert!(t.requires_client_cert());
        assert!(!t.can_serve_tls());
        t.auto_tls = true;
        assert!(t.can_serve_tls());
    }
}
