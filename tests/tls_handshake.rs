//! Real TLS handshakes against kvd's listener TLS (`kvd::tls`): which client certificates
//! are accepted and which are refused with which reason, the peer port's extra checks,
//! kvd's own outgoing configuration, startup errors, and reloading changed files.
//!
//! Certificates are made at test time with rcgen; X.509 v1 certificates, RSA (PKCS#1) and
//! SEC1 keys and a CRL are made with the `openssl` CLI (those tests print a message and
//! pass when openssl is missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kvd::config::{TlsVersion, TransportSecurity};
use kvd::tls::{
    client_config, ListenerKind, PeerIdentity, RejectKind, Rejected, ServerTls, TlsError,
    TlsOptions,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

const STEP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- certificates

/// A CA made with rcgen.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            params,
            key: KeyPair::generate().unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.params.self_signed(&self.key).unwrap().pem()
    }

    /// A certificate for `cn` with `sans`, `ekus`, valid from `days.0` to `days.1` days from
    /// now; returns (cert PEM, key PEM).
    fn issue(
        &self,
        cn: &str,
        sans: &[&str],
        ekus: &[ExtendedKeyUsagePurpose],
        days: (i64, i64),
    ) -> (String, String) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = ekus.to_vec();
        let now = OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

const VALID: (i64, i64) = (-1, 30);
const SERVER: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ServerAuth];
const CLIENT: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];
const BOTH: &[ExtendedKeyUsagePurpose] = &[
    ExtendedKeyUsagePurpose::ServerAuth,
    ExtendedKeyUsagePurpose::ClientAuth,
];

/// A directory of PEM files.
struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes `name.crt` and `name.key`.
    fn pair(&self, name: &str, pair: &(String, String)) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{name}.crt"), &pair.0),
            self.write(&format!("{name}.key"), &pair.1),
        )
    }

    /// Replaces a file atomically (write + rename), as careful operators do.
    fn replace(&self, name: &str, text: &str) {
        let tmp = self.path(&format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }
}

/// The usual set-up: a CA, a server certificate for 127.0.0.1, the CA bundle.
struct Pki {
    files: Files,
    ca: Ca,
    ca_file: PathBuf,
    server: (PathBuf, PathBuf),
}

impl Pki {
    fn new() -> Pki {
        let files = Files::new();
        let ca = Ca::new("kvd test CA");
        let ca_file = files.write("ca.crt", &ca.pem());
        let server = files.pair(
            "server",
            &ca.issue("server", &["127.0.0.1", "localhost"], SERVER, VALID),
        );
        Pki {
            files,
            ca,
            ca_file,
            server,
        }
    }

    /// Client-port TLS requiring client certificates from the CA.
    fn mutual(&self) -> TransportSecurity {
        TransportSecurity {
            cert_file: Some(self.server.0.clone()),
            key_file: Some(self.server.1.clone()),
            client_cert_auth: true,
            trusted_ca_file: Some(self.ca_file.clone()),
            ..TransportSecurity::default()
        }
    }

    fn client(
        &self,
        name: &str,
        cn: &str,
        ekus: &[ExtendedKeyUsagePurpose],
        days: (i64, i64),
    ) -> (PathBuf, PathBuf) {
        self.files.pair(name, &self.ca.issue(cn, &[], ekus, days))
    }
}

// ---------------------------------------------------------------- openssl

fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: the openssl command is not installed");
    }
    ok
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An RSA key in PKCS#1 (`RSA PRIVATE KEY`), as OpenSSL 1.x and the guides write it.
fn openssl_pkcs1_key(dir: &Path, name: &str) -> PathBuf {
    let ok = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out", name, "2048"])
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        openssl(dir, &["genrsa", "-out", name, "2048"]);
    }
    let p = dir.join(name);
    assert!(std::fs::read_to_string(&p)
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    p
}

