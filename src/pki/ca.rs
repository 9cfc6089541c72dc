//! The certificate authority: creating a new one (`kvd pki init`, `kvd pki cluster`) and
//! loading an existing one, made by kvd, cfssl or openssl, to sign new certificates with.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;

use super::certinfo::CertInfo;
use super::files;
use super::keys::{self, KeyType, PrivateKey};
use super::times::{self, Window};
use super::PkiError;

/// Fills `buf` with random bytes from the operating system (through rustls' ring provider).
///
/// # Errors
/// [`PkiError::Crypto`] when the system has no randomness to give.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), PkiError> {
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| PkiError::Crypto("the system random number generator failed".to_string()))
}

/// A random positive 128-bit serial number, as RFC 5280 recommends (unique per CA).
///
/// # Errors
/// [`PkiError::Crypto`] when randomness is unavailable.
pub fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    // Positive and without a leading zero byte, so the DER INTEGER is exactly 16 bytes.
    b[0] = (b[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&b))
}

/// The default CA common name: `kvd CA` plus a random tag, so that two CAs made by kvd can be
/// told apart in error messages ("issued by kvd CA 1a2b3c4d, but --cacert is kvd CA 5e6f7a8b").
///
/// # Errors
/// [`PkiError::Crypto`] when randomness is unavailable.
pub fn default_common_name() -> Result<String, PkiError> {
    let mut b = [0u8; 4];
    random_bytes(&mut b)?;
    Ok(format!(
        "kvd CA {}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

/// A newly created CA, not yet written.
#[derive(Debug)]
pub struct NewCa {
    /// The self-signed CA certificate, PEM.
    pub cert_pem: String,
    /// The CA's private key, PEM (PKCS#8).
    pub key_pem: String,
}

/// Creates a self-signed CA certificate and key.
///
/// # Errors
/// [`PkiError::Crypto`] when key generation or signing fails.
pub fn create(common_name: &str, key_type: KeyType, window: &Window) -> Result<NewCa, PkiError> {
    let key = keys::generate(key_type)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "kvd");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = window.not_before;
    params.not_after = window.not_after;
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key)?;
    Ok(NewCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A loaded CA, ready to sign.
#[derive(Debug)]
pub struct Ca {
    /// The CA certificate file.
    pub cert_path: PathBuf,
    /// The CA certificate.
    pub cert: CertInfo,
    /// The CA key.
    pub key: PrivateKey,
}

impl Ca {
    /// Loads the CA certificate (the first certificate of `cert_path`) and its key, and checks
    /// that they belong together, that the certificate is a CA and that it has not expired.
    ///
    /// # Errors
    /// [`PkiError`] naming the file and what to do.
    pub fn load(cert_path: &Path, key_path: &Path, now: OffsetDateTime) -> Result<Ca, PkiError> {
        let certs = files::read_certs(cert_path)?;
        let cert =
            CertInfo::parse(certs[0].clone()).map_err(|e| PkiError::bad_file(cert_path, e))?;
        let key = PrivateKey::load(key_path)?;
        Ca::from_parts(cert_path, key_path, cert, key, now)
    }

    /// Builds a CA from a certificate and key already in memory (a CA just created).
    ///
    /// # Errors
    /// As [`Ca::load`].
    pub fn from_new(
        new: &NewCa,
        cert_path: &Path,
        key_path: &Path,
        now: OffsetDateTime,
    ) -> Result<Ca, PkiError> {
        let parsed = files::parse_pem(new.cert_pem.as_bytes())
            .map_err(|e| PkiError::Crypto(format!("new CA certificate unreadable: {e}")))?;
        let der = parsed
            .certs
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::Crypto("new CA certificate missing".to_string()))?;
        let cert = CertInfo::parse(der).map_err(PkiError::Crypto)?;
        let kp = KeyPair::from_pem(&new.key_pem)?;
        let key = keys::reload(&kp)?;
        Ca::from_parts(cert_path, key_path, cert, key, now)
    }

    fn from_parts(
        cert_path: &Path,
        key_path: &Path,
        cert: CertInfo,
        key: PrivateKey,
        now: OffsetDateTime,
    ) -> Result<Ca, PkiError> {
        if key.public_key_bits() != cert.public_key.as_slice() {
            return Err(PkiError::KeyMismatch {
                key: key_path.to_path_buf(),
                cert: cert_path.to_path_buf(),
            });
        }
        if !cert.can_sign() {
            return Err(PkiError::bad_file(
                cert_path,
                format!(
                    "{} is not a CA certificate (no basicConstraints CA:TRUE); give the CA with --ca-cert/--ca-key or create one with `kvd pki init`",
                    cert.display_name()
                ),
            ));
        }
        if let Some(ku) = &cert.key_usage {
            if !ku.contains(&"keyCertSign") {
                return Err(PkiError::bad_file(
                    cert_path,
                    "the CA certificate's keyUsage lacks keyCertSign, so nothing it signs would be accepted",
                ));
            }
        }
        if now > cert.not_after {
            return Err(PkiError::bad_file(
                cert_path,
                format!(
                    "the CA certificate expired on {}; create a new CA (`kvd pki init --force`) and reissue every certificate",
                    times::rfc3339(cert.not_after)
                ),
            ));
        }
        Ok(Ca {
            cert_path: cert_path.to_path_buf(),
            cert,
            key,
        })
    }

    /// Signs `params` for `subject_key` and returns the certificate in PEM.
    ///
    /// # Errors
    /// [`PkiError::Crypto`] when signing fails or the CA's name cannot be reproduced exactly
    /// (verifiers match an issuer by the exact bytes of its name).
    pub fn sign(
        &self,
        params: &CertificateParams,
        subject_key: &KeyPair,
    ) -> Result<String, PkiError> {
        let issuer = Issuer::from_ca_cert_der(&self.cert.der, &self.key).map_err(|e| {
            PkiError::bad_file(
                &self.cert_path,
                format!("cannot use this CA certificate to sign: {e}"),
            )
        })?;
        let cert = params.signed_by(subject_key, &issuer)?;
        let info = CertInfo::parse(cert.der().clone()).map_err(PkiError::Crypto)?;
        if info.issuer_raw != self.cert.subject_raw {
            return Err(PkiError::bad_file(
                &self.cert_path,
                "the CA's subject name uses an encoding kvd cannot reproduce byte for byte; sign with a CA made by `kvd pki init`",
            ));
        }
        Ok(cert.pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn new_ca_is_a_ca_and_loads() {
        let now = OffsetDateTime::now_utc();
        let window = Window {
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(10),
            explicit_end: false,
        };
        let new = create("test CA", KeyType::EcdsaP256, &window).expect("create");
        let ca =
            Ca::from_new(&new, Path::new("ca.pem"), Path::new("ca-key.pem"), now).expect("load");
        assert!(ca.cert.is_ca());
        assert_eq!(ca.cert.common_names, vec!["test CA".to_string()]);
        let ku = ca.cert.key_usage.clone().expect("key usage");
        assert!(ku.contains(&"keyCertSign"));
        assert!(ca.cert.is_self_issued());
        ca.cert.verify_signed_by(&ca.cert).expect("self-signed");
    }

    #[test]
    fn serials_are_sixteen_positive_bytes() {
        let s = random_serial().expect("serial").to_bytes();
        assert_eq!(s.len(), 16);
        assert!(s[0] & 0x80 == 0 && s[0] != 0);
    }
}
