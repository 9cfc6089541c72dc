//! JSON Web Tokens for `--auth-token jwt,pub-key=FILE,priv-key=FILE,sign-method=ALG[,ttl=D]`.
//!
//! A token carries the user name, the auth revision it was issued at and an expiry, signed with
//! the configured key: `{"alg":ALG,"typ":"JWT"}.{"exp":..,"revision":..,"username":..}`, as
//! etcd issues them. Any member with the key verifies a token alone, so tokens survive restarts
//! and leader changes; a token issued before the auth state changed is refused with "revision
//! of auth store is old" and clients authenticate again.
//!
//! The `jsonwebtoken` crate does the framing, the signatures and the `exp`/`nbf` checks; this
//! module reads etcd's options and key files and checks the claims as etcd's `auth/jwt.go`
//! does (`exp` optional, no leeway).
//!
//! Sign methods: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA and HS256/384/512 (HMAC
//! with the `priv-key` file's bytes as the secret). ES512 (P-521) is not available (etcd
//! offers it; `jsonwebtoken` does not). Private keys may be PKCS#8, PKCS#1 (RSA) or SEC1
//! (EC) PEM, as Go's jwt parsers read them. With only `pub-key` the member verifies tokens
//! but cannot issue them, as in etcd.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::PrivateKeyDer;
use thiserror::Error;

use crate::config::parse_duration;

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

/// The claims of a token, in the order Go's JSON encoder writes etcd's map (sorted keys).
#[derive(serde::Serialize)]
struct Claims<'a> {
    exp: i64,
    revision: u64,
    username: &'a str,
}