/// Signs a certificate for `key` with `ca`/`ca_key` the way the guides do
/// (`openssl x509 -req`); with `ext` (extension-file text) a v3 certificate, else v1.
fn openssl_sign(
    dir: &Path,
    key: &str,
    subj: &str,
    ca: &str,
    ca_key: &str,
    ext: Option<&str>,
    out: &str,
) -> PathBuf {
    let csr = format!("{out}.csr");
    openssl(
        dir,
        &[
            "req", "-new", "-sha256", "-key", key, "-subj", subj, "-out", &csr,
        ],
    );
    let mut args = vec![
        "x509",
        "-req",
        "-days",
        "30",
        "-sha256",
        "-in",
        &csr,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        out,
    ];
    let ext_file = format!("{out}.ext");
    if let Some(text) = ext {
        std::fs::write(dir.join(&ext_file), text).unwrap();
        args.extend(["-extfile", &ext_file]);
    }
    openssl(dir, &args);
    dir.join(out)
}

// ---------------------------------------------------------------- server and clients

type Outcome = Result<Option<PeerIdentity>, Rejected>;

/// A listener running `ServerTls::accept` for each connection; accepted connections get
/// `hello` and are closed.
struct Server {
    addr: SocketAddr,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(tls: ServerTls) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((tcp, remote)) = listener.accept().await {
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tls.accept(tcp, remote).await {
                        Ok((mut stream, identity)) => {
                            let _ = tx.send(Ok(identity));
                            let _ = stream.write_all(b"hello").await;
                            let _ = stream.shutdown().await;
                        }
                        Err(rejected) => {
                            let _ = tx.send(Err(rejected));
                        }
                    }
                });
            }
        });
        Server {
            addr,
            outcomes,
            task,
        }
    }

    async fn outcome(&mut self) -> Outcome {
        timeout(STEP, self.outcomes.recv())
            .await
            .expect("the server decides within 10 s")
            .expect("the server runs")
    }

    /// Dials with `client`; returns the server's verdict and what the client saw.
    async fn dial(&mut self, client: ClientConfig) -> (Outcome, Result<Seen, String>) {
        let seen = dial(self.addr, client).await;
        (self.outcome().await, seen)
    }

    async fn expect_accepted(&mut self, client: ClientConfig) -> (Option<PeerIdentity>, Seen) {
        let (outcome, seen) = self.dial(client).await;
        let identity = outcome.expect("accepted");
        let seen = seen.expect("the client completes");
        assert_eq!(seen.data, b"hello");
        (identity, seen)
    }

    async fn expect_rejected(&mut self, client: ClientConfig, kind: RejectKind) -> Rejected {
        let (outcome, seen) = self.dial(client).await;
        let rejected = outcome.expect_err("refused");
        assert_eq!(rejected.kind, kind, "{rejected}");
        assert!(seen.is_err(), "the client must not get data: {seen:?}");
        assert!(rejected.to_string().starts_with(&format!(
            "rejected connection from \"{}\" (error ",
            rejected.remote
        )));
        rejected
    }
}

/// What a client saw of an accepted connection.
#[derive(Debug)]
struct Seen {
    server_cert: Vec<u8>,
    data: Vec<u8>,
}

async fn dial(addr: SocketAddr, client: ClientConfig) -> Result<Seen, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let connector = TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = timeout(STEP, connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let server_cert = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let mut data = Vec::new();
    timeout(STEP, stream.read_to_end(&mut data))
        .await
        .map_err(|_| "read timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Seen { server_cert, data })
}

/// A test client trusting `ca` (for the server's certificate), presenting `identity`.
fn client(ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> ClientConfig {
    client_with(ca, identity, rustls::DEFAULT_VERSIONS)
}

fn client_with(
    ca: &Path,
    identity: Option<&(PathBuf, PathBuf)>,
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_protocol_versions(versions).with_root_certificates(roots);
    match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            // Not `with_client_auth_cert`: it refuses X.509 v1 certificates.
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            let key = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(CertifiedKey::new(
                chain, key,
            ))))
        }
    }
}

fn server_tls(kind: ListenerKind, security: &TransportSecurity, data_dir: &Path) -> ServerTls {
    ServerTls::new(
        kind,
        security,
        &TlsOptions::default(),
        data_dir,
        &["127.0.0.1".to_string()],
    )
    .expect("TLS set-up")
}

fn der_of(pem_file: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem_file).unwrap().to_vec()
}

// ---------------------------------------------------------------- client certificates

