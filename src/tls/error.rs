//! [`TlsError`]: why a TLS set-up cannot be built (at startup or on reload), naming the
//! file, the setting and what to fix.

use std::path::PathBuf;

use thiserror::Error;

/// Why a TLS set-up could not be built from the configuration and its files.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file named by a setting is missing or unusable.
    #[error("{setting} {path:?}: {problem}")]
    File {
        /// The setting, as `--flag / yaml.key`.
        setting: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },
    /// The private key does not belong to the certificate.
    #[error(
        "{key_setting} {key_path:?} is not the key of the certificate in {cert_setting} {cert_path:?} \
         (their public keys differ): give the key the certificate was issued for"
    )]
    KeyMismatch {
        /// The certificate's setting.
        cert_setting: String,
        /// The certificate file.
        cert_path: PathBuf,
        /// The key's setting.
        key_setting: String,
        /// The key file.
        key_path: PathBuf,
    },
    /// Settings that do not fit together (or a value kvd cannot use).
    #[error("{0}")]
    Config(String),
    /// The auto-TLS certificate could not be created or written.
    #[error("auto TLS ({setting}) in {dir:?}: {problem}")]
    AutoTls {
        /// `--auto-tls` or `--peer-auto-tls`.
        setting: String,
        /// `<data-dir>/fixtures/{client,peer}`.
        dir: PathBuf,
        /// What failed.
        problem: String,
    },
    /// rustls refused the assembled configuration (should not happen with valid files).
    #[error("TLS configuration refused by rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What is wrong with a file named by a TLS setting.
#[derive(Debug, Error)]
pub enum FileProblem {
    /// The file does not exist.
    #[error("the file does not exist")]
    Missing,
    /// The file exists but cannot be read.
    #[error("cannot read the file: {0}")]
    Unreadable(std::io::Error),
    /// The file holds no PEM block at all.
    #[error(
        "not a PEM file (kvd reads certificates and keys as PEM text: -----BEGIN {expected}-----)"
    )]
    NotPem {
        /// The PEM label kvd looked for.
        expected: &'static str,
    },
    /// A PEM block is damaged.
    #[error("bad PEM: {0}")]
    BadPem(String),
    /// The file holds PEM blocks, but no certificate.
    #[error("no certificate in the file (it holds {found})")]
    NoCertificate {
        /// What the file holds instead, e.g. `a private key`.
        found: String,
    },
    /// A certificate in the file cannot be parsed.
    #[error("certificate #{index} in the file cannot be parsed: {reason}")]
    BadCertificate {
        /// 1-based position in the file.
        index: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// The file holds PEM blocks, but no private key.
    #[error("no private key in the file (it holds {found}; kvd reads RSA PRIVATE KEY (PKCS#1), EC PRIVATE KEY (SEC1) and PRIVATE KEY (PKCS#8))")]
    NoKey {
        /// What the file holds instead.
        found: String,
    },
    /// The key is encrypted with a passphrase.
    #[error("the private key is encrypted; kvd needs it unencrypted (e.g. `openssl pkey -in KEY -out KEY.plain`)")]
    EncryptedKey,
    /// The key's algorithm or encoding is not supported.
    #[error("unsupported private key: {0} (kvd supports RSA, ECDSA P-256/P-384 and Ed25519)")]
    UnsupportedKey(String),
    /// A CA bundle without any certificate.
    #[error("the CA bundle holds no certificate (it holds {found})")]
    EmptyBundle {
        /// What the file holds instead.
        found: String,
    },
    /// A CRL that cannot be parsed or whose signature is wrong.
    #[error("bad certificate revocation list: {0}")]
    BadCrl(String),
    /// A certificate whose extended key usage forbids its role.
    #[error("{0}")]
    WrongUsage(String),
}
