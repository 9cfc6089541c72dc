//! Files on disk: the naming conventions of the guides (cfssl's `ca.pem`/`ca-key.pem`,
//! etcd's `ca.crt`/`ca.key`), reading PEM (or DER) files, and writing outputs safely: nothing
//! is overwritten without `--force`, private keys are created with mode 0600, and each file is
//! written to a temporary name and renamed so a reader never sees half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::SectionKind;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::PkiError;
use crate::x509::pem;

/// How output files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Naming {
    /// cfssl's names, used by most guides: `ca.pem`, `ca-key.pem`, `NAME.pem`, `NAME-key.pem`.
    Cfssl,
    /// etcd's documentation names: `ca.crt`, `ca.key`, `NAME.crt`, `NAME.key`.
    Etcd,
}

impl Naming {
    /// The certificate file name for `stem` (`ca`, a member or user name).
    pub fn cert_file(self, stem: &str) -> String {
        match self {
            Naming::Cfssl => format!("{stem}.pem"),
            Naming::Etcd => format!("{stem}.crt"),
        }
    }

    /// The private key file name for `stem`.
    pub fn key_file(self, stem: &str) -> String {
        match self {
            Naming::Cfssl => format!("{stem}-key.pem"),
            Naming::Etcd => format!("{stem}.key"),
        }
    }

    /// The naming to use in `dir` when none was asked for: that of the CA already there
    /// (`ca.pem` means cfssl, `ca.crt` means etcd), cfssl otherwise.
    pub fn detect(dir: &Path) -> Naming {
        if dir.join(Naming::Cfssl.cert_file("ca")).exists() {
            Naming::Cfssl
        } else if dir.join(Naming::Etcd.cert_file("ca")).exists() {
            Naming::Etcd
        } else {
            Naming::Cfssl
        }
    }
}

/// True when `name` can name output files (`NAME.pem`, `NAME-key.pem`): letters, digits,
/// `-`, `_`, `.`, `@`, not starting with a dot, and not `ca` (the CA's files).
pub fn valid_stem(name: &str) -> bool {
    !name.is_empty()
        && name != "ca"
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

/// One file to write.
#[derive(Debug, Clone)]
pub struct Output {
    /// Where to write it.
    pub path: PathBuf,
    /// Its content.
    pub contents: String,
    /// True for private keys: created with mode 0600.
    pub private: bool,
}

impl Output {
    /// A public file (certificate, config): mode 0644.
    pub fn public(path: PathBuf, contents: String) -> Self {
        Output {
            path,
            contents,
            private: false,
        }
    }

    /// A private key: mode 0600.
    pub fn private(path: PathBuf, contents: String) -> Self {
        Output {
            path,
            contents,
            private: true,
        }
    }
}

/// Fails with [`PkiError::Exists`] listing every output that already exists, unless `force`.
///
/// # Errors
/// [`PkiError::Exists`].
pub fn ensure_absent(outputs: &[Output], force: bool) -> Result<(), PkiError> {
    if force {
        return Ok(());
    }
    let paths: Vec<PathBuf> = outputs
        .iter()
        .filter(|o| o.path.exists())
        .map(|o| o.path.clone())
        .collect();
    if paths.is_empty() {
        Ok(())
    } else {
        Err(PkiError::Exists { paths })
    }
}

/// Writes every output after checking (unless `force`) that none exists yet, so a refused run
/// writes nothing at all. Parent directories are created.
///
/// # Errors
/// [`PkiError::Exists`] or the first I/O error, naming the file.
pub fn write_all(outputs: &[Output], force: bool) -> Result<(), PkiError> {
    ensure_absent(outputs, force)?;
    for out in outputs {
        write_one(out)?;
    }
    Ok(())
}

fn write_one(out: &Output) -> Result<(), PkiError> {
    let dir = match out.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| PkiError::io(&dir, e))?;
    let file_name = out
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mode = if out.private { 0o600 } else { 0o644 };
    let result = (|| {
        let mut f = open_new(&tmp, mode)?;
        f.write_all(out.contents.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &out.path)
    })();
    if let Err(e) = result {
        // Best effort: the temporary file is ours and useless now.
        let _ = fs::remove_file(&tmp);
        return Err(PkiError::io(&out.path, e));
    }
    Ok(())
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // A stale temporary file from a crashed run would keep its old mode: remove it first.
    let _ = fs::remove_file(path);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: u32) -> std::io::Result<fs::File> {
    let _ = fs::remove_file(path);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// The unix permission bits of `path`, if it exists and the platform has them.
pub fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The kind of private key encoding found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// `BEGIN PRIVATE KEY` (PKCS#8), what kvd writes and OpenSSL 3 writes.
    Pkcs8,
    /// `BEGIN RSA PRIVATE KEY` (PKCS#1), what OpenSSL 1.x writes.
    Pkcs1,
    /// `BEGIN EC PRIVATE KEY` (SEC1), what cfssl writes.
    Sec1,
}