/// The JWT method and keys of a member.
pub struct JwtKeys {
    algorithm: Algorithm,
    /// The private key (or HMAC secret); `None` on a verify-only member.
    signer: Option<EncodingKey>,
    verifier: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("method", &self.algorithm)
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

/// A verifying key from the subjectPublicKey bits of `pub-key` (PKCS#1 for RSA, the SEC1
/// point for EC, the raw key for Ed25519: what `jsonwebtoken` takes).
fn verifying_key(family: AlgorithmFamily, bits: &[u8]) -> DecodingKey {
    match family {
        AlgorithmFamily::Ec => DecodingKey::from_ec_der(bits),
        AlgorithmFamily::Ed => DecodingKey::from_ed_der(bits),
        _ => DecodingKey::from_rsa_der(bits),
    }
}

/// The private key of `priv-key` for `algorithm` (PKCS#8, PKCS#1 RSA or SEC1 EC PEM).
fn signing_key(algorithm: Algorithm, path: &Path) -> Result<EncodingKey, JwtError> {
    let pem = read(path)?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| key_error(path, format!("no private key: {e}")))?;
    let unfit = |e: &dyn std::fmt::Display| {
        key_error(path, format!("the key cannot sign with {algorithm:?}: {e}"))
    };
    match (algorithm.family(), &der) {
        (AlgorithmFamily::Rsa, PrivateKeyDer::Pkcs1(k)) => {
            Ok(EncodingKey::from_rsa_der(k.secret_pkcs1_der()))
        }
        (AlgorithmFamily::Rsa, PrivateKeyDer::Pkcs8(k)) => {
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            use rsa::pkcs8::DecodePrivateKey as _;
            let key =
                rsa::PrivateKey::from_pkcs8_der(k.secret_pkcs8_der()).map_err(|e| unfit(&e))?;
            let pkcs1 = key.to_pkcs1_der().map_err(|e| unfit(&e))?;
            Ok(EncodingKey::from_rsa_der(pkcs1.as_bytes()))
        }
        (AlgorithmFamily::Ec, PrivateKeyDer::Pkcs8(k)) => {
            Ok(EncodingKey::from_ec_der(k.secret_pkcs8_der()))
        }
        (AlgorithmFamily::Ec, PrivateKeyDer::Sec1(k)) => {
            use p256::pkcs8::EncodePrivateKey as _;
            let sec1 = k.secret_sec1_der();
            let pkcs8 = if algorithm == Algorithm::ES384 {
                p384::SecretKey::from_sec1_der(sec1)
                    .map_err(|e| unfit(&e))?
                    .to_pkcs8_der()
            } else {
                p256::SecretKey::from_sec1_der(sec1)
                    .map_err(|e| unfit(&e))?
                    .to_pkcs8_der()
            }
            .map_err(|e| unfit(&e))?;
            Ok(EncodingKey::from_ec_der(pkcs8.as_bytes()))
        }
        (AlgorithmFamily::Ed, PrivateKeyDer::Pkcs8(k)) => {
            Ok(EncodingKey::from_ed_der(k.secret_pkcs8_der()))
        }
        (_, other) => Err(unfit(&format_args!(
            "a {} key is not a {:?} key",
            match other {
                PrivateKeyDer::Pkcs1(_) => "PKCS#1 (RSA)",
                PrivateKeyDer::Sec1(_) => "SEC1 (EC)",
                _ => "PKCS#8",
            },
            algorithm.family()
        ))),
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How etcd (jwt-go's `Parse` with `MapClaims`) checks a token: the configured algorithm,
/// `exp` and `nbf` when present, no leeway, no audience.
fn validation(algorithm: Algorithm) -> Validation {
    let mut v = Validation::new(algorithm);
    v.required_spec_claims = HashSet::new();
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    v
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
                    ttl = parse_duration(v).map_err(|_| JwtError::Ttl(v.to_string()))?;
                }
                "ttl" => {}
                // etcd warns about options it does not know and goes on.
                other => tracing::warn!(option = other, "--auth-token jwt: unknown option ignored"),
            }
        }
        let algorithm = Algorithm::from_str(method_name)
            .map_err(|_| JwtError::SignMethod(method_name.to_string()))?;
        let missing = || JwtError::MissingKey(method_name.to_string());
        let family = algorithm.family();
        let (signer, verifier) = if family == AlgorithmFamily::Hmac {
            let path = priv_key.as_deref().ok_or_else(missing)?;
            let secret = read(path)?;
            let bad =
                |e: jsonwebtoken::errors::Error| key_error(path, format!("unusable secret: {e}"));
            (
                Some(EncodingKey::from_secret(&secret).map_err(bad)?),
                DecodingKey::from_secret(&secret).map_err(bad)?,
            )
        } else {
            let signer = priv_key
                .as_deref()
                .map(|path| signing_key(algorithm, path))
                .transpose()?;
            let verifier = match (&signer, pub_key.as_deref()) {
                (_, Some(path)) => verifying_key(family, &public_key_file(path)?),
                (Some(key), None) => {
                    let path = priv_key.as_deref().unwrap_or(Path::new(""));
                    let derive = |e: jsonwebtoken::errors::Error| {
                        key_error(path, format!("the key cannot sign with {algorithm:?}: {e}"))
                    };
                    let jwk = Jwk::from_encoding_key(key, algorithm).map_err(derive)?;
                    DecodingKey::from_jwk(&jwk).map_err(derive)?
                }
                (None, None) => return Err(missing()),
            };
            (signer, verifier)
        };
        let keys = Self {
            algorithm,
            signer,
            verifier,
            validation: validation(algorithm),
            ttl,
        };
        // A token made now must verify: this finds a key unfit for the method, and a public
        // key that is not the private key's, at startup rather than at the first login.
        if keys.can_sign() {
            let path = priv_key.clone().unwrap_or_default();
            let token = keys.sign("", 0).map_err(|e| {
                key_error(
                    &path,
                    format!("the key cannot sign with {algorithm:?}: {e}"),
                )
            })?;
            if keys.verify(&token).is_none() {
                return Err(match pub_key {
                    Some(pub_key) => JwtError::KeyMismatch {
                        pub_key,
                        priv_key: path,
                    },
                    None => key_error(&path, "a token signed with it does not verify"),
                });
            }
        }
        Ok(keys)
    }

    /// True when this member can issue tokens (it has the private key).
    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// A token for `user` at auth revision `revision`.
    ///
    /// # Errors
    /// `JwtError::VerifyOnly` without a private key; a signer failure.
    pub fn sign(&self, user: &str, revision: u64) -> Result<String, JwtError> {
        let key = self.signer.as_ref().ok_or(JwtError::VerifyOnly)?;
        let exp = now_secs().saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        let claims = Claims {
            exp,
            revision,
            username: user,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| JwtError::Sign(e.to_string()))
    }

    /// The user and auth revision of a valid, unexpired token signed with this member's key.
    pub fn verify(&self, token: &str) -> Option<(String, u64)> {
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &self.verifier, &self.validation)
                .ok()?;
        let claims = data.claims;
        let user = claims.get("username")?.as_str()?.to_string();
        // etcd reads the revision as a JSON number (float64) and converts it.
        let revision = claims.get("revision")?.as_f64()?;
        if !(revision >= 0.0 && revision.fract() == 0.0) {
            return None;
        }
        Some((user, revision as u64))
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

    /// The decoded JSON of one part of a token.
    fn part(token: &str, i: usize) -> serde_json::Value {
        use base64::Engine as _;
        let b = token.split('.').nth(i).expect("part");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
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
        assert!(keys("RS256", &priv_key, "").is_err());
    }

    #[test]
    fn tokens_carry_etcds_header_and_claims() {
        let dir = tempfile::tempdir().expect("dir");
        let (priv_key, _) = key_pair(&rcgen::PKCS_ECDSA_P384_SHA384, dir.path());
        let k = keys("ES384", &priv_key, "").expect("keys");
        let token = k.sign("bob", 12).expect("sign");
        let header = part(&token, 0);
        assert_eq!(header["alg"], "ES384");
        assert_eq!(header["typ"], "JWT");
        let claims = part(&token, 1);
        let names: Vec<&str> = claims
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["exp", "revision", "username"]);
        assert_eq!(claims["username"], "bob");
        assert_eq!(claims["revision"], 12);
        let exp = claims["exp"].as_i64().expect("exp");
        assert!(
            (exp - now_secs() - 300).abs() <= 5,
            "default ttl is 5m: {exp}"
        );
        // ES384 signatures are r || s of 48 bytes each (not DER), as JWS requires.
        use base64::Engine as _;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(2).expect("sig"))
            .expect("b64");
        assert_eq!(sig.len(), 96);
    }

    #[test]
    fn sec1_ec_keys_and_ed25519_keys_sign() {
        use p256::pkcs8::DecodePrivateKey as _;
        let dir = tempfile::tempdir().expect("dir");
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let sk = p256::SecretKey::from_pkcs8_der(&kp.serialize_der()).expect("pkcs8");
        let sec1 = sk.to_sec1_der().expect("sec1");
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            pem_block("EC PRIVATE KEY", &sec1)
        );
        let priv_key = write(dir.path(), "sec1.pem", &text);
        let pub_key = write(dir.path(), "sec1.pub", &kp.public_key_pem());
        let k = keys("ES256", &priv_key, &pub_key).expect("SEC1 key");
        let token = k.sign("carol", 1).expect("sign");
        assert_eq!(k.verify(&token), Some(("carol".to_string(), 1)));

        let (ed, ed_pub) = key_pair(&rcgen::PKCS_ED25519, dir.path());
        let k = keys("EdDSA", &ed, &ed_pub).expect("Ed25519 key");
        let token = k.sign("dave", 2).expect("sign");
        assert_eq!(
            keys("EdDSA", "", &ed_pub)
                .expect("verify only")
                .verify(&token),
            Some(("dave".to_string(), 2))
        );
    }

    fn pem_block(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn hmac_tokens_round_trip() {
        let dir = tempfile::tempdir().expect("dir");
        let secret = write(dir.path(), "secret", "s3cr3t");
        for method in ["HS256", "HS384", "HS512"] {
            let k = keys(method, &secret, "").expect("keys");
            let token = k.sign("bob", 3).expect("sign");
            assert_eq!(k.verify(&token), Some(("bob".to_string(), 3)), "{method}");
            let other = write(dir.path(), "other", "0ther");
            assert_eq!(keys(method, &other, "").expect("keys").verify(&token), None);
        }
        // a token of another method is refused even with the same secret
        let hs256 = keys("HS256", &secret, "").expect("keys");
        let hs512 = keys("HS512", &secret, "").expect("keys");
        assert_eq!(hs256.verify(&hs512.sign("bob", 3).expect("sign")), None);
        assert!(matches!(
            keys("HS256", "", ""),
            Err(JwtError::MissingKey(_))
        ));
        let empty = write(dir.path(), "empty", "");
        assert!(keys("HS256", &empty, "").is_err());
    }

    #[test]
    fn expired_and_unsigned_tokens_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let secret = write(dir.path(), "secret", "s3cr3t");
        let k = keys("HS256", &secret, "").expect("keys");
        let key = EncodingKey::from_secret(b"s3cr3t").expect("key");
        let header = Header::new(Algorithm::HS256);
        let expired = jsonwebtoken::encode(
            &header,
            &Claims {
                exp: now_secs() - 1,
                revision: 1,
                username: "eve",
            },
            &key,
        )
        .expect("encode");
        assert_eq!(k.verify(&expired), None);
        // etcd does not require exp
        let no_exp = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"revision": 1, "username": "eve"}),
            &key,
        )
        .expect("encode");
        assert_eq!(k.verify(&no_exp), Some(("eve".to_string(), 1)));
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            no_exp.split('.').nth(1).expect("claims")
        );
        assert_eq!(k.verify(&unsigned), None);
    }

    #[test]
    fn mismatched_keys_and_unknown_methods_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let a = tempfile::tempdir().expect("dir");
        let (priv_key, _) = key_pair(&rcgen::PKCS_ECDSA_P256_SHA256, dir.path());
        let (_, other_pub) = key_pair(&rcgen::PKCS_ECDSA_P256_SHA256, a.path());
        assert!(matches!(
            keys("ES256", &priv_key, &other_pub),
            Err(JwtError::KeyMismatch { .. })
        ));
        for bad in ["XX1", "ES512", "none", ""] {
            assert!(
                matches!(keys(bad, &priv_key, ""), Err(JwtError::SignMethod(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn ttl_is_a_go_duration() {
        let dir = tempfile::tempdir().expect("dir");
        let secret = write(dir.path(), "secret", "s3cr3t");
        let with_ttl = |ttl: &str| {
            JwtKeys::from_options(&[
                ("sign-method", "HS256"),
                ("priv-key", &secret),
                ("ttl", ttl),
            ])
        };
        assert_eq!(
            with_ttl("1h2m3.5s").expect("ttl").ttl,
            Duration::from_millis(3_723_500)
        );
        assert_eq!(with_ttl("1µs").expect("ttl").ttl, Duration::from_micros(1));
        assert!(matches!(with_ttl("5"), Err(JwtError::Ttl(_))));
        assert!(matches!(with_ttl("m"), Err(JwtError::Ttl(_))));
    }
}