#[tokio::test]
async fn good_and_no_eku_client_certificates_are_accepted() {
    let pki = Pki::new();
    let mut server = Server::start(server_tls(
        ListenerKind::Client,
        &pki.mutual(),
        pki.files.dir.path(),
    ))
    .await;
    let alice = pki.client("alice", "alice", CLIENT, VALID);
    let (identity, seen) = server
        .expect_accepted(client(&pki.ca_file, Some(&alice)))
        .await;
    assert_eq!(
        identity,
        Some(PeerIdentity {
            common_name: Some("alice".to_string()),
            subject: "CN=alice".to_string()
        })
    );
    assert_eq!(seen.server_cert, der_of(&pki.server.0));
    // No extended key usage at all: good for any use (guide 002's certificates).
    let plain = pki.client("plain", "plain", &[], VALID);
    let (identity, _) = server
        .expect_accepted(client(&pki.ca_file, Some(&plain)))
        .await;
    assert_eq!(identity.unwrap().common_name.as_deref(), Some("plain"));
    // Over TLS 1.2 too.
    let tls12 = client_with(&pki.ca_file, Some(&alice), &[&rustls::version::TLS12]);
    server.expect_accepted(tls12).await;
}

#[tokio::test]
async fn a_trusted_ca_alone_requires_client_certificates() {
    let pki = Pki::new();
    let security = TransportSecurity {
        client_cert_auth: false,
        ..pki.mutual()
    };
    let tls = server_tls(ListenerKind::Client, &security, pki.files.dir.path());
    assert!(tls.requires_client_cert());
    let mut server = Server::start(tls).await;
    let r = server
        .expect_rejected(client(&pki.ca_file, None), RejectKind::NoCertificate)
        .await;
    assert_eq!(r.reason, "tls: client didn't provide a certificate");
    assert_eq!(r.subject, None);
    assert_eq!(
        r.to_string(),
        format!(
            "rejected connection from \"{}\" (error \"tls: client didn't provide a certificate\", ServerName \"\")",
            r.remote
        )
    );
}

#[tokio::test]
async fn without_a_trusted_ca_no_client_certificate_is_asked() {
    let pki = Pki::new();
    let security = TransportSecurity {
        cert_file: Some(pki.server.0.clone()),
        key_file: Some(pki.server.1.clone()),
        ..TransportSecurity::default()
    };
    let tls = server_tls(ListenerKind::Client, &security, pki.files.dir.path());
    assert!(!tls.requires_client_cert());
    let mut server = Server::start(tls).await;
    let (identity, _) = server.expect_accepted(client(&pki.ca_file, None)).await;
    assert_eq!(identity, None);
}

#[tokio::test]
async fn refused_client_certificates_say_why() {
    let pki = Pki::new();
    let mut server = Server::start(server_tls(
        ListenerKind::Client,
        &pki.mutual(),
        pki.files.dir.path(),
    ))
    .await;

    let other_ca = Ca::new("another CA");
    let eve = pki
        .files
        .pair("eve", &other_ca.issue("eve", &[], CLIENT, VALID));
    let r = server
        .expect_rejected(
            client(&pki.ca_file, Some(&eve)),
            RejectKind::UnknownAuthority,
        )
        .await;
    assert_eq!(
        r.reason,
        "tls: failed to verify client certificate: x509: certificate signed by unknown authority"
    );
    assert_eq!(r.subject.as_deref(), Some("CN=eve"));
    assert!(r.to_string().contains("subject \"CN=eve\""), "{r}");

    let srv = pki.client("srv", "srv-only", SERVER, VALID);
    let r = server
        .expect_rejected(
            client(&pki.ca_file, Some(&srv)),
            RejectKind::IncompatibleUsage,
        )
        .await;
    assert_eq!(
        r.reason,
        "tls: failed to verify client certificate: x509: certificate specifies an incompatible key usage"
    );

    let old = pki.client("old", "old", CLIENT, (-30, -1));
    let r = server
        .expect_rejected(client(&pki.ca_file, Some(&old)), RejectKind::Expired)
        .await;
    assert!(
        r.reason.starts_with(
            "tls: failed to verify client certificate: x509: certificate has expired or is not yet valid: current time "
        ) && r.reason.contains(" is after "),
        "{}",
        r.reason
    );

    let early = pki.client("early", "early", CLIENT, (1, 30));
    let r = server
        .expect_rejected(client(&pki.ca_file, Some(&early)), RejectKind::NotYetValid)
        .await;
    assert!(r.reason.contains(" is before "), "{}", r.reason);

    // Over TLS 1.2 the same.
    let tls12 = client_with(&pki.ca_file, Some(&eve), &[&rustls::version::TLS12]);
    server
        .expect_rejected(tls12, RejectKind::UnknownAuthority)
        .await;
}

