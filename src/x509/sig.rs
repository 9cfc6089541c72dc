//! Handshake signatures (CertificateVerify, ServerKeyExchange) of a peer's certificate.
//! rustls' own helpers (webpki) check them for v3 certificates; for X.509 v1 certificates,
//! which webpki refuses to parse, kvd checks them with the certificate's raw public key and
//! rustls' (ring) [`WebPkiSupportedAlgorithms`], matched on the key's algorithm identifier.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, DigitallySignedStruct, Error, PeerMisbehaved, SignatureScheme};
use rustls_pki_types::CertificateDer;

use super::cert;

/// Verifies `dss` over `message` with the public key of `cert_der`.
///
/// For TLS 1.3 only the first algorithm rustls maps to the scheme is used (the scheme pins
/// the curve and hash); for TLS 1.2 every algorithm for the scheme whose key type matches
/// the certificate's key is tried.
pub(crate) fn verify(
    message: &[u8],
    cert_der: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    if tls13 && !allowed_in_tls13(dss.scheme) {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let parsed = cert::parse(cert_der)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if cert::is_v3(&parsed) {
        return if tls13 {
            rustls::crypto::verify_tls13_signature(message, cert_der, dss, algs)
        } else {
            rustls::crypto::verify_tls12_signature(message, cert_der, dss, algs)
        };
    }
    let (key_alg, key) = split_spki(parsed.public_key().raw)
        .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let candidates = algs
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, a)| *a)
        .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    let candidates = if tls13 {
        &candidates[..candidates.len().min(1)]
    } else {
        candidates
    };
    let mut mismatch = None;
    for alg in candidates {
        if alg.public_key_alg_id().as_ref() != key_alg {
            mismatch = Some(alg.signature_alg_id().as_ref().to_vec());
            continue;
        }
        return match alg.verify_signature(key, message, dss.signature()) {
            Ok(()) => Ok(HandshakeSignatureValid::assertion()),
            Err(_) => Err(Error::InvalidCertificate(CertificateError::BadSignature)),
        };
    }
    Err(Error::InvalidCertificate(
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
            signature_algorithm_id: mismatch.unwrap_or_default(),
            public_key_algorithm_id: key_alg.to_vec(),
        },
    ))
}

/// The schemes TLS 1.3 allows (RFC 8446 section 4.2.3: no PKCS#1 v1.5, no SHA-1).
fn allowed_in_tls13(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::ECDSA_NISTP256_SHA256
            | SignatureScheme::ECDSA_NISTP384_SHA384
            | SignatureScheme::ECDSA_NISTP521_SHA512
            | SignatureScheme::RSA_PSS_SHA256
            | SignatureScheme::RSA_PSS_SHA384
            | SignatureScheme::RSA_PSS_SHA512
            | SignatureScheme::ED25519
            | SignatureScheme::ED448
    )
}

/// One DER element: (tag, contents, rest). Only definite lengths (DER).
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// Splits a SubjectPublicKeyInfo into the contents of its AlgorithmIdentifier (what
/// rustls' `public_key_alg_id()` returns) and the key bits.
fn split_spki(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, _) = tlv(spki)?;
    if tag != 0x30 {
        return None;
    }
    let (alg_tag, alg, rest) = tlv(body)?;
    let (bits_tag, bits, _) = tlv(rest)?;
    if alg_tag != 0x30 || bits_tag != 0x03 {
        return None;
    }
    // The first byte of a BIT STRING counts unused bits; keys use whole bytes.
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then_some((alg, key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(
            tlv(&[0x04, 0x02, 1, 2, 9]),
            Some((4, &[1u8, 2][..], &[9u8][..]))
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        assert_eq!(tlv(&long).unwrap().1.len(), 0x80);
        assert_eq!(tlv(&[0x04, 0x05, 1]), None);
    }

    #[test]
    fn spki_of_a_generated_key_splits() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
        let c = params.self_signed(&key).unwrap();
        let parsed = cert::parse(c.der()).unwrap();
        let (alg, bits) = split_spki(parsed.public_key().raw).unwrap();
        assert_eq!(bits, key.public_key_raw());
        let p256 = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all
            .iter()
            .any(|a| a.public_key_alg_id().as_ref() == alg);
        assert!(p256);
    }
}
