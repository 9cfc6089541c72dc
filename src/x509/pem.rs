//! Scanning PEM files: the sections they hold and what kind of private key a section is.
//! The callers word their own errors (the TLS layer names the setting, `kvd pki` the file).

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

/// Every PEM section of `bytes` that rustls knows, in file order (unknown sections such as
/// `EC PARAMETERS` are skipped).
///
/// # Errors
/// The PEM parser's message for a damaged section.
pub(crate) fn sections(bytes: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes)
        .map(|s| s.map_err(|e| e.to_string()))
        .collect()
}

/// The private key a section holds (PKCS#8, PKCS#1 or SEC1), if it is one.
pub(crate) fn private_key(kind: SectionKind, der: &[u8]) -> Option<PrivateKeyDer<'static>> {
    Some(match kind {
        SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec())),
        SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der.to_vec())),
        SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der.to_vec())),
        _ => return None,
    })
}

/// True when `bytes` hold an encrypted private key (PKCS#8 or OpenSSL's legacy
/// `Proc-Type: 4,ENCRYPTED`), which neither etcd nor kvd can use.
pub(crate) fn has_encrypted_key(bytes: &[u8]) -> bool {
    contains(bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(bytes, b"Proc-Type: 4,ENCRYPTED")
}

/// True when `bytes` contain `needle`.
pub(crate) fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_skip_unknown_blocks_and_keys_are_classified() {
        let text = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n-----BEGIN EC PRIVATE KEY-----\nAAEC\n-----END EC PRIVATE KEY-----\n";
        let found = sections(text).expect("pem");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, SectionKind::EcPrivateKey);
        assert!(matches!(
            private_key(found[0].0, &found[0].1),
            Some(PrivateKeyDer::Sec1(_))
        ));
        assert!(private_key(SectionKind::Certificate, b"x").is_none());
        assert!(has_encrypted_key(b"Proc-Type: 4,ENCRYPTED"));
        assert!(!has_encrypted_key(text));
    }
}