#[tokio::test]
async fn plaintext_to_a_tls_port_is_refused() {
    let pki = Pki::new();
    let mut server = Server::start(server_tls(
        ListenerKind::Client,
        &pki.mutual(),
        pki.files.dir.path(),
    ))
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    timeout(STEP, tcp.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.0 400 Bad Request"));
    let r = server.outcome().await.unwrap_err();
    assert_eq!(r.kind, RejectKind::NotTls);
    assert_eq!(
        r.reason,
        "tls: first record does not look like a TLS handshake"
    );
}

#[tokio::test]
async fn a_client_refusing_the_server_certificate_is_logged_as_a_remote_error() {
    let pki = Pki::new();
    let mut server = Server::start(server_tls(
        ListenerKind::Client,
        &pki.mutual(),
        pki.files.dir.path(),
    ))
    .await;
    let stranger = Files::new();
    let other_ca = stranger.write("other.crt", &Ca::new("unrelated").pem());
    let r = server
        .expect_rejected(client(&other_ca, None), RejectKind::RemoteAlert)
        .await;
    assert!(r.reason.starts_with("remote error: tls: "), "{}", r.reason);
}

#[tokio::test]
async fn openssl_v1_certificates_and_crls_work_as_in_etcd() {
    if !have_openssl() {
        return;
    }
    let pki = Pki::new();
    let dir = pki.files.dir.path();
    // Guide 002: a v1 root (`x509 -req -signkey`) and a v1 client certificate without CN.
    let root_key = openssl_pkcs1_key(dir, "root.key");
    assert!(root_key.exists());
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-sha256",
            "-key",
            "root.key",
            "-out",
            "root.csr",
            "-subj",
            "/C=CN/ST=CQ/L=YB/O=BC/OU=ZWC/CN=CA",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "3650",
            "-sha256",
            "-signkey",
            "root.key",
            "-in",
            "root.csr",
            "-out",
            "root.cert",
        ],
    );
    openssl_pkcs1_key(dir, "client.key");
    let client_cert = openssl_sign(
        dir,
        "client.key",
        "/C=CN/ST=CQ/L=YB/O=BC/OU=ZWC",
        "root.cert",
        "root.key",
        None,
        "client.cert",
    );
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&client_cert)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"));

    let security = TransportSecurity {
        trusted_ca_file: Some(dir.join("root.cert")),
        ..pki.mutual()
    };
    let mut server = Server::start(server_tls(ListenerKind::Client, &security, dir)).await;
    let v1 = (client_cert.clone(), dir.join("client.key"));
    let (identity, _) = server
        .expect_accepted(client(&pki.ca_file, Some(&v1)))
        .await;
    let identity = identity.unwrap();
    assert_eq!(identity.common_name, None);
    assert_eq!(identity.subject, "OU=ZWC,O=BC,L=YB,ST=CQ,C=CN");
    let tls12 = client_with(&pki.ca_file, Some(&v1), &[&rustls::version::TLS12]);
    server.expect_accepted(tls12).await;

    // A CRL made by `openssl ca -gencrl` revokes a certificate of the (rcgen) CA.
    std::fs::write(dir.join("ca.key"), pki.ca.key.serialize_pem()).unwrap();
    let bob = pki.client("bob", "bob", CLIENT, VALID);
    let carol = pki.client("carol", "carol", CLIENT, VALID);
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n",
    )
    .unwrap();
    let bob_cert = bob.0.to_str().unwrap().to_string();
    openssl(
        dir,
        &[
            "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-revoke",
            &bob_cert,
        ],
    );
    openssl(
        dir,
        &[
            "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-gencrl", "-out",
            "crl.pem",
        ],
    );
    let security = TransportSecurity {
        crl_file: Some(dir.join("crl.pem")),
        ..pki.mutual()
    };
    let mut server = Server::start(server_tls(ListenerKind::Client, &security, dir)).await;
    let r = server
        .expect_rejected(client(&pki.ca_file, Some(&bob)), RejectKind::Revoked)
        .await;
    assert!(
        r.reason.starts_with(
            "tls: failed to verify client certificate: x509: certificate revoked by CRL"
        ),
        "{}",
        r.reason
    );
    assert_eq!(r.subject.as_deref(), Some("CN=bob"));
    server
        .expect_accepted(client(&pki.ca_file, Some(&carol)))
        .await;
}

