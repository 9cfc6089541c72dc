//! The error type of `kvd pki`. Every message says which file or flag is at fault and what
//! to do about it, because it is printed to the user as is.

use std::path::PathBuf;

/// An error from a `kvd pki` command.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Output files exist and `--force` was not given.
    #[error("{} already exist{}; nothing was written (pass --force to overwrite)", list_paths(.paths), if .paths.len() == 1 { "s" } else { "" })]
    Exists {
        /// The files that already exist.
        paths: Vec<PathBuf>,
    },
    /// A file does not hold what it should (no certificate, no key, bad encoding).
    #[error("{path}: {detail}")]
    BadFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A private key does not belong to its certificate.
    #[error("{key} does not match {cert}: the key's public part differs from the certificate's public key (a key from another certificate?)")]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A flag has a value that cannot be used.
    #[error("{flag}: {detail}")]
    BadFlag {
        /// The flag, e.g. `--hosts`.
        flag: &'static str,
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// Key generation or certificate signing failed.
    #[error("{0}")]
    Crypto(String),
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl PkiError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PkiError::Io {
            path: path.into(),
            source,
        }
    }

    /// A file whose content is wrong.
    pub fn bad_file(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        PkiError::BadFile {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// A flag whose value cannot be used.
    pub fn bad_flag(flag: &'static str, detail: impl Into<String>) -> Self {
        PkiError::BadFlag {
            flag,
            detail: detail.into(),
        }
    }
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Crypto(format!("certificate generation failed: {e}"))
    }
}
