//! JSON Web Tokens for `--auth-token jwt,pub-key=FILE,priv-key=FILE,sign-method=ALG[,ttl=D]`.
//!
//! A token carries the user name, the auth revision it was issued at and an expiry, signed with
//! the configured key: `{"alg":ALG,"typ":"JWT"}.{"exp":..,"revision":..,"username":..}`, as
//! etcd issues them. Any member with the key verifies a token alone, so tokens survive restarts
//! and leader changes; a token issued before the auth state changed is refused with "revision
//! of auth store is old" and clients authenticate again.
//!
//! Sign methods: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA (with the `ring` primitives
//! rustls already uses) and HS256/384/512 (HMAC over SHA-2 with the `priv-key` file's bytes as
//! the secret). ES512 (P-521) is not available. With only `pub-key` the member verifies tokens
//! but cannot issue them, as in etcd.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::sign::SigningKey;
use rustls::SignatureScheme;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::PrivateKeyDer;
use sha2::{Digest, Sha256, Sha384, Sha512};
use thiserror::Error;

/// etcd's default JWT lifetime.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Why the JWT settings cannot be used, or a token cannot be issued.
#[derive(Debug, Error)]
pub enum JwtError {
    /// `sign-method` missing or unknown.
    #[error("sign-method {0:?} is not a JWT signing method kvd knows (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512)")]
    SignMethod(String),
    /// Neither key file given (or no `priv-key` for an HMAC method).
    #[error("missing key data: give priv-key=FILE (and pub-key=FILE) for sign-method {0}")]
    MissingKey(String),
    /// A key file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// A key file holds no usable key for the method.
    #[error("{path}: {detail}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The public key is not the private key's.
    #[error("public and private keys don't match ({pub_key} is not the public key of {priv_key})")]
    KeyMismatch {
        /// `pub-key`.
        pub_key: PathBuf,
        /// `priv-key`.
        priv_key: PathBuf,
    },
    /// `ttl` is not a duration.
    #[error("ttl {0:?} is not a duration (e.g. 5m, 300s, 1h)")]
    Ttl(String),
    /// Issuing a token with only a public key.
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    /// The signer failed.
    #[error("signing a token failed: {0}")]
    Sign(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    RsaPss,
    Ecdsa,
    EdDsa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// A JWT `alg` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Method {
    name: &'static str,
    family: Family,
    hash: Hash,
}

const METHODS: &[Method] = &[
    Method {
        name: "HS256",
        family: Family::Hmac,
        hash: Hash::Sha256,
    },
    Method {
        name: "HS384",
        family: Family::Hmac,
        hash: Hash::Sha384,
    },
    Method {
        name: "HS512",
        family: Family::Hmac,
        hash: Hash::Sha512,
    },
    Method {
        name: "RS256",
        family: Family::Rsa,
        hash: Hash::Sha256,
    },
    Method {
        name: "RS384",
        family: Family::Rsa,
        hash: Hash::Sha384,
    },
    Method {
        name: "RS512",
        family: Family::Rsa,
        hash: Hash::Sha512,
    },
    Method {
        name: "PS256",
        family: Family::RsaPss,
        hash: Hash::Sha256,
    },
    Method {
        name: "PS384",
        family: Family::RsaPss,
        hash: Hash::Sha384,
    },
    Method {
        name: "PS512",
        family: Family::RsaPss,
        hash: Hash::Sha512,
    },
    Method {
        name: "ES256",
        family: Family::Ecdsa,
        hash: Hash::Sha256,
    },
    Method {
        name: "ES384",
        family: Family::Ecdsa,
        hash: Hash::Sha384,
    },
    Method {
        name: "EdDSA",
        family: Family::EdDsa,
        hash: Hash::Sha512,
    },
];

impl Method {
    fn scheme(self) -> Option<SignatureScheme> {
        Some(match (self.family, self.hash) {
            (Family::Rsa, Hash::Sha256) => SignatureScheme::RSA_PKCS1_SHA256,
            (Family::Rsa, Hash::Sha384) => SignatureScheme::RSA_PKCS1_SHA384,
            (Family::Rsa, Hash::Sha512) => SignatureScheme::RSA_PKCS1_SHA512,
            (Family::RsaPss, Hash::Sha256) => SignatureScheme::RSA_PSS_SHA256,
            (Family::RsaPss, Hash::Sha384) => SignatureScheme::RSA_PSS_SHA384,
            (Family::RsaPss, Hash::Sha512) => SignatureScheme::RSA_PSS_SHA512,
            (Family::Ecdsa, Hash::Sha256) => SignatureScheme::ECDSA_NISTP256_SHA256,
            (Family::Ecdsa, Hash::Sha384) => SignatureScheme::ECDSA_NISTP384_SHA384,
            (Family::EdDsa, _) => SignatureScheme::ED25519,
            _ => return None,
        })
    }