#[tokio::test]
async fn server_keys_in_pkcs1_sec1_and_pkcs8_all_load() {
    if !have_openssl() {
        return;
    }
    let pki = Pki::new();
    let dir = pki.files.dir.path();
    std::fs::write(dir.join("ca.key"), pki.ca.key.serialize_pem()).unwrap();
    let ext = Some("subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n");
    openssl_pkcs1_key(dir, "rsa.key");
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.key",
        ],
    );
    assert!(std::fs::read_to_string(dir.join("ec.key"))
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let rsa = openssl_sign(
        dir, "rsa.key", "/CN=rsa", "ca.crt", "ca.key", ext, "rsa.crt",
    );
    let ec = openssl_sign(dir, "ec.key", "/CN=ec", "ca.crt", "ca.key", ext, "ec.crt");
    assert!(std::fs::read_to_string(&pki.server.1)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    for (cert, key) in [
        (rsa, dir.join("rsa.key")),
        (ec, dir.join("ec.key")),
        pki.server.clone(),
    ] {
        let security = TransportSecurity {
            cert_file: Some(cert.clone()),
            key_file: Some(key),
            ..TransportSecurity::default()
        };
        let mut server = Server::start(server_tls(ListenerKind::Client, &security, dir)).await;
        let (_, seen) = server.expect_accepted(client(&pki.ca_file, None)).await;
        assert_eq!(seen.server_cert, der_of(&cert));
    }
}

// ---------------------------------------------------------------- peer port

fn peer_security(pki: &Pki, member: &(PathBuf, PathBuf)) -> TransportSecurity {
    TransportSecurity {
        cert_file: Some(member.0.clone()),
        key_file: Some(member.1.clone()),
        client_cert_auth: true,
        trusted_ca_file: Some(pki.ca_file.clone()),
        ..TransportSecurity::default()
    }
}

#[tokio::test]
async fn peer_port_checks_allowed_cn_and_the_remote_address() {
    let pki = Pki::new();
    let dir = pki.files.dir.path();
    let member = pki.files.pair(
        "member1",
        &pki.ca.issue("member1", &["127.0.0.1"], BOTH, VALID),
    );
    let elsewhere = pki.files.pair(
        "member2",
        &pki.ca.issue("member2", &["10.0.0.2"], BOTH, VALID),
    );
    let named = pki.files.pair(
        "member3",
        &pki.ca.issue("member3", &["localhost"], BOTH, VALID),
    );

    let mut server = Server::start(server_tls(
        ListenerKind::Peer,
        &peer_security(&pki, &member),
        dir,
    ))
    .await;
    let (identity, _) = server
        .expect_accepted(client(&pki.ca_file, Some(&member)))
        .await;
    assert_eq!(identity.unwrap().common_name.as_deref(), Some("member1"));
    let r = server
        .expect_rejected(
            client(&pki.ca_file, Some(&elsewhere)),
            RejectKind::AddressMismatch,
        )
        .await;
    assert_eq!(
        r.reason,
        "x509: certificate is valid for 10.0.0.2, not 127.0.0.1"
    );
    assert_eq!(r.subject.as_deref(), Some("CN=member2"));
    // A DNS SAN that resolves to the remote address is enough.
    server
        .expect_accepted(client(&pki.ca_file, Some(&named)))
        .await;

    let skip = TransportSecurity {
        skip_client_san_verification: true,
        ..peer_security(&pki, &member)
    };
    let mut server = Server::start(server_tls(ListenerKind::Peer, &skip, dir)).await;
    server
        .expect_accepted(client(&pki.ca_file, Some(&elsewhere)))
        .await;

    let only_member1 = TransportSecurity {
        allowed_cn: Some("member1".to_string()),
        ..peer_security(&pki, &member)
    };
    let mut server = Server::start(server_tls(ListenerKind::Peer, &only_member1, dir)).await;
    server
        .expect_accepted(client(&pki.ca_file, Some(&member)))
        .await;
    let r = server
        .expect_rejected(client(&pki.ca_file, Some(&named)), RejectKind::NotAllowed)
        .await;
    assert!(
        r.reason
            .contains("CN \"member3\" is not the allowed CN \"member1\""),
        "{}",
        r.reason
    );

    let by_host = TransportSecurity {
        allowed_hostname: vec!["localhost".to_string()],
        ..peer_security(&pki, &member)
    };
    let mut server = Server::start(server_tls(ListenerKind::Peer, &by_host, dir)).await;
    server
        .expect_accepted(client(&pki.ca_file, Some(&named)))
        .await;
    server
        .expect_rejected(client(&pki.ca_file, Some(&member)), RejectKind::NotAllowed)
        .await;

    let both = TransportSecurity {
        allowed_cn: Some("a".to_string()),
        allowed_hostname: vec!["b".to_string()],
        ..peer_security(&pki, &member)
    };
    let err =
        ServerTls::new(ListenerKind::Peer, &both, &TlsOptions::default(), dir, &[]).unwrap_err();
    assert!(err.to_string().contains("mutually exclusive"), "{err}");
}

#[tokio::test]
async fn members_dial_each_other_with_kvds_client_config() {
    let pki = Pki::new();
    let dir = pki.files.dir.path();
    let m1 = pki
        .files
        .pair("m1", &pki.ca.issue("m1", &["127.0.0.1"], BOTH, VALID));
    let m2 = pki
        .files
        .pair("m2", &pki.ca.issue("m2", &["127.0.0.1"], BOTH, VALID));
    let tls1 = server_tls(ListenerKind::Peer, &peer_security(&pki, &m1), dir);
    let mut server = Server::start(tls1).await;
    let m2_dials = client_config(
        ListenerKind::Peer,
        &peer_security(&pki, &m2),
        &TlsOptions::default(),
        dir,
        &[],
    )
    .unwrap();
    let (outcome, seen) = server.dial(m2_dials.clone()).await;
    assert_eq!(outcome.unwrap().unwrap().common_name.as_deref(), Some("m2"));
    assert_eq!(seen.unwrap().data, b"hello");

    // A member whose certificate does not name the dialed address is refused by the dialer.
    let wrong = pki
        .files
        .pair("m3", &pki.ca.issue("m3", &["10.9.9.9"], BOTH, VALID));
    let mut server = Server::start(server_tls(
        ListenerKind::Peer,
        &peer_security(&pki, &wrong),
        dir,
    ))
    .await;
    let (outcome, seen) = server.dial(m2_dials).await;
    assert!(seen
        .unwrap_err()
        .contains("x509: certificate is valid for 10.9.9.9, not 127.0.0.1"));
    assert_eq!(outcome.unwrap_err().kind, RejectKind::RemoteAlert);
}

#[tokio::test]
async fn auto_tls_members_accept_each_other_without_verification() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let auto = TransportSecurity {
        auto_tls: true,
        ..TransportSecurity::default()
    };
    let hosts = ["127.0.0.1:2380".to_string()];
    let a = ServerTls::new(
        ListenerKind::Peer,
        &auto,
        &TlsOptions::default(),
        a_dir.path(),
        &hosts,
    )
    .unwrap();
    assert!(!a.requires_client_cert());
    assert!(a_dir.path().join("fixtures/peer/cert.pem").exists());
    assert!(a_dir.path().join("fixtures/peer/key.pem").exists());
    let b = ServerTls::new(
        ListenerKind::Peer,
        &auto,
        &TlsOptions::default(),
        b_dir.path(),
        &hosts,
    )
    .unwrap();
    let mut server = Server::start(a).await;
    let (outcome, seen) = server.dial(b.client_config().as_ref().clone()).await;
    // b presents its self-signed certificate (a does not ask for one) and skips verifying a's.
    assert_eq!(outcome.unwrap(), None);
    assert_eq!(seen.unwrap().data, b"hello");
}

