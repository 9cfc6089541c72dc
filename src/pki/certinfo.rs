//! A parsed certificate in plain values ([`CertInfo`]): names, dates, key, usages and SANs;
//! what it is fit for ([`Role`]) and which classic mistakes it shows (missing SANs, missing
//! clientAuth, expired, CA:TRUE missing, v1 certificates, CN-only certificates, ...).
//!
//! Shared by `inspect` and `check`; knows nothing about files or the network.

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::times;
use crate::x509::cert;

/// Certificates that expire sooner than this get an "expires soon" warning.
pub const EXPIRY_WARNING: Duration = Duration::days(30);

/// What a certificate is used for in an etcd-style cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Presented by a member on its client port: needs serverAuth and SANs.
    Server,
    /// Used between members: server and client at once, needs serverAuth, clientAuth, SANs.
    Peer,
    /// Presented by etcdctl or an application: needs clientAuth.
    Client,
}

impl Role {
    /// The role's name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Peer => "peer",
            Role::Client => "client",
        }
    }
}

/// One subjectAltName entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
    /// An e-mail address.
    Email(String),
    /// A URI.
    Uri(String),
    /// Anything else, already described.
    Other(String),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
            San::Email(e) => write!(f, "email:{e}"),
            San::Uri(u) => write!(f, "URI:{u}"),
            San::Other(o) => write!(f, "{o}"),
        }
    }
}

/// The extended key usage extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eku {
    /// TLS server authentication (serverAuth).
    pub server_auth: bool,
    /// TLS client authentication (clientAuth).
    pub client_auth: bool,
    /// anyExtendedKeyUsage.
    pub any: bool,
    /// Other purposes, by name.
    pub others: Vec<String>,
}

impl Eku {
    /// The purposes by name, in a fixed order.
    pub fn names(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.server_auth {
            v.push("serverAuth".to_string());
        }
        if self.client_auth {
            v.push("clientAuth".to_string());
        }
        if self.any {
            v.push("anyExtendedKeyUsage".to_string());
        }
        v.extend(self.others.iter().cloned());
        v
    }
}

/// What a warning is about, so callers can drop the ones they report otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// Expired, not yet valid or expiring soon.
    Time,
    /// Unfit for the role its name suggests.
    Role,
    /// Any other classic mistake.
    Other,
}

/// One warning about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The sentence to print.
    pub text: String,
}

/// The result of looking for a certificate's issuer among known certificates.
#[derive(Debug)]
pub enum IssuerLookup<'a> {
    /// The certificate is self-issued; the result says whether its own key signed it.
    SelfSigned(Result<(), String>),
    /// A certificate with the issuer's name whose key verifies the signature.
    Found(&'a CertInfo),
    /// Certificates with the issuer's name exist, but none of their keys verifies the
    /// signature: a different CA with the same name.
    SameNameOnly(&'a CertInfo),
    /// No certificate has the issuer's name.
    Missing,
}

/// Whether the certificate's validity period contains a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStatus {
    /// Valid and not close to expiry.
    Valid,
    /// Valid, but expires within [`EXPIRY_WARNING`].
    ExpiresSoon,
    /// Expired.
    Expired,
    /// Not valid yet.
    NotYetValid,
}

/// A parsed certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// The DER encoding.
    pub der: CertificateDer<'static>,
    /// X.509 version: 1 or 3 (2 is rare).
    pub version: u32,
    /// The serial number, colon-separated hex.
    pub serial: String,
    /// The subject as `CN=..., O=...`.
    pub subject: String,
    /// The issuer as `CN=..., O=...`.
    pub issuer: String,
    /// The subject's DER encoding (for chain matching).
    pub subject_raw: Vec<u8>,
    /// The issuer's DER encoding (for chain matching).
    pub issuer_raw: Vec<u8>,
    /// The subject's common names.
    pub common_names: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// The public key, e.g. `ECDSA P-256` or `RSA 2048`.
    pub key: String,
    /// RSA modulus size, for RSA keys.
    pub rsa_bits: Option<usize>,
    /// The raw public key bits, to match private keys.
    pub public_key: Vec<u8>,
    /// The signature algorithm, e.g. `ecdsa-with-SHA256`.
    pub signature: String,
    /// basicConstraints: `Some((ca, path_len))`, `None` when the extension is absent.
    pub basic_constraints: Option<(bool, Option<u32>)>,
    /// keyUsage names, `None` when the extension is absent.
    pub key_usage: Option<Vec<&'static str>>,
    /// extendedKeyUsage, `None` when the extension is absent.
    pub eku: Option<Eku>,
    /// subjectAltName entries, `None` when the extension is absent.
    pub sans: Option<Vec<San>>,
}

