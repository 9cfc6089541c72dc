//! Transport security of the test clusters: the one place that decides how members talk to
//! each other and how clients reach them.
//!
//! By default every cluster runs with mutual TLS on both the client and the peer listeners
//! (one test CA made with rcgen at start; member certificates name 127.0.0.1 and carry both
//! serverAuth and clientAuth). `KVD_CLUSTER_PLAIN=1` runs the same scenarios over plain http.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The test PKI: files kept for the life of the test process.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    member_cert: PathBuf,
    member_key: PathBuf,
    client_cert: String,
    client_key: String,
    ca_pem: String,
}

fn tls() -> bool {
    std::env::var_os("KVD_CLUSTER_PLAIN").is_none()
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("pki dir");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kvd cluster test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let issue = |cn: &str, ip: bool| {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.distinguished_name.push(DnType::CommonName, cn);
            if ip {
                p.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().expect("ip"))];
            }
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = p.signed_by(&key, &issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (member_pem, member_key_pem) = issue("member", true);
        let (client_cert, client_key) = issue("root", false);
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write pki file");
            path
        };
        let ca_pem = ca_cert.pem();
        Pki {
            ca: write("ca.pem", &ca_pem),
            member_cert: write("member.pem", &member_pem),
            member_key: write("member-key.pem", &member_key_pem),
            client_cert,
            client_key,
            ca_pem,
            _dir: dir,
        }
    })
}

/// Scheme of peer URLs (`--listen-peer-urls`, `--initial-advertise-peer-urls`).
pub fn peer_scheme() -> &'static str {
    if tls() {
        "https"
    } else {
        "http"
    }
}

/// Scheme of client URLs (`--listen-client-urls`, `--advertise-client-urls`).
pub fn client_scheme() -> &'static str {
    if tls() {
        "https"
    } else {
        "http"
    }
}

/// Extra server flags that secure a member: mutual TLS on client and peer listeners.
pub fn member_flags(_dir: &Path, _name: &str) -> Vec<String> {
    if !tls() {
        return Vec::new();
    }
    let p = pki();
    let f = |flag: &str, path: &Path| format!("--{flag}={}", path.display());
    vec![
        f("cert-file", &p.member_cert),
        f("key-file", &p.member_key),
        f("trusted-ca-file", &p.ca),
        "--client-cert-auth".to_string(),
        f("peer-cert-file", &p.member_cert),
        f("peer-key-file", &p.member_key),
        f("peer-trusted-ca-file", &p.ca),
        "--peer-client-cert-auth".to_string(),
    ]
}

/// A gRPC endpoint for the client address `host:port` (lazy: connects on first use).
pub fn endpoint(addr: &str) -> Endpoint {
    let e = Endpoint::from_shared(format!("{}://{addr}", client_scheme()))
        .expect("a loopback address is a valid URI")
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    if !tls() {
        return e;
    }
    let p = pki();
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&p.ca_pem))
        .identity(Identity::from_pem(&p.client_cert, &p.client_key))
        .domain_name("127.0.0.1");
    e.tls_config(config).expect("client TLS configuration")
}
