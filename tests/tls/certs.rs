//! Certificates made at test time with rcgen (fast, in-process, ECDSA P-256): CAs, server,
//! client and peer certificates with chosen names, usages, validity and serials, and CRLs.
//! The guides' own certificates are made by their own commands in `guides.rs`; this module
//! serves the refusal, peer, rotation and endpoint tests. Also: what certificate a TLS port
//! serves, read with `openssl s_client`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::harness::{run, CMD};

/// serverAuth only.
pub const SERVER: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ServerAuth];
/// clientAuth only.
pub const CLIENT: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];
/// serverAuth and clientAuth (peer certificates; server certificates etcd's gateway needs).
pub const BOTH: &[ExtendedKeyUsagePurpose] = &[
    ExtendedKeyUsagePurpose::ServerAuth,
    ExtendedKeyUsagePurpose::ClientAuth,
];

/// A certificate file and its key file.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// What to put in one certificate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Subject common name.
    pub cn: String,
    /// SANs: IP addresses become IP SANs, anything else DNS SANs.
    pub sans: Vec<String>,
    /// Extended key usages (empty: no EKU extension).
    pub ekus: Vec<ExtendedKeyUsagePurpose>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Serial number.
    pub serial: u64,
}

impl Spec {
    /// A certificate for `cn` valid from a day ago for 30 days, serial `serial`.
    pub fn new(cn: &str, sans: &[&str], ekus: &[ExtendedKeyUsagePurpose], serial: u64) -> Spec {
        let now = OffsetDateTime::now_utc();
        Spec {
            cn: cn.to_string(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            ekus: ekus.to_vec(),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(30),
            serial,
        }
    }

    /// The same with another validity period.
    pub fn valid(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Spec {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }
}

/// A certificate authority made with rcgen; its certificate is written to `<name>.crt`.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate file.
    pub cert: PathBuf,
}

impl Ca {
    /// A new CA with common name `cn`, written to `dir/<name>.crt`.
    pub fn new(dir: &Path, name: &str, cn: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(3650);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(SerialNumber::from(1u64));
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("self-sign CA").pem();
        let cert = dir.join(format!("{name}.crt"));
        std::fs::write(&cert, pem).expect("write CA");
        Ca { params, key, cert }
    }

    /// The PEM text of a certificate for `spec` and its key (not written anywhere).
    pub fn issue_pem(&self, spec: &Spec) -> (String, String) {
        let mut params = CertificateParams::new(spec.sans.clone()).expect("leaf params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, &spec.cn);
        params.extended_key_usages = spec.ekus.clone();
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.serial_number = Some(SerialNumber::from(spec.serial));
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    }

    /// Issues a certificate for `spec` into `dir/<name>.crt` and `dir/<name>.key`.
    pub fn issue(&self, dir: &Path, name: &str, spec: &Spec) -> Pair {
        let (cert_pem, key_pem) = self.issue_pem(spec);
        let pair = Pair {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&pair.cert, cert_pem).expect("write cert");
        std::fs::write(&pair.key, key_pem).expect("write key");
        pair
    }

    /// A CRL signed by this CA revoking `serials`, written to `dir/<name>.pem`.
    pub fn crl(&self, dir: &Path, name: &str, serials: &[u64]) -> PathBuf {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(30),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - Duration::hours(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        let crl = params.signed_by(&issuer).expect("sign CRL");
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, crl.pem().expect("CRL PEM")).expect("write CRL");
        path
    }
}

/// A fixed UTC date at midnight.
pub fn date(year: i32, month: u8, day: u8) -> OffsetDateTime {
    let month = time::Month::try_from(month).expect("month");
    time::Date::from_calendar_date(year, month, day)
        .expect("date")
        .midnight()
        .assume_utc()
}

/// The subject and serial (`openssl x509 -subject -serial` lines, e.g. `subject=CN=a` and
/// `serial=03E9`) of the certificate the TLS port at `addr` serves, or `None` when no
/// certificate could be read.
pub fn served_cert(addr: &str) -> Option<(String, String)> {
    let script = format!(
        "openssl s_client -connect {addr} </dev/null 2>/dev/null \
         | openssl x509 -noout -subject -serial -nameopt RFC2253"
    );
    let mut c = Command::new("bash");
    c.arg("-c").arg(script);
    let out = run(c, CMD);
    let mut subject = None;
    let mut serial = None;
    for l in out.stdout.lines() {
        if let Some(s) = l.strip_prefix("subject=") {
            subject = Some(s.trim().to_string());
        }
        if let Some(s) = l.strip_prefix("serial=") {
            serial = Some(s.trim().to_string());
        }
    }
    Some((subject?, serial?))
}

/// What `openssl x509 -noout -subject -ext subjectAltName,extendedKeyUsage` says about the
/// certificate the TLS port at `addr` serves (empty when none could be read).
pub fn served_text(addr: &str) -> String {
    let script = format!(
        "openssl s_client -connect {addr} </dev/null 2>/dev/null \
         | openssl x509 -noout -subject -ext subjectAltName,extendedKeyUsage"
    );
    let mut c = Command::new("bash");
    c.arg("-c").arg(script);
    run(c, CMD).stdout
}

/// `serial` as `openssl x509 -serial` prints it (upper-case hex, even number of digits).
pub fn openssl_serial(serial: u64) -> String {
    let hex = format!("{serial:X}");
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    }
}