    /// Size of one ECDSA scalar in a JWT signature.
    fn ecdsa_scalar_len(self) -> usize {
        if self.hash == Hash::Sha384 {
            48
        } else {
            32
        }
    }
}

enum Keys {
    Hmac(Vec<u8>),
    Asymmetric {
        signer: Option<Arc<dyn SigningKey>>,
        /// The subjectPublicKey bits of the verifying key.
        public: Vec<u8>,
    },
}

/// The JWT method and keys of a member.
pub struct JwtKeys {
    method: Method,
    keys: Keys,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("method", &self.method.name)
            .field("ttl", &self.ttl)
            .field("can_sign", &self.can_sign())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, JwtError> {
    std::fs::read(path).map_err(|source| JwtError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn key_error(path: &Path, detail: impl Into<String>) -> JwtError {
    JwtError::Key {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The subjectPublicKey bits of a DER SubjectPublicKeyInfo.
fn spki_bits(spki: &[u8], path: &Path) -> Result<Vec<u8>, JwtError> {
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| key_error(path, format!("not a public key: {e}")))?;
    Ok(info.subject_public_key.data.to_vec())
}

/// The public key bits of a `PUBLIC KEY` or `CERTIFICATE` PEM file.
fn public_key_file(path: &Path) -> Result<Vec<u8>, JwtError> {
    let pem = read(path)?;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&pem) {
        let (kind, der) = section.map_err(|e| key_error(path, format!("bad PEM: {e}")))?;
        match kind {
            SectionKind::PublicKey => return spki_bits(&der, path),
            SectionKind::Certificate => {
                let (_, cert) = x509_parser::parse_x509_certificate(&der)
                    .map_err(|e| key_error(path, format!("bad certificate: {e}")))?;
                return Ok(cert.public_key().subject_public_key.data.to_vec());
            }
            _ => {}
        }
    }
    Err(key_error(path, "no PUBLIC KEY or CERTIFICATE block"))
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`).
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

fn hmac(hash: Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<D: Digest>(block: usize, key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut k = if key.len() > block {
            D::digest(key).to_vec()
        } else {
            key.to_vec()
        };
        k.resize(block, 0);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = D::new()
            .chain_update(&ipad)
            .chain_update(message)
            .finalize();
        D::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize()
            .to_vec()
    }
    match hash {
        Hash::Sha256 => run::<Sha256>(64, key, message),
        Hash::Sha384 => run::<Sha384>(128, key, message),
        Hash::Sha512 => run::<Sha512>(128, key, message),
    }
}

/// ECDSA DER `SEQUENCE { r INTEGER, s INTEGER }` to JWT's fixed `r || s`.
fn ecdsa_der_to_fixed(der: &[u8], n: usize) -> Option<Vec<u8>> {
    fn int(input: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if tag != 0x02 || len >= 0x80 || rest.len() < usize::from(len) {
            return None;
        }
        Some(rest.split_at(usize::from(len)))
    }
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len >= 0x80 || body.len() != usize::from(len) {
        return None;
    }
    let (r, rest) = int(body)?;
    let (s, rest) = int(rest)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * n);
    for x in [r, s] {
        let x = &x[x.iter().take_while(|b| **b == 0).count()..];
        if x.len() > n {
            return None;
        }
        out.extend(std::iter::repeat_n(0, n - x.len()));
        out.extend_from_slice(x);
    }
    Some(out)
}

/// JWT's fixed `r || s` to ECDSA DER.
fn ecdsa_fixed_to_der(sig: &[u8], n: usize) -> Option<Vec<u8>> {
    if sig.len() != 2 * n {
        return None;
    }
    let mut body = Vec::new();
    for x in [&sig[..n], &sig[n..]] {
        let skip = x.iter().take_while(|b| **b == 0).count().min(n - 1);
        let x = &x[skip..];
        let pad = x[0] & 0x80 != 0;
        body.push(0x02);
        body.push(u8::try_from(x.len() + usize::from(pad)).ok()?);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(x);
    }
    let mut out = vec![0x30, u8::try_from(body.len()).ok()?];
    out.extend(body);
    Some(out)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl JwtKeys {
    /// Keys from `--auth-token jwt,...` options (`key`, `value` pairs).
    ///
    /// # Errors
    /// Unknown method or option, unreadable, unparsable or mismatched key files, a bad `ttl`.
    pub fn from_options(options: &[(&str, &str)]) -> Result<Self, JwtError> {
        let mut method_name = "";
        let mut pub_key: Option<PathBuf> = None;
        let mut priv_key: Option<PathBuf> = None;
        let mut ttl = DEFAULT_TTL;
        for (k, v) in options {
            match *k {
                "sign-method" => method_name = v,
                "pub-key" if !v.is_empty() => pub_key = Some(PathBuf::from(v)),
                "priv-key" if !v.is_empty() => priv_key = Some(PathBuf::from(v)),
                "pub-key" | "priv-key" => {}
                "ttl" if !v.is_empty() => {
                    ttl = parse_go_duration(v).ok_or_else(|| JwtError::Ttl(v.to_string()))?;
                }
                "ttl" => {}
                // etcd warns about options it does not know and goes on.
                other => tracing::warn!(option = other, "--auth-token jwt: unknown option ignored"),
            }
        }
        let method = METHODS
            .iter()
            .copied()
            .find(|m| m.name == method_name)
            .ok_or_else(|| JwtError::SignMethod(method_name.to_string()))?;
        let missing = || JwtError::MissingKey(method.name.to_string());
        let keys = if method.family == Family::Hmac {
            let path = priv_key.ok_or_else(missing)?;
            Keys::Hmac(read(&path)?)
        } else {
            let signer = match &priv_key {
                Some(path) => {
                    let pem = read(path)?;
                    let der = PrivateKeyDer::from_pem_slice(&pem)
                        .map_err(|e| key_error(path, format!("no private key: {e}")))?;
                    let key = any_supported_type(&der)
                        .map_err(|e| key_error(path, format!("unsupported private key: {e}")))?;
                    let scheme = method.scheme().ok_or_else(missing)?;
                    if key.choose_scheme(&[scheme]).is_none() {
                        return Err(key_error(
                            path,
                            format!("the key cannot sign with {}", method.name),
                        ));
                    }
                    Some(key)
                }
                None => None,
            };
            let derived = match (&signer, &priv_key) {
                (Some(key), Some(path)) => {
                    let spki = key
                        .public_key()
                        .ok_or_else(|| key_error(path, "no public key can be derived"))?;
                    Some(spki_bits(spki.as_ref(), path)?)
                }
                _ => None,
            };
            let given = pub_key.as_deref().map(public_key_file).transpose()?;
            let public = match (derived, given) {
                (Some(d), Some(g)) if d != g => {
                    return Err(JwtError::KeyMismatch {
                        pub_key: pub_key.unwrap_or_default(),
                        priv_key: priv_key.unwrap_or_default(),
                    })
                }
                (Some(d), _) => d,
                (None, Some(g)) => g,
                (None, None) => return Err(missing()),
            };
            Keys::Asymmetric { signer, public }
        };
        Ok(Self { method, keys, ttl })
    }

    /// True when this member can issue tokens (it has the private key).
    pub fn can_sign(&self) -> bool {
        match &self.keys {
            Keys::Hmac(_) => true,
            Keys::Asymmetric { signer, .. } => signer.is_some(),
        }
    }

    /// A token for `user` at auth revision `revision`.
    ///
    /// # Errors
    /// [`JwtError::VerifyOnly`] without a private key; a signer failure.
    pub fn sign(&self, user: &str, revision: u64) -> Result<String, JwtError> {
        let header = serde_json::json!({ "alg": self.method.name, "typ": "JWT" });
        let exp = now_secs().saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        let claims = serde_json::json!({ "exp": exp, "revision": revision, "username": user });
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match &self.keys {
            Keys::Hmac(key) => hmac(self.method.hash, key, input.as_bytes()),
            Keys::Asymmetric { signer: None, .. } => return Err(JwtError::VerifyOnly),
            Keys::Asymmetric {
                signer: Some(key), ..
            } => {
                let scheme = self.method.scheme().ok_or(JwtError::VerifyOnly)?;
                let signer = key
                    .choose_scheme(&[scheme])
                    .ok_or_else(|| JwtError::Sign(format!("the key cannot sign {scheme:?}")))?;
                let sig = signer
                    .sign(input.as_bytes())
                    .map_err(|e| JwtError::Sign(e.to_string()))?;
                if self.method.family == Family::Ecdsa {
                    ecdsa_der_to_fixed(&sig, self.method.ecdsa_scalar_len())
                        .ok_or_else(|| JwtError::Sign("malformed ECDSA signature".into()))?
                } else {
                    sig
                }
            }
        };
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(input)
    }

    /// The user and auth revision of a valid, unexpired token signed with this member's key.
    pub fn verify(&self, token: &str) -> Option<(String, u64)> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.get("alg")?.as_str()? != self.method.name {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
        let input = &token.as_bytes()[..h.len() + 1 + c.len()];
        if !self.signature_valid(input, &signature) {
            return None;
        }
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
        if let Some(exp) = claims.get("exp") {
            let exp = exp.as_f64()?;
            if (now_secs() as f64) > exp {
                return None;
            }
        }
        let user = claims.get("username")?.as_str()?.to_string();
        let revision = claims.get("revision")?.as_f64()?;
        if !(revision >= 0.0 && revision.fract() == 0.0) {
            return None;
        }
        Some((user, revision as u64))
    }

    fn signature_valid(&self, input: &[u8], signature: &[u8]) -> bool {
        match &self.keys {
            Keys::Hmac(key) => {
                let expected = hmac(self.method.hash, key, input);
                expected.len() == signature.len()
                    && expected
                        .iter()
                        .zip(signature)
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0
            }
            Keys::Asymmetric { public, .. } => {
                let Some(scheme) = self.method.scheme() else {
                    return false;
                };
                let der;
                let signature = if self.method.family == Family::Ecdsa {
                    match ecdsa_fixed_to_der(signature, self.method.ecdsa_scalar_len()) {
                        Some(d) => {
                            der = d;
                            der.as_slice()
                        }
                        None => return false,
                    }
                } else {
                    signature
                };
                let provider = rustls::crypto::ring::default_provider();
                provider
                    .signature_verification_algorithms
                    .mapping
                    .iter()
                    .filter(|(s, _)| *s == scheme)
                    .flat_map(|(_, algs)| algs.iter())
                    .any(|alg| alg.verify_signature(public, input, signature).is_ok())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write key");
        p.display().to_string()
    }

    fn key_pair(alg: &'static rcgen::SignatureAlgorithm, dir: &Path) -> (String, String) {
        let kp = rcgen::KeyPair::generate_for(alg).expect("keygen");
        let priv_key = write(dir, "k.pem", &kp.serialize_pem());
        let pub_key = write(dir, "k.pub", &kp.public_key_pem());
        (priv_key, pub_key)
    }

    fn keys(method: &str, priv_key: &str, pub_key: &str) -> Result<JwtKeys, JwtError> {
        let mut opts = vec![("sign-method", method)];
        if !priv_key.is_empty() {
            opts.push(("priv-key", priv_key));
        }
        if !pub_key.is_empty() {
            opts.push(("pub-key", pub_key));
        }
        JwtKeys::from_options(&opts)
    }

    #[test]
    fn ecdsa_tokens_round_trip_and_reject_tampering() {
        let dir = tempfile::tempdir().expect("dir");
        let (priv_key, pub_key) = key_pair(&rcgen::PKCS_ECDSA_P256_SHA256, dir.path());
        let k = keys("ES256", &priv_key, &pub_key).expect("keys");
        let token = k.sign("alice", 7).expect("sign");
        assert_eq!(k.verify(&token), Some(("alice".to_string(), 7)));
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(k.verify(&forged), None);
        // a verify-only member accepts the token but cannot issue one
        let v = keys("ES256", "", &pub_key).expect("verify only");
        assert_eq!(v.verify(&token), Some(("alice".to_string(), 7)));
        assert!(matches!(v.sign("alice", 7), Err(JwtError::VerifyOnly)));
        // the wrong method is refused
        assert!(keys("ES384", &priv_key, "").is_err());
    }

    #[test]
    fn hmac_tokens_round_trip() {
        let dir = tempfile::tempdir().expect("dir");
        let secret = write(dir.path(), "secret", "s3cr3t");
        let k = keys("HS256", &secret, "").expect("keys");
        let token = k.sign("bob", 3).expect("sign");
        assert_eq!(k.verify(&token), Some(("bob".to_string(), 3)));
        let other = write(dir.path(), "other", "0ther");
        assert_eq!(
            keys("HS256", &other, "").expect("keys").verify(&token),
            None
        );
        assert!(matches!(
            keys("HS256", "", ""),
            Err(JwtError::MissingKey(_))
        ));
    }

    #[test]
    fn mismatched_keys_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let a = tempfile::tempdir().expect("dir");
        let (priv_key, _) = key_pair(&rcgen::PKCS_ECDSA_P256_SHA256, dir.path());
        let (_, other_pub) = key_pair(&rcgen::PKCS_ECDSA_P256_SHA256, a.path());
        assert!(matches!(
            keys("ES256", &priv_key, &other_pub),
            Err(JwtError::KeyMismatch { .. })
        ));
        assert!(matches!(
            keys("XX1", &priv_key, ""),
            Err(JwtError::SignMethod(_))
        ));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac(Hash::Sha256, b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("m"), None);
    }

    #[test]
    fn ecdsa_signature_shapes_convert_both_ways() {
        let mut fixed = vec![0u8; 64];
        fixed[31] = 1;
        fixed[32] = 0x80;
        let der = ecdsa_fixed_to_der(&fixed, 32).expect("der");
        assert_eq!(ecdsa_der_to_fixed(&der, 32), Some(fixed));
    }
}
