//! Reading TLS files: PEM certificate chains and CA bundles, private keys in PKCS#1
//! (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and PKCS#8 (`PRIVATE KEY`), and CRLs (PEM
//! or DER). Every error names the file, the setting and the problem.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::pem::SectionKind;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{FileProblem, TlsError};
use super::setting::Named;
use crate::x509::cert;
use crate::x509::pem::{self, contains};

/// A file problem as a [`TlsError`].
pub(crate) fn file_error(setting: Named, path: &Path, problem: FileProblem) -> TlsError {
    TlsError::File {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        problem,
    }
}

/// Reads the whole file.
pub(crate) fn read(setting: Named, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        let problem = if e.kind() == std::io::ErrorKind::NotFound {
            FileProblem::Missing
        } else {
            FileProblem::Unreadable(e)
        };
        file_error(setting, path, problem)
    })
}

/// Every PEM block of a file, in order.
fn pem_blocks(
    setting: Named,
    path: &Path,
    bytes: &[u8],
    expected: &'static str,
) -> Result<Vec<(SectionKind, Vec<u8>)>, TlsError> {
    let out =
        pem::sections(bytes).map_err(|e| file_error(setting, path, FileProblem::BadPem(e)))?;
    if out.is_empty() && !contains(bytes, b"-----BEGIN ") {
        return Err(file_error(setting, path, FileProblem::NotPem { expected }));
    }
    Ok(out)
}

/// What a file holds, for "no certificate in the file (it holds ...)".
fn describe(blocks: &[(SectionKind, Vec<u8>)], bytes: &[u8]) -> String {
    if blocks.is_empty() {
        if contains(bytes, b"ENCRYPTED PRIVATE KEY") {
            return "an encrypted private key".to_string();
        }
        return "no PEM block kvd knows".to_string();
    }
    let names: Vec<&str> = blocks
        .iter()
        .map(|(k, _)| match k {
            SectionKind::Certificate => "a certificate",
            SectionKind::PublicKey => "a public key",
            SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
                "a private key"
            }
            SectionKind::Crl => "a certificate revocation list",
            SectionKind::Csr => "a certificate request (sign it first)",
            _ => "an unexpected PEM block",
        })
        .collect();
    let mut unique: Vec<&str> = Vec::new();
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    unique.join(" and ")
}

/// The certificates of a PEM file (a chain, leaf first, or a CA bundle), each checked to
/// parse. `empty` is the problem to report when there is none.
fn certificates_with(
    setting: Named,
    path: &Path,
    empty: fn(String) -> FileProblem,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(setting, path)?;
    let blocks = pem_blocks(setting, path, &bytes, "CERTIFICATE")?;
    let mut certs = Vec::new();
    for (kind, der) in &blocks {
        if *kind == SectionKind::Certificate {
            if let Err(reason) = cert::parse(der) {
                let index = certs.len() + 1;
                return Err(file_error(
                    setting,
                    path,
                    FileProblem::BadCertificate { index, reason },
                ));
            }
            certs.push(CertificateDer::from(der.clone()));
        }
    }
    if certs.is_empty() {
        return Err(file_error(setting, path, empty(describe(&blocks, &bytes))));
    }
    Ok(certs)
}

/// A certificate chain (leaf first) from a PEM file.
pub(crate) fn certificates(
    setting: Named,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates_with(setting, path, |found| FileProblem::NoCertificate { found })
}

/// The certificates of a CA bundle.
pub(crate) fn ca_bundle(
    setting: Named,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates_with(setting, path, |found| FileProblem::EmptyBundle { found })
}

/// The (first) private key of a PEM file.
pub(crate) fn private_key(setting: Named, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(setting, path)?;
    if pem::has_encrypted_key(&bytes) {
        return Err(file_error(setting, path, FileProblem::EncryptedKey));
    }
    let blocks = pem_blocks(setting, path, &bytes, "PRIVATE KEY")?;
    if let Some(key) = blocks
        .iter()
        .find_map(|(kind, der)| pem::private_key(*kind, der))
    {
        return Ok(key);
    }
    Err(file_error(
        setting,
        path,
        FileProblem::NoKey {
            found: describe(&blocks, &bytes),
        },
    ))
}

/// The private key of a PEM file, loaded for signing by `provider`.
pub(crate) fn signing_key(
    provider: &CryptoProvider,
    setting: Named,
    path: &Path,
) -> Result<Arc<dyn SigningKey>, TlsError> {
    let der = private_key(setting, path)?;
    provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| file_error(setting, path, FileProblem::UnsupportedKey(e.to_string())))
}