fn oid_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.3.101.112" => "ED25519",
        "1.3.6.1.5.5.7.3.3" => "codeSigning",
        "1.3.6.1.5.5.7.3.4" => "emailProtection",
        "1.3.6.1.5.5.7.3.8" => "timeStamping",
        "1.3.6.1.5.5.7.3.9" => "OCSPSigning",
        _ => return None,
    })
}

/// The size in bits of an RSA public key (0 when it is not RSA).
pub fn rsa_bits(spki: &SubjectPublicKeyInfo<'_>) -> usize {
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            let m = rsa.modulus;
            let start = m.iter().position(|b| *b != 0).unwrap_or(m.len());
            let m = &m[start..];
            match m.first() {
                Some(first) => m.len() * 8 - first.leading_zeros() as usize,
                None => 0,
            }
        }
        _ => 0,
    }
}

fn describe_key(spki: &SubjectPublicKeyInfo<'_>) -> (String, Option<usize>) {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.2.840.113549.1.1.1" => {
            let bits = rsa_bits(spki);
            (format!("RSA {bits}"), Some(bits))
        }
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let name = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_string(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_string(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_string(),
                Some(other) => format!("ECDSA (curve {other})"),
                None => "ECDSA".to_string(),
            };
            (name, None)
        }
        "1.3.101.112" => ("Ed25519".to_string(), None),
        other => (format!("unknown key type {other}"), None),
    }
}

fn general_name(gn: &GeneralName<'_>) -> San {
    match gn {
        GeneralName::DNSName(d) => San::Dns((*d).to_string()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(bytes);
                San::Ip(IpAddr::from(a))
            }
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(bytes);
                San::Ip(IpAddr::from(a))
            }
            _ => San::Other(format!("IP:<{} bytes>", bytes.len())),
        },
        GeneralName::RFC822Name(e) => San::Email((*e).to_string()),
        GeneralName::URI(u) => San::Uri((*u).to_string()),
        GeneralName::DirectoryName(n) => San::Other(format!("DirName:{n}")),
        GeneralName::OtherName(oid, _) => San::Other(format!("othername:{}", oid.to_id_string())),
        GeneralName::RegisteredID(oid) => San::Other(format!("RID:{}", oid.to_id_string())),
        _ => San::Other("(unsupported name form)".to_string()),
    }
}