impl KeyEncoding {
    /// A short name for messages.
    pub fn describe(self) -> &'static str {
        match self {
            KeyEncoding::Pkcs8 => "PKCS#8",
            KeyEncoding::Pkcs1 => "PKCS#1",
            KeyEncoding::Sec1 => "SEC1",
        }
    }
}

/// What a PEM (or DER) file holds.
#[derive(Debug, Default)]
pub struct PemContents {
    /// Certificates, in file order.
    pub certs: Vec<CertificateDer<'static>>,
    /// Private keys, in file order.
    pub keys: Vec<(KeyEncoding, PrivateKeyDer<'static>)>,
    /// True when the file holds an encrypted private key, which etcd cannot use.
    pub encrypted_key: bool,
    /// True when the file holds a certificate signing request.
    pub csr: bool,
}

/// Reads `path` as PEM; a file without any PEM section is taken as one DER certificate
/// (`openssl x509 -outform der`).
///
/// # Errors
/// [`PkiError::Io`] when the file cannot be read, [`PkiError::BadFile`] when it is not PEM
/// and not DER either.
pub fn read_pem(path: &Path) -> Result<PemContents, PkiError> {
    let bytes = fs::read(path).map_err(|e| PkiError::io(path, e))?;
    parse_pem(&bytes).map_err(|detail| PkiError::bad_file(path, detail))
}

/// Parses the bytes of a PEM or DER file; see [`read_pem`].
///
/// # Errors
/// A message describing why the bytes are neither PEM nor a DER certificate.
pub fn parse_pem(bytes: &[u8]) -> Result<PemContents, String> {
    let mut out = PemContents {
        encrypted_key: pem::has_encrypted_key(bytes),
        ..PemContents::default()
    };
    let sections = pem::sections(bytes).map_err(|e| format!("not a valid PEM file: {e}"))?;
    for (kind, der) in &sections {
        match kind {
            SectionKind::Certificate => out.certs.push(CertificateDer::from(der.clone())),
            SectionKind::Csr => out.csr = true,
            _ => {
                if let Some(key) = pem::private_key(*kind, der) {
                    let encoding = match key {
                        PrivateKeyDer::Pkcs1(_) => KeyEncoding::Pkcs1,
                        PrivateKeyDer::Sec1(_) => KeyEncoding::Sec1,
                        _ => KeyEncoding::Pkcs8,
                    };
                    out.keys.push((encoding, key));
                }
            }
        }
    }
    if sections.is_empty() && !out.encrypted_key && !pem::contains(bytes, b"-----BEGIN") {
        // No PEM at all: a DER certificate starts with a SEQUENCE tag.
        if bytes.first() == Some(&0x30) && x509_parser::parse_x509_certificate(bytes).is_ok() {
            out.certs.push(CertificateDer::from(bytes.to_vec()));
        } else {
            return Err("neither PEM (-----BEGIN ...) nor a DER certificate".to_string());
        }
    }
    Ok(out)
}

/// Reads the certificates of `path`, failing when there are none.
///
/// # Errors
/// [`PkiError::BadFile`] naming the file and what it holds instead.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let contents = read_pem(path)?;
    if contents.certs.is_empty() {
        let what = if !contents.keys.is_empty() || contents.encrypted_key {
            " (it holds a private key: did you swap the certificate and key files?)"
        } else if contents.csr {
            " (it holds a certificate signing request, not a signed certificate)"
        } else {
            ""
        };
        return Err(PkiError::bad_file(
            path,
            format!("no certificate found{what}"),
        ));
    }
    Ok(contents.certs)
}

