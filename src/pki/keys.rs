//! Private keys: generating new ones (`--key-type`) and loading existing ones in any of the
//! encodings the guides produce (PKCS#8 from kvd and OpenSSL 3, PKCS#1 from OpenSSL 1.x,
//! SEC1 from cfssl) so that a CA made elsewhere can sign kvd's certificates.
//!
//! Loaded keys sign through rustls' ring provider; new ECDSA and Ed25519 keys come from rcgen.
//! ring cannot generate RSA keys, so RSA generation runs `openssl genpkey` (the only place
//! where kvd calls an external program) and says so when openssl is missing.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm};
use rustls::SignatureScheme;
use rustls_pki_types::PrivateKeyDer;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::files::{self, KeyEncoding};
use super::PkiError;

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256 (the default, as in cfssl's examples).
    #[value(name = "ecdsa-p256", alias = "p256", alias = "ecdsa")]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    #[value(name = "ecdsa-p384", alias = "p384")]
    EcdsaP384,
    /// Ed25519 (not readable by cfssl).
    #[value(name = "ed25519")]
    Ed25519,
    /// RSA 2048 bits (needs the openssl program to generate).
    #[value(name = "rsa2048", alias = "rsa")]
    Rsa2048,
    /// RSA 3072 bits (needs the openssl program to generate).
    #[value(name = "rsa3072")]
    Rsa3072,
    /// RSA 4096 bits (needs the openssl program to generate).
    #[value(name = "rsa4096")]
    Rsa4096,
}

impl KeyType {
    /// True for the RSA types.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }
}

/// Generates a new key pair of type `kt`.
///
/// # Errors
/// [`PkiError::Crypto`] when generation fails, e.g. RSA without the openssl program.
pub fn generate(kt: KeyType) -> Result<KeyPair, PkiError> {
    let alg: &'static SignatureAlgorithm = match kt {
        KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        KeyType::Rsa2048 => return generate_rsa(2048),
        KeyType::Rsa3072 => return generate_rsa(3072),
        KeyType::Rsa4096 => return generate_rsa(4096),
    };
    KeyPair::generate_for(alg).map_err(|e| PkiError::Crypto(format!("key generation failed: {e}")))
}