/// The DER bodies of the CRLs in a file: PEM `X509 CRL` blocks, or one DER CRL (as Go's
/// `x509.ParseCRL` accepts both).
pub(crate) fn crls(setting: Named, path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let bytes = read(setting, path)?;
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes]);
    }
    let blocks = pem_blocks(setting, path, &bytes, "X509 CRL")?;
    let crls: Vec<Vec<u8>> = blocks
        .iter()
        .filter(|(k, _)| *k == SectionKind::Crl)
        .map(|(_, der)| der.clone())
        .collect();
    if crls.is_empty() {
        return Err(file_error(
            setting,
            path,
            FileProblem::BadCrl(format!(
                "no X509 CRL block in the file (it holds {})",
                describe(&blocks, &bytes)
            )),
        ));
    }
    Ok(crls)
}

/// Loads a certificate chain and its key, checking that they belong together.
pub(crate) fn certified_key(
    provider: &CryptoProvider,
    cert_setting: Named,
    cert_path: &Path,
    key_setting: Named,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(cert_setting, cert_path)?;
    let key = signing_key(provider, key_setting, key_path)?;
    let leaf = cert::parse(&chain[0]).map_err(|reason| {
        file_error(
            cert_setting,
            cert_path,
            FileProblem::BadCertificate { index: 1, reason },
        )
    })?;
    if let Some(spki) = key.public_key() {
        if spki.as_ref() != leaf.public_key().raw {
            return Err(TlsError::KeyMismatch {
                cert_setting: cert_setting.to_string(),
                cert_path: cert_path.to_path_buf(),
                key_setting: key_setting.to_string(),
                key_path: key_path.to_path_buf(),
            });
        }
    }
    Ok(CertifiedKey::new(chain, key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tls::setting::Setting;
    use crate::tls::ListenerKind;
    use crate::x509::sig;

    fn named() -> Named {
        Setting::KeyFile.of(ListenerKind::Peer)
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn keys_in_each_format_and_the_problems_users_hit() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let pkcs8 = write(&dir, "k8.pem", key.serialize_pem().as_bytes());
        assert!(matches!(
            private_key(named(), &pkcs8).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
        // The same key as SEC1: the ECPrivateKey inside the PKCS#8 envelope, after the
        // EC PARAMETERS block `openssl ecparam -genkey` writes first.
        let der = key.serialize_der();
        let (_, info, _) = sig::tlv(&der).unwrap();
        let (_, _, rest) = sig::tlv(info).unwrap(); // version
        let (_, _, rest) = sig::tlv(rest).unwrap(); // algorithm
        let (_, sec1, _) = sig::tlv(rest).unwrap(); // privateKey
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            pem_text("EC PRIVATE KEY", sec1)
        );
        let sec1_file = write(&dir, "sec1.pem", text.as_bytes());
        let provider = rustls::crypto::ring::default_provider();
        assert!(signing_key(&provider, named(), &sec1_file).is_ok());

        let enc = write(
            &dir,
            "enc.pem",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let e = private_key(named(), &enc).unwrap_err().to_string();
        assert!(e.contains("encrypted"), "{e}");
        let cert_only = write(
            &dir,
            "cert.pem",
            rcgen::CertificateParams::new(vec!["a".to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .pem()
                .as_bytes(),
        );
        let e = private_key(named(), &cert_only).unwrap_err().to_string();
        assert!(
            e.starts_with("--peer-key-file / peer-transport-security.key-file"),
            "{e}"
        );
        assert!(
            e.contains("no private key in the file (it holds a certificate"),
            "{e}"
        );
        let der_file = write(&dir, "der.key", &der);
        let e = private_key(named(), &der_file).unwrap_err().to_string();
        assert!(e.contains("not a PEM file"), "{e}");
        let e = private_key(named(), &dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn crls_are_read_as_pem_or_der() {
        let dir = tempfile::tempdir().unwrap();
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let p = write(&dir, "crl.der", &der);
        assert_eq!(crls(named(), &p).unwrap(), vec![der.clone()]);
        let p = write(&dir, "crl.pem", pem_text("X509 CRL", &der).as_bytes());
        assert_eq!(crls(named(), &p).unwrap(), vec![der]);
        let p = write(
            &dir,
            "empty.pem",
            b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        );
        let e = crls(named(), &p).unwrap_err().to_string();
        assert!(e.contains("no X509 CRL block"), "{e}");
    }

    fn pem_text(label: &str, der: &[u8]) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in der.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("-----BEGIN {label}-----\n{out}\n-----END {label}-----\n")
    }
}