fn to_time(t: &x509_parser::time::ASN1Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl CertInfo {
    /// Parses a DER certificate.
    ///
    /// # Errors
    /// A message saying what could not be parsed.
    pub fn parse(der: CertificateDer<'static>) -> Result<CertInfo, String> {
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
        let ext_err =
            |what: &str, e: x509_parser::error::X509Error| format!("damaged {what} extension: {e}");
        let basic_constraints = cert
            .basic_constraints()
            .map_err(|e| ext_err("basicConstraints", e))?
            .map(|bc| (bc.value.ca, bc.value.path_len_constraint));
        let key_usage = cert
            .key_usage()
            .map_err(|e| ext_err("keyUsage", e))?
            .map(|ku| {
                let ku = ku.value;
                let flags = [
                    (ku.digital_signature(), "digitalSignature"),
                    (ku.non_repudiation(), "nonRepudiation"),
                    (ku.key_encipherment(), "keyEncipherment"),
                    (ku.data_encipherment(), "dataEncipherment"),
                    (ku.key_agreement(), "keyAgreement"),
                    (ku.key_cert_sign(), "keyCertSign"),
                    (ku.crl_sign(), "cRLSign"),
                    (ku.encipher_only(), "encipherOnly"),
                    (ku.decipher_only(), "decipherOnly"),
                ];
                flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| *n)
                    .collect()
            });
        let eku = cert
            .extended_key_usage()
            .map_err(|e| ext_err("extendedKeyUsage", e))?
            .map(|e| {
                let e = e.value;
                let mut others: Vec<String> = Vec::new();
                for (on, name) in [
                    (e.code_signing, "codeSigning"),
                    (e.email_protection, "emailProtection"),
                    (e.time_stamping, "timeStamping"),
                    (e.ocsp_signing, "OCSPSigning"),
                ] {
                    if on {
                        others.push(name.to_string());
                    }
                }
                others.extend(e.other.iter().map(|o| {
                    let id = o.to_id_string();
                    oid_name(&id).map(str::to_string).unwrap_or(id)
                }));
                Eku {
                    server_auth: e.server_auth,
                    client_auth: e.client_auth,
                    any: e.any,
                    others,
                }
            });
        let sans = cert
            .subject_alternative_name()
            .map_err(|e| ext_err("subjectAltName", e))?
            .map(|s| s.value.general_names.iter().map(general_name).collect());
        let spki = cert.public_key();
        let (key, rsa_bits) = describe_key(spki);
        let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
        let common_names = cert
            .subject()
            .iter_common_name()
            .map(|cn| {
                cn.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|_| "<binary>".to_string())
            })
            .collect();
        Ok(CertInfo {
            version: cert.version().0 + 1,
            serial: cert::serial_hex(cert.raw_serial()),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            common_names,
            not_before: to_time(&cert.validity().not_before),
            not_after: to_time(&cert.validity().not_after),
            key,
            rsa_bits,
            public_key: spki.subject_public_key.data.to_vec(),
            signature: oid_name(&sig_oid).map(str::to_string).unwrap_or(sig_oid),
            basic_constraints,
            key_usage,
            eku,
            sans,
            der: der.clone(),
        })
    }

    /// A short name for messages: the subject, or `(empty subject)`.
    pub fn display_name(&self) -> String {
        if self.subject.is_empty() {
            "(empty subject)".to_string()
        } else {
            self.subject.clone()
        }
    }

    /// True when subject and issuer are the same name (a root or a self-signed certificate).
    pub fn is_self_issued(&self) -> bool {
        self.subject_raw == self.issuer_raw
    }

    /// True when the certificate says it is a CA (basicConstraints CA:TRUE).
    pub fn is_ca(&self) -> bool {
        matches!(self.basic_constraints, Some((true, _)))
    }

    /// True when the certificate may sign others: CA:TRUE, or an X.509 v1 self-signed root
    /// (which has no extensions at all, and which Go and openssl accept as a trusted root).
    pub fn can_sign(&self) -> bool {
        self.is_ca() || (self.version == 1 && self.is_self_issued())
    }

    /// Verifies that `issuer`'s key signed this certificate.
    ///
    /// # Errors
    /// A message explaining the mismatch.
    pub fn verify_signed_by(&self, issuer: &CertInfo) -> Result<(), String> {
        let (_, me) = X509Certificate::from_der(self.der.as_ref()).map_err(|e| e.to_string())?;
        let (_, them) =
            X509Certificate::from_der(issuer.der.as_ref()).map_err(|e| e.to_string())?;
        me.verify_signature(Some(them.public_key())).map_err(|e| {
            format!(
                "signature does not verify with the key of {} ({e})",
                issuer.display_name()
            )
        })
    }

    /// Looks for this certificate's issuer among `pool`: by name, then by signature.
    pub fn find_issuer<'a>(&self, pool: &'a [CertInfo]) -> IssuerLookup<'a> {
        if self.is_self_issued() {
            return IssuerLookup::SelfSigned(self.verify_signed_by(self));
        }
        let mut same_name = None;
        for candidate in pool.iter().filter(|c| c.subject_raw == self.issuer_raw) {
            if self.verify_signed_by(candidate).is_ok() {
                return IssuerLookup::Found(candidate);
            }
            same_name.get_or_insert(candidate);
        }
        match same_name {
            Some(c) => IssuerLookup::SameNameOnly(c),
            None => IssuerLookup::Missing,
        }
    }

    /// The subjectAltNames as `DNS:localhost, IP:127.0.0.1`, or `(none)`.
    pub fn san_list(&self) -> String {
        match &self.sans {
            Some(s) if !s.is_empty() => s
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            _ => "(none)".to_string(),
        }
    }

    /// The extendedKeyUsage names joined with `, `, or `(none)`.
    pub fn eku_list(&self) -> String {
        match &self.eku {
            Some(e) => {
                let n = e.names();
                if n.is_empty() {
                    "(empty)".to_string()
                } else {
                    n.join(", ")
                }
            }
            None => "(none)".to_string(),
        }
    }

    /// True when a TLS client connecting to `host` (a DNS name or IP address) accepts this
    /// certificate's names. Only SANs count, as in Go 1.15+ and rustls.
    pub fn covers_host(&self, host: &str) -> bool {
        let Some(sans) = &self.sans else {
            return false;
        };
        let names = cert::Sans {
            dns: sans
                .iter()
                .filter_map(|s| match s {
                    San::Dns(d) => Some(d.clone()),
                    _ => None,
                })
                .collect(),
            ips: sans
                .iter()
                .filter_map(|s| match s {
                    San::Ip(ip) => Some(*ip),
                    _ => None,
                })
                .collect(),
        };
        cert::host_matches(&names, host)
    }

    /// Where `now` falls in the validity period.
    pub fn time_status(&self, now: OffsetDateTime) -> TimeStatus {
        if now < self.not_before {
            TimeStatus::NotYetValid
        } else if now > self.not_after {
            TimeStatus::Expired
        } else if self.not_after - now < EXPIRY_WARNING {
            TimeStatus::ExpiresSoon
        } else {
            TimeStatus::Valid
        }
    }

    /// Why this certificate cannot serve in `role`; empty when it can. Dates are not
    /// considered here (see [`CertInfo::time_status`]).
    pub fn role_problems(&self, role: Role) -> Vec<String> {
        let mut problems = Vec::new();
        let has = |f: fn(&Eku) -> bool| match &self.eku {
            None => true,
            Some(e) => e.any || f(e),
        };
        let needs_server = matches!(role, Role::Server | Role::Peer);
        let needs_client = matches!(role, Role::Client | Role::Peer);
        if needs_server && !has(|e| e.server_auth) {
            problems.push(format!(
                "no serverAuth extended key usage (it has {}): clients refuse it as a server certificate",
                self.eku_list()
            ));
        }
        if needs_client && !has(|e| e.client_auth) {
            problems.push(format!(
                "no clientAuth extended key usage (it has {}): servers refuse it as a client certificate (etcd logs \"incompatible key usage\", etcdctl sees \"bad certificate\")",
                self.eku_list()
            ));
        }
        if needs_server && self.sans.as_ref().is_none_or(Vec::is_empty) {
            problems.push(
                "no subjectAltName: TLS clients (Go 1.15+, rustls) ignore the CN and accept a server only by its SANs"
                    .to_string(),
            );
        }
        problems
    }

    /// The classic mistakes this certificate shows, as sentences. `label` is how the user
    /// named it (file name); names containing `client`, `peer` or `server` are checked for
    /// that role.
    pub fn warnings(&self, now: OffsetDateTime, label: &str) -> Vec<Warning> {
        let mut w = Vec::new();
        let mut add = |kind: WarningKind, text: String| w.push(Warning { kind, text });
        match self.time_status(now) {
            TimeStatus::Expired => add(
                WarningKind::Time,
                format!(
                    "EXPIRED on {} ({}): every TLS peer refuses it; issue a new one",
                    times::rfc3339(self.not_after),
                    times::relative(now, self.not_after)
                ),
            ),
            TimeStatus::NotYetValid => add(
                WarningKind::Time,
                format!(
                    "not valid yet: valid from {} ({}); check the clocks",
                    times::rfc3339(self.not_before),
                    times::relative(now, self.not_before)
                ),
            ),
            TimeStatus::ExpiresSoon => add(
                WarningKind::Time,
                format!(
                    "expires soon: {} ({})",
                    times::rfc3339(self.not_after),
                    times::relative(now, self.not_after)
                ),
            ),
            TimeStatus::Valid => {}
        }
        let self_issued = self.is_self_issued();
        if self.version == 1 {
            if self_issued {
                add(WarningKind::Other, "X.509 v1 certificate (no extensions, so no CA:TRUE): etcd (Go) and openssl still accept it as a trusted root, but a v3 CA made with `kvd pki init` is unambiguous".to_string());
            } else {
                add(WarningKind::Other, "X.509 v1 certificate (no extensions: no SANs, no key usages): etcd (Go) and kvd accept it only as a client certificate; programs verifying with webpki (most rustls clients and servers) refuse v1 end-entity certificates".to_string());
            }
        } else if self_issued && !self.is_ca() {
            add(WarningKind::Other, "self-signed but CA:TRUE missing (no basicConstraints CA flag): it cannot sign other certificates, and clients must trust this exact certificate".to_string());
        }
        if self.is_ca() {
            if let Some(ku) = &self.key_usage {
                if !ku.contains(&"keyCertSign") {
                    add(WarningKind::Other, "CA:TRUE but keyUsage lacks keyCertSign: verifiers refuse certificates it signs".to_string());
                }
            }
        } else if self.version >= 3 || !self_issued {
            // A certificate restricted to clientAuth needs no SANs: only warn when it could
            // be meant for a server.
            let maybe_server = self.eku.as_ref().is_none_or(|e| e.server_auth || e.any);
            match &self.sans {
                None if !maybe_server => {}
                None => add(WarningKind::Other, format!(
                    "no subjectAltName (a CN-only certificate{}): usable as a client certificate, but Go 1.15+ and rustls clients refuse it as a server or peer certificate",
                    self.common_names.first().map(|cn| format!(", CN={cn}")).unwrap_or_default()
                )),
                Some(sans) => {
                    for cn in &self.common_names {
                        if looks_like_host(cn) && !self.covers_host(cn) {
                            add(WarningKind::Other, format!("CN {cn:?} looks like a host name but is not among the SANs ({}); clients only look at the SANs", self.san_list()));
                        }
                    }
                    for s in sans {
                        if let San::Ip(ip) = s {
                            if ip.is_unspecified() {
                                add(WarningKind::Other, format!("SAN IP:{ip} is a listen address, not one clients connect to: list the member's real addresses"));
                            }
                        }
                    }
                }
            }
            if let Some(ku) = &self.key_usage {
                if !ku.contains(&"digitalSignature") && !self.key.starts_with("RSA") {
                    add(WarningKind::Other, "keyUsage lacks digitalSignature: an ECDSA/Ed25519 key cannot sign TLS handshakes with it".to_string());
                }
            }
        }
        if self.signature.contains("SHA1")
            || self.signature.starts_with("md5")
            || self.signature.starts_with("sha1")
        {
            add(
                WarningKind::Other,
                format!(
                    "signed with {}: Go 1.18+ (etcdctl, etcd) refuses SHA-1 and MD5 signatures",
                    self.signature
                ),
            );
        }
        if let Some(bits) = self.rsa_bits {
            if bits < 2048 {
                add(
                    WarningKind::Other,
                    format!("RSA key of {bits} bits: use at least 2048"),
                );
            }
        }
        let label = label.to_ascii_lowercase();
        let cn = self
            .common_names
            .first()
            .map(|c| c.to_ascii_lowercase())
            .unwrap_or_default();
        for (word, role) in [
            ("client", Role::Client),
            ("peer", Role::Peer),
            ("server", Role::Server),
        ] {
            if !self.can_sign() && (label.contains(word) || cn.contains(word)) {
                for p in self.role_problems(role) {
                    add(
                        WarningKind::Role,
                        format!("looks like a {} certificate, but: {p}", role.name()),
                    );
                }
            }
        }
        w
    }
}