fn generate_rsa(bits: u32) -> Result<KeyPair, PkiError> {
    let unavailable = |why: String| {
        PkiError::Crypto(format!(
            "RSA keys are generated with the openssl program, which {why}; install openssl or use --key-type ecdsa-p256"
        ))
    };
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
        .arg(format!("rsa_keygen_bits:{bits}"))
        .output()
        .map_err(|e| unavailable(format!("could not be run ({e})")))?;
    if !out.status.success() {
        return Err(unavailable(format!(
            "failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let pem = String::from_utf8(out.stdout)
        .map_err(|_| unavailable("printed something that is not PEM".to_string()))?;
    KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| PkiError::Crypto(format!("openssl's RSA key could not be loaded: {e}")))
}

/// A private key loaded from a file, usable as a signer for rcgen (to sign certificates with
/// a CA key) and comparable with a certificate's public key.
#[derive(Debug)]
pub struct PrivateKey {
    signer: Arc<dyn rustls::sign::SigningKey>,
    scheme: SignatureScheme,
    alg: &'static SignatureAlgorithm,
    public_key: Vec<u8>,
    der: PrivateKeyDer<'static>,
    /// How the key was encoded in its file.
    pub encoding: KeyEncoding,
    /// A description such as `ECDSA P-256` or `RSA 2048`.
    pub description: String,
}

impl PrivateKey {
    /// Loads the single private key in `path`.
    ///
    /// # Errors
    /// [`PkiError::BadFile`] naming the file when it holds no usable key.
    pub fn load(path: &Path) -> Result<PrivateKey, PkiError> {
        let (encoding, der) = files::read_key(path)?;
        PrivateKey::from_der(encoding, der).map_err(|detail| PkiError::bad_file(path, detail))
    }

    /// Loads a key from its DER form.
    ///
    /// # Errors
    /// A message saying which key kinds are supported.
    pub fn from_der(
        encoding: KeyEncoding,
        der: PrivateKeyDer<'static>,
    ) -> Result<PrivateKey, String> {
        let unsupported = |e: rustls::Error| {
            format!("unsupported or damaged {} private key ({e}); kvd reads RSA (2048 bits or more), ECDSA P-256/P-384 and Ed25519 keys", encoding.describe())
        };
        let signer = rustls::crypto::ring::sign::any_supported_type(&der).map_err(unsupported)?;
        let candidates: [(SignatureScheme, &'static SignatureAlgorithm, &str); 4] = [
            (
                SignatureScheme::ECDSA_NISTP256_SHA256,
                &rcgen::PKCS_ECDSA_P256_SHA256,
                "ECDSA P-256",
            ),
            (
                SignatureScheme::ECDSA_NISTP384_SHA384,
                &rcgen::PKCS_ECDSA_P384_SHA384,
                "ECDSA P-384",
            ),
            (SignatureScheme::ED25519, &rcgen::PKCS_ED25519, "Ed25519"),
            (
                SignatureScheme::RSA_PKCS1_SHA256,
                &rcgen::PKCS_RSA_SHA256,
                "RSA",
            ),
        ];
        let (scheme, alg, name) = candidates
            .into_iter()
            .find(|(scheme, _, _)| signer.choose_scheme(&[*scheme]).is_some())
            .ok_or_else(|| format!("unsupported {} private key type", encoding.describe()))?;
        let spki = signer
            .public_key()
            .ok_or_else(|| "the public key cannot be derived from this private key".to_string())?;
        let (_, parsed) = SubjectPublicKeyInfo::from_der(spki.as_ref())
            .map_err(|e| format!("cannot read the key's public part: {e}"))?;
        let public_key = parsed.subject_public_key.data.to_vec();
        let description = if scheme == SignatureScheme::RSA_PKCS1_SHA256 {
            format!("RSA {}", super::certinfo::rsa_bits(&parsed))
        } else {
            name.to_string()
        };
        Ok(PrivateKey {
            signer,
            scheme,
            alg,
            public_key,
            der,
            encoding,
            description,
        })
    }

    /// The raw public key bits (the BIT STRING of a SubjectPublicKeyInfo), to compare with a
    /// certificate's.
    pub fn public_key_bits(&self) -> &[u8] {
        &self.public_key
    }

    /// The key in DER form, for building a rustls client identity.
    pub fn der(&self) -> PrivateKeyDer<'static> {
        self.der.clone_key()
    }
}

impl PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

impl rcgen::SigningKey for PrivateKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signer = self
            .signer
            .choose_scheme(&[self.scheme])
            .ok_or(rcgen::Error::RemoteKeyError)?;
        signer.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// Loads a just-generated key pair back as a [`PrivateKey`] (for signing with a new CA).
///
/// # Errors
/// [`PkiError::Crypto`] if the generated key cannot be read back, which would be a bug.
pub fn reload(kp: &KeyPair) -> Result<PrivateKey, PkiError> {
    let der = PrivateKeyDer::Pkcs8(kp.serialize_der().into());
    PrivateKey::from_der(KeyEncoding::Pkcs8, der)
        .map_err(|e| PkiError::Crypto(format!("a generated key could not be read back: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_reload_with_same_public_key() {
        for kt in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Ed25519] {
            let kp = generate(kt).expect("generate");
            let pk = reload(&kp).expect("reload");
            assert_eq!(pk.public_key_bits(), kp.public_key_raw(), "{kt:?}");
            assert_eq!(pk.alg, kp.algorithm(), "{kt:?}");
        }
    }

    #[test]
    fn written_keys_read_back_as_pkcs8() {
        let kp = generate(KeyType::EcdsaP256).expect("generate");
        let pem = kp.serialize_pem();
        let mut parsed = files::parse_pem(pem.as_bytes()).expect("pem");
        assert_eq!(parsed.keys.len(), 1);
        let (enc, der) = parsed.keys.remove(0);
        assert_eq!(enc, KeyEncoding::Pkcs8);
        let pk = PrivateKey::from_der(enc, der).expect("load");
        assert_eq!(pk.description, "ECDSA P-256");
        assert_eq!(pk.public_key_bits(), kp.public_key_raw());
    }
}