// ---------------------------------------------------------------- startup errors

#[tokio::test]
async fn startup_errors_name_the_setting_the_file_and_the_problem() {
    let pki = Pki::new();
    let dir = pki.files.dir.path();
    let new = |s: &TransportSecurity| -> TlsError {
        ServerTls::new(ListenerKind::Client, s, &TlsOptions::default(), dir, &[]).unwrap_err()
    };
    let missing = TransportSecurity {
        cert_file: Some(dir.join("nope.crt")),
        ..pki.mutual()
    };
    let e = new(&missing).to_string();
    assert!(
        e.starts_with("--cert-file / client-transport-security.cert-file"),
        "{e}"
    );
    assert!(
        e.contains("nope.crt") && e.contains("does not exist"),
        "{e}"
    );

    let other = pki.files.pair(
        "other",
        &pki.ca.issue("other", &["127.0.0.1"], SERVER, VALID),
    );
    let mismatch = TransportSecurity {
        key_file: Some(other.1.clone()),
        ..pki.mutual()
    };
    assert!(matches!(new(&mismatch), TlsError::KeyMismatch { .. }));

    let garbage = pki.files.write("garbage.crt", "not a certificate\n");
    let e = new(&TransportSecurity {
        cert_file: Some(garbage),
        ..pki.mutual()
    });
    assert!(e.to_string().contains("not a PEM file"), "{e}");

    let key_only = TransportSecurity {
        cert_file: Some(pki.server.1.clone()),
        ..pki.mutual()
    };
    let e = new(&key_only).to_string();
    assert!(
        e.contains("no certificate in the file (it holds a private key)"),
        "{e}"
    );

    let empty_bundle = TransportSecurity {
        trusted_ca_file: Some(pki.server.1.clone()),
        ..pki.mutual()
    };
    let e = new(&empty_bundle).to_string();
    assert!(
        e.starts_with("--trusted-ca-file / client-transport-security.trusted-ca-file"),
        "{e}"
    );
    assert!(e.contains("the CA bundle holds no certificate"), "{e}");

    let bad_crl = TransportSecurity {
        crl_file: Some(pki.files.write(
            "bad.crl",
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )),
        ..pki.mutual()
    };
    let e = new(&bad_crl).to_string();
    assert!(
        e.starts_with("--client-crl-file / client-transport-security.crl-file"),
        "{e}"
    );
    assert!(e.contains("bad certificate revocation list"), "{e}");

    let client_only = pki.files.pair(
        "clientonly",
        &pki.ca.issue("c", &["127.0.0.1"], CLIENT, VALID),
    );
    let e = new(&TransportSecurity {
        cert_file: Some(client_only.0),
        key_file: Some(client_only.1),
        ..pki.mutual()
    })
    .to_string();
    assert!(e.contains("without serverAuth"), "{e}");

    let tls13_only = TlsOptions {
        min_version: Some(TlsVersion::Tls13),
        cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string()],
        ..TlsOptions::default()
    };
    let e = ServerTls::new(ListenerKind::Client, &pki.mutual(), &tls13_only, dir, &[]).unwrap_err();
    assert!(e.to_string().contains("only TLS1.3"), "{e}");
}