fn looks_like_host(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
        || s.eq_ignore_ascii_case("localhost")
        || (s.contains('.')
            && !s.contains(' ')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_host_follows_gos_rules() {
        let info = CertInfo {
            sans: Some(vec![
                San::Dns("*.example.com".into()),
                San::Ip("10.0.0.1".parse().expect("ip")),
            ]),
            ..sample()
        };
        assert!(info.covers_host("a.example.com"));
        assert!(!info.covers_host("a.b.example.com"));
        assert!(!info.covers_host("example.com"));
        assert!(info.covers_host("[10.0.0.1]"));
        assert!(!info.covers_host("10.0.0.2"));
    }

    fn sample() -> CertInfo {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["x".to_string()]).expect("params");
        let der = params.self_signed(&key).expect("cert").der().clone();
        CertInfo::parse(der).expect("parse")
    }

    #[test]
    fn hosts_look_like_hosts() {
        assert!(looks_like_host("10.0.0.1"));
        assert!(looks_like_host("etcd.example.com"));
        assert!(looks_like_host("localhost"));
        assert!(!looks_like_host("root"));
        assert!(!looks_like_host("kvd CA 1234"));
    }

    #[test]
    fn serial_is_trimmed_hex() {
        assert_eq!(cert::serial_hex(&[0, 0x1a, 0x02]), "1a:02");
        assert_eq!(cert::serial_hex(&[0]), "00");
    }
}