/// Reads the one private key of `path`.
///
/// # Errors
/// [`PkiError::BadFile`] when the file holds no key, an encrypted key, or several keys.
pub fn read_key(path: &Path) -> Result<(KeyEncoding, PrivateKeyDer<'static>), PkiError> {
    let mut contents = read_pem(path)?;
    if contents.encrypted_key {
        return Err(PkiError::bad_file(
            path,
            "the private key is encrypted; etcd and kvd need an unencrypted key (openssl pkey -in KEY -out KEY.plain)",
        ));
    }
    match contents.keys.len() {
        1 => Ok(contents.keys.remove(0)),
        0 => {
            let what = if contents.certs.is_empty() {
                ""
            } else {
                " (it holds a certificate: did you swap the certificate and key files?)"
            };
            Err(PkiError::bad_file(
                path,
                format!("no private key found{what}"),
            ))
        }
        n => Err(PkiError::bad_file(
            path,
            format!("{n} private keys found; give a file with exactly one"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_conventions() {
        assert_eq!(Naming::Cfssl.cert_file("ca"), "ca.pem");
        assert_eq!(Naming::Cfssl.key_file("ca"), "ca-key.pem");
        assert_eq!(Naming::Etcd.cert_file("infra1"), "infra1.crt");
        assert_eq!(Naming::Etcd.key_file("infra1"), "infra1.key");
    }

    #[test]
    fn stems_are_checked() {
        assert!(valid_stem("infra1"));
        assert!(valid_stem("alice@example.com"));
        assert!(!valid_stem("ca"));
        assert!(!valid_stem("../x"));
        assert!(!valid_stem(".hidden"));
        assert!(!valid_stem("a b"));
        assert!(!valid_stem(""));
    }

    #[test]
    fn detect_follows_existing_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Naming::detect(dir.path()), Naming::Cfssl);
        fs::write(dir.path().join("ca.crt"), "x").expect("write");
        assert_eq!(Naming::detect(dir.path()), Naming::Etcd);
        fs::write(dir.path().join("ca.pem"), "x").expect("write");
        assert_eq!(Naming::detect(dir.path()), Naming::Cfssl);
    }

    #[test]
    fn write_refuses_existing_then_forces_with_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("a-key.pem");
        let cert = dir.path().join("a.pem");
        let outs = vec![
            Output::public(cert.clone(), "cert".into()),
            Output::private(key.clone(), "key".into()),
        ];
        write_all(&outs, false).expect("first write");
        assert_eq!(mode_of(&key), Some(0o600));
        assert_eq!(mode_of(&cert), Some(0o644));
        let outs2 = vec![
            Output::public(cert.clone(), "cert2".into()),
            Output::private(key.clone(), "key2".into()),
        ];
        let err = write_all(&outs2, false).expect_err("must refuse");
        let msg = err.to_string();
        assert!(
            msg.contains("a.pem") && msg.contains("a-key.pem") && msg.contains("--force"),
            "{msg}"
        );
        assert_eq!(fs::read_to_string(&cert).expect("read"), "cert");
        write_all(&outs2, true).expect("forced write");
        assert_eq!(fs::read_to_string(&key).expect("read"), "key2");
        assert_eq!(mode_of(&key), Some(0o600));
    }

    #[test]
    fn parse_rejects_non_pem() {
        assert!(parse_pem(b"hello").is_err());
        let enc =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let c = parse_pem(enc).expect("parses");
        assert!(c.encrypted_key);
    }
}