// ---------------------------------------------------------------- reload

/// Dials until the server presents `want` (or 10 s pass).
async fn wait_for_cert(server: &mut Server, client: &ClientConfig, want: &[u8]) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (outcome, seen) = server.dial(client.clone()).await;
        outcome.expect("accepted");
        if seen.unwrap().server_cert == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not picked up within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn changed_certificate_files_are_picked_up_and_broken_ones_ignored() {
    let pki = Pki::new();
    let f = &pki.files;
    let security = TransportSecurity {
        cert_file: Some(f.path("live.crt")),
        key_file: Some(f.path("live.key")),
        ..TransportSecurity::default()
    };
    let a = pki.ca.issue("server-a", &["127.0.0.1"], SERVER, VALID);
    let b = pki.ca.issue("server-b", &["127.0.0.1"], SERVER, VALID);
    let c = pki.ca.issue("server-c", &["127.0.0.1"], SERVER, VALID);
    f.pair("live", &a);
    let tls = server_tls(ListenerKind::Client, &security, f.dir.path());
    let shutdown = CancellationToken::new();
    let reloader = tls.spawn_reloader(shutdown.clone());
    let mut server = Server::start(tls.clone()).await;
    let anyone = client(&pki.ca_file, None);
    let der = |pem: &str| {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };

    let (_, seen) = server.expect_accepted(anyone.clone()).await;
    assert_eq!(seen.server_cert, der(&a.0));

    f.replace("live.key", &b.1);
    f.replace("live.crt", &b.0);
    wait_for_cert(&mut server, &anyone, &der(&b.0)).await;

    // A broken certificate: the running set stays (whenever the watcher looks).
    f.replace(
        "live.crt",
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    );
    assert!(tls.reload_now().is_err());
    let (_, seen) = server.expect_accepted(anyone.clone()).await;
    assert_eq!(seen.server_cert, der(&b.0));
    // A key that belongs to another certificate: also kept out.
    f.replace("live.crt", &c.0);
    assert!(matches!(
        tls.reload_now(),
        Err(TlsError::KeyMismatch { .. })
    ));
    let (_, seen) = server.expect_accepted(anyone.clone()).await;
    assert_eq!(seen.server_cert, der(&b.0));

    // The watcher survives the broken states and takes the next good set.
    f.replace("live.key", &c.1);
    wait_for_cert(&mut server, &anyone, &der(&c.0)).await;

    shutdown.cancel();
    timeout(STEP, reloader).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_changed_ca_bundle_takes_effect() {
    let pki = Pki::new();
    let f = &pki.files;
    let bundle = f.write("bundle.crt", &pki.ca.pem());
    let security = TransportSecurity {
        trusted_ca_file: Some(bundle),
        ..pki.mutual()
    };
    let tls = server_tls(ListenerKind::Client, &security, f.dir.path());
    let mut server = Server::start(tls.clone()).await;
    let new_ca = Ca::new("next CA");
    let old_client = pki.client("old-client", "old", CLIENT, VALID);
    let new_client = f.pair("new-client", &new_ca.issue("new", &[], CLIENT, VALID));
    server
        .expect_accepted(client(&pki.ca_file, Some(&old_client)))
        .await;
    server
        .expect_rejected(
            client(&pki.ca_file, Some(&new_client)),
            RejectKind::UnknownAuthority,
        )
        .await;

    f.replace("bundle.crt", &new_ca.pem());
    tls.reload_now().unwrap();
    server
        .expect_accepted(client(&pki.ca_file, Some(&new_client)))
        .await;
    server
        .expect_rejected(
            client(&pki.ca_file, Some(&old_client)),
            RejectKind::UnknownAuthority,
        )
        .await;

    // An empty bundle is refused and the last good one kept.
    f.replace("bundle.crt", "");
    assert!(tls.reload_now().is_err());
    server
        .expect_accepted(client(&pki.ca_file, Some(&new_client)))
        .await;
}

/// A CRL of `ca` revoking `serials` (PEM).
fn crl_pem(ca: &Ca, serials: &[&[u8]]) -> String {
    let now = OffsetDateTime::now_utc();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(s),
                revocation_time: now - time::Duration::hours(1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    params
        .signed_by(&Issuer::from_params(&ca.params, &ca.key))
        .unwrap()
        .pem()
        .unwrap()
}

#[tokio::test]
async fn a_changed_crl_revokes_without_restart() {
    let pki = Pki::new();
    let f = &pki.files;
    let crl = f.write("live.crl", &crl_pem(&pki.ca, &[&[0x01]]));
    let security = TransportSecurity {
        crl_file: Some(crl),
        ..pki.mutual()
    };
    let tls = server_tls(ListenerKind::Client, &security, f.dir.path());
    let shutdown = CancellationToken::new();
    let reloader = tls.spawn_reloader(shutdown.clone());
    let mut server = Server::start(tls).await;
    let dan = {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "dan");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x42, 0x42]));
        let key = KeyPair::generate().unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(&pki.ca.params, &pki.ca.key))
            .unwrap();
        f.pair("dan", &(cert.pem(), key.serialize_pem()))
    };
    server
        .expect_accepted(client(&pki.ca_file, Some(&dan)))
        .await;

    f.replace("live.crl", &crl_pem(&pki.ca, &[&[0x42, 0x42]]));
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (outcome, _) = server.dial(client(&pki.ca_file, Some(&dan))).await;
        match outcome {
            Err(r) => {
                assert_eq!(r.kind, RejectKind::Revoked, "{r}");
                break;
            }
            Ok(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "the new CRL was not picked up within 10 s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    timeout(STEP, reloader).await.unwrap().unwrap();
}
