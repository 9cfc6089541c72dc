//! The live part of `kvd pki check --endpoints`: a real TLS handshake (rustls, ALPN h2 and
//! http/1.1) with the given CA, certificate and key, then one exchange of application data,
//! and the exact reason when anything fails. The server's certificate is judged by
//! `x509`, as kvd's own dials judge it (X.509 v1 certificates included):
//! - the server certificate is not valid for the host (names the host, lists the SANs),
//!   issued by an unknown CA, expired, or lacks serverAuth;
//! - the server refused our client certificate, or wanted one and none was given;
//! - the server does not speak TLS on that port, or cannot be reached.
//!
//! In TLS 1.3 a server rejects a client certificate only after the client has finished its
//! side of the handshake, so the handshake "succeeds" and the refusal arrives as an alert on
//! the first read: the probe therefore always reads application data before declaring
//! success. Uses blocking sockets with timeouts; no async runtime needed.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    OtherError, SignatureScheme, StreamOwned,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::certinfo::{CertInfo, Role, TimeStatus};
use super::finding::Finding;
use super::times;
use crate::x509::{sig, Failure, TrustStore};

/// What to connect with.
#[derive(Debug)]
pub struct ProbeConfig {
    /// Trusted CA certificates (`--cacert`).
    pub roots: Vec<CertificateDer<'static>>,
    /// Their subjects, for messages.
    pub root_names: Vec<String>,
    /// Our client certificate chain and key (`--cert`, `--key`), if any.
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Our client certificate, parsed, to explain a refusal.
    pub client_info: Option<CertInfo>,
    /// How `--cacert` is named in messages.
    pub ca_label: String,
    /// How `--cert` is named in messages.
    pub cert_label: String,
    /// Connect and read timeout.
    pub timeout: Duration,
}

/// What happened during the handshake, as seen by our verifier and certificate resolver.
#[derive(Debug, Default)]
struct Record {
    server_chain: Vec<CertificateDer<'static>>,
    client_cert_requested: bool,
    client_cert_sent: bool,
    ca_hints: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Record>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        // A poisoned lock only means a panic elsewhere; the record is still readable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Judges the server's certificate as kvd's own dials do ([`TrustStore::verify_server`]),
/// and remembers its chain so failures can name its SANs and issuer.
#[derive(Debug)]
struct RecordingVerifier {
    trust: TrustStore,
    algs: WebPkiSupportedAlgorithms,
    record: Shared,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.record.lock().server_chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        self.trust
            .verify_server(end_entity, intermediates, server_name, now)
            .map(|()| ServerCertVerified::assertion())
            .map_err(|f| {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(f))))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        sig::verify(message, cert, dss, &self.algs, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        sig::verify(message, cert, dss, &self.algs, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Hands out our client certificate (if any) and remembers that the server asked, and
/// which CAs it said it trusts.
#[derive(Debug)]
struct RecordingResolver {
    key: Option<Arc<CertifiedKey>>,
    record: Shared,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let mut r = self.record.lock();
        r.client_cert_requested = true;
        r.ca_hints = root_hint_subjects.iter().map(|h| h.to_vec()).collect();
        r.client_cert_sent = self.key.is_some();
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// A parsed `https://host:port` endpoint.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
}

fn parse_target(url: &str) -> Result<Target, String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("not a URL ({e}); write https://HOST:PORT"))?;
    match parsed.scheme() {
        "https" => {}
        "http" => {
            return Err(
                "an http:// endpoint is plaintext; `check` tests TLS endpoints (https://)"
                    .to_string(),
            )
        }
        other => {
            return Err(format!(
                "unsupported scheme {other}://; write https://HOST:PORT"
            ))
        }
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "no host; write https://HOST:PORT".to_string())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port().unwrap_or(2379);
    Ok(Target { host, port })
}

fn alert_name(a: AlertDescription) -> String {
    let known = match a {
        AlertDescription::BadCertificate => "bad_certificate",
        AlertDescription::UnsupportedCertificate => "unsupported_certificate",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::CertificateUnknown => "certificate_unknown",
        AlertDescription::UnknownCA => "unknown_ca",
        AlertDescription::AccessDenied => "access_denied",
        AlertDescription::CertificateRequired => "certificate_required",
        AlertDescription::HandshakeFailure => "handshake_failure",
        AlertDescription::ProtocolVersion => "protocol_version",
        AlertDescription::NoApplicationProtocol => "no_application_protocol",
        AlertDescription::DecryptError => "decrypt_error",
        AlertDescription::InternalError => "internal_error",
        AlertDescription::IllegalParameter => "illegal_parameter",
        AlertDescription::DecodeError => "decode_error",
        _ => "",
    };
    if known.is_empty() {
        format!("{a:?}")
    } else {
        known.to_string()
    }
}

/// True for alerts a server sends when it refuses a client certificate.
fn is_client_cert_alert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
    )
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects to `url` and reports what happened: one or more findings, the first being the
/// verdict.
pub fn probe(url: &str, cfg: &ProbeConfig, now: OffsetDateTime) -> Vec<Finding> {
    match probe_inner(url, cfg, now) {
        Ok(v) => v,
        Err(reason) => vec![Finding::fail(format!("{url}: {reason}"))],
    }
}

/// The outcome of one connection attempt.
enum Attempt {
    /// The verdict.
    Done(Vec<Finding>),
    /// HTTP/2 was negotiated and the handshake passed, but the server closed the connection
    /// without an alert when we spoke HTTP/2 (etcd's peer port does this): try HTTP/1.1.
    H2Closed,
}

fn probe_inner(url: &str, cfg: &ProbeConfig, now: OffsetDateTime) -> Result<Vec<Finding>, String> {
    let target = parse_target(url)?;
    let both = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    match attempt(url, &target, cfg, now, both)? {
        Attempt::Done(f) => Ok(f),
        Attempt::H2Closed => match attempt(url, &target, cfg, now, vec![b"http/1.1".to_vec()])? {
            Attempt::Done(f) => Ok(f),
            Attempt::H2Closed => {
                Err("the server closed the connection right after the handshake".to_string())
            }
        },
    }
}

fn attempt(
    url: &str,
    target: &Target,
    cfg: &ProbeConfig,
    now: OffsetDateTime,
    alpn: Vec<Vec<u8>>,
) -> Result<Attempt, String> {
    let may_retry = alpn.len() > 1;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let trust = TrustStore::new(cfg.roots.clone(), Vec::new()).map_err(|(index, e)| {
        let name = index
            .and_then(|i| cfg.root_names.get(i))
            .map(|n| format!("{n:?}"))
            .unwrap_or_default();
        format!(
            "{}: {name} cannot be used as a trust anchor ({e})",
            cfg.ca_label
        )
    })?;
    let record = Shared::default();
    let key = match &cfg.client {
        Some((chain, key)) => {
            let signer = rustls::crypto::ring::sign::any_supported_type(key)
                .map_err(|e| format!("{}: unusable private key ({e})", cfg.cert_label))?;
            Some(Arc::new(CertifiedKey::new(chain.clone(), signer)))
        }
        None => None,
    };
    let provider_algs = provider.signature_verification_algorithms;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
            trust,
            algs: provider_algs,
            record: record.clone(),
        }))
        .with_client_cert_resolver(Arc::new(RecordingResolver {
            key,
            record: record.clone(),
        }));
    config.alpn_protocols = alpn;
    let server_name = ServerName::try_from(target.host.clone())
        .map_err(|_| format!("{:?} is not a valid host name", target.host))?;

    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut last_err = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, cfg.timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        format!(
            "cannot connect to {}:{}: {} (is the member running and listening there?)",
            target.host,
            target.port,
            last_err
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no address".to_string())
        )
    })?;
    tcp.set_read_timeout(Some(cfg.timeout))
        .and_then(|()| tcp.set_write_timeout(Some(cfg.timeout)))
        .map_err(|e| format!("socket set-up failed: {e}"))?;
    let conn = ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let mut tls = StreamOwned::new(conn, tcp);

    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            return Ok(Attempt::Done(vec![Finding::fail(format!(
                "{url}: {}",
                explain_handshake_error(&e, target, cfg, &record, now)
            ))]));
        }
    }

    // The handshake is done from our side; now see whether the server accepts us.
    let h2 = tls.conn.alpn_protocol() == Some(b"h2".as_slice());
    let version = match tls.conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS",
    };
    let answer = exchange(&mut tls, h2, target, cfg.timeout);
    if let Err(e) = &answer {
        let closed = rustls_error(e).is_none()
            && matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            );
        if h2 && may_retry && closed {
            return Ok(Attempt::H2Closed);
        }
    }
    let rec = record.lock();
    let server = rec
        .server_chain
        .first()
        .and_then(|d| CertInfo::parse(d.clone()).ok());
    let mut findings = Vec::new();
    match answer {
        Ok(()) => {
            let mut text = format!(
                "{url}: {version} handshake ok (ALPN {}); server certificate {} valid for {}",
                if h2 { "h2" } else { "http/1.1" },
                server
                    .as_ref()
                    .map(|s| format!("{:?}", s.display_name()))
                    .unwrap_or_default(),
                target.host
            );
            if rec.client_cert_sent {
                text.push_str("; client certificate accepted");
            } else if rec.client_cert_requested {
                text.push_str("; the server asked for a client certificate but accepted none (optional client auth)");
            }
            findings.push(Finding::ok(text));
            if cfg.client.is_some() && !rec.client_cert_requested {
                findings.push(Finding::warn(format!(
                    "{url}: the server did not ask for a client certificate: client-cert-auth is off there, so anyone who can reach it may connect"
                )));
            }
            if let Some(s) = &server {
                if s.time_status(now) == TimeStatus::ExpiresSoon {
                    findings.push(Finding::warn(format!(
                        "{url}: the server certificate expires soon, {}",
                        times::rfc3339(s.not_after)
                    )));
                }
            }
        }
        Err(e) => findings.push(Finding::fail(format!(
            "{url}: {}",
            explain_after_handshake(&e, &rec, cfg, now)
        ))),
    }
    Ok(Attempt::Done(findings))
}

/// Sends a request (or waits for the server's HTTP/2 settings) and waits for any answer.
fn exchange(
    tls: &mut StreamOwned<ClientConnection, TcpStream>,
    h2: bool,
    target: &Target,
    timeout: Duration,
) -> io::Result<()> {
    let mut buf = [0u8; 256];
    if h2 {
        // An HTTP/2 server speaks first (its SETTINGS); a server refusing our certificate
        // sends an alert instead. Give it a moment before sending our own preface.
        let short = timeout.min(Duration::from_secs(1));
        tls.sock.set_read_timeout(Some(short))?;
        match tls.read(&mut buf) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
            Ok(_) => return Ok(()),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
        tls.sock.set_read_timeout(Some(timeout))?;
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
        preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        // A write error here usually means the server already closed: the read below
        // returns its alert.
        let _ = tls.write_all(&preface).and_then(|()| tls.flush());
    } else {
        let req = format!(
            "GET /version HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
            target.host, target.port
        );
        let _ = tls.write_all(req.as_bytes()).and_then(|()| tls.flush());
    }
    match tls.read(&mut buf) {
        Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
        Ok(_) => {
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn name_of(der: &[u8]) -> String {
    X509Name::from_der(der)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|_| "(unreadable name)".to_string())
}

fn explain_handshake_error(
    e: &io::Error,
    target: &Target,
    cfg: &ProbeConfig,
    record: &Shared,
    now: OffsetDateTime,
) -> String {
    let rec = record.lock();
    let server = rec
        .server_chain
        .first()
        .and_then(|d| CertInfo::parse(d.clone()).ok());
    let server_name = server
        .as_ref()
        .map(|s| format!("{:?}", s.display_name()))
        .unwrap_or_else(|| "(unreadable)".to_string());
    let Some(err) = rustls_error(e) else {
        if is_timeout(e) {
            return format!(
                "no TLS answer within {}s: the port is open but the server does not answer a TLS handshake (wrong port, or a plaintext listener)",
                cfg.timeout.as_secs()
            );
        }
        if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ) {
            return if rec.client_cert_requested && !rec.client_cert_sent {
                "the server closed the connection during the handshake after asking for a client certificate, and none was given: pass --cert and --key".to_string()
            } else if rec.server_chain.is_empty() {
                "the server closed the connection without any TLS answer: it most likely does not speak TLS on this port (a plaintext http:// listener; etcd closes such connections silently)".to_string()
            } else {
                format!("the server closed the connection during the TLS handshake ({e}): it refused the handshake (see its log)")
            };
        }
        return format!("TLS handshake failed: {e}");
    };
    match err {
        rustls::Error::InvalidCertificate(ce) => {
            let Some(s) = &server else {
                return format!("the server certificate was refused: {ce:?}");
            };
            let failure = match ce {
                CertificateError::Other(OtherError(e)) => e.downcast_ref::<Failure>(),
                _ => None,
            };
            match failure {
                Some(Failure::Host(_)) => format!(
                    "the server certificate {server_name} is not valid for {:?}: its SANs are {}. Connect with one of those names, or reissue the certificate with --hosts including {}",
                    target.host,
                    s.san_list(),
                    target.host
                ),
                Some(Failure::UnknownAuthority { .. }) => {
                    let same_name = cfg.root_names.contains(&s.issuer);
                    if same_name {
                        format!(
                            "the server certificate {server_name} names {:?} as issuer, like {}, but was signed with another key: a different CA with the same name (re-created?); use the CA that signed the server's certificate as --cacert",
                            s.issuer, cfg.ca_label
                        )
                    } else {
                        format!(
                            "the server certificate {server_name} was issued by {:?}, an unknown CA: {} holds {}. Use the cluster's CA file as --cacert",
                            s.issuer,
                            cfg.ca_label,
                            cfg.root_names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                        )
                    }
                }
                Some(Failure::Expired { .. }) => format!(
                    "the server certificate {server_name} expired on {} ({}): reissue it and restart the member",
                    times::rfc3339(s.not_after),
                    times::relative(now, s.not_after)
                ),
                Some(Failure::NotYetValid { .. }) => format!(
                    "the server certificate {server_name} is not valid before {}: check the clocks",
                    times::rfc3339(s.not_before)
                ),
                Some(Failure::IncompatibleUsage) => format!(
                    "the server certificate {server_name} is not for TLS servers: {}",
                    s.role_problems(Role::Server).join("; ")
                ),
                Some(other) => format!("the server certificate {server_name} was refused: {other}"),
                None => format!("the server certificate {server_name} was refused: {ce:?}"),
            }
        }
        rustls::Error::AlertReceived(alert) => {
            if rec.client_cert_requested && !rec.client_cert_sent {
                format!(
                    "the server requires a client certificate and none was given (alert {}): pass --cert and --key",
                    alert_name(*alert)
                )
            } else if rec.client_cert_sent && is_client_cert_alert(*alert) {
                explain_refused_client(*alert, &rec, cfg, now)
            } else {
                format!("the server aborted the handshake with alert {}", alert_name(*alert))
            }
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } | rustls::Error::InappropriateHandshakeMessage { .. } => {
            "the server does not speak TLS on this port (its answer is not a TLS handshake): is this a plaintext http:// listener?".to_string()
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

fn explain_after_handshake(
    e: &io::Error,
    rec: &Record,
    cfg: &ProbeConfig,
    now: OffsetDateTime,
) -> String {
    if let Some(rustls::Error::AlertReceived(alert)) = rustls_error(e) {
        if rec.client_cert_requested && !rec.client_cert_sent {
            return format!(
                "the server requires a client certificate and none was given (alert {}): pass --cert and --key",
                alert_name(*alert)
            );
        }
        if rec.client_cert_sent && is_client_cert_alert(*alert) {
            return explain_refused_client(*alert, rec, cfg, now);
        }
        return format!(
            "the server closed the connection with alert {}",
            alert_name(*alert)
        );
    }
    if is_timeout(e) {
        return format!(
            "the TLS handshake completed, but the server sent nothing within {}s",
            cfg.timeout.as_secs()
        );
    }
    if rec.client_cert_requested && !rec.client_cert_sent {
        return "the server closed the connection after the handshake: it requires a client certificate and none was given; pass --cert and --key".to_string();
    }
    if rec.client_cert_sent {
        return format!(
            "the server closed the connection right after the handshake ({e}): it probably refused the client certificate {}; see its log",
            cfg.cert_label
        );
    }
    format!("the connection failed after the handshake: {e}")
}

/// Explains why the server refused our client certificate, from what we know about it.
fn explain_refused_client(
    alert: AlertDescription,
    rec: &Record,
    cfg: &ProbeConfig,
    now: OffsetDateTime,
) -> String {
    let mut reasons: Vec<String> = Vec::new();
    if let Some(c) = &cfg.client_info {
        reasons.extend(c.role_problems(Role::Client));
        match c.time_status(now) {
            TimeStatus::Expired => {
                reasons.push(format!("it expired on {}", times::rfc3339(c.not_after)))
            }
            TimeStatus::NotYetValid => reasons.push(format!(
                "it is not valid before {}",
                times::rfc3339(c.not_before)
            )),
            _ => {}
        }
        if !rec.ca_hints.is_empty() && !rec.ca_hints.contains(&c.issuer_raw) {
            let trusted = rec
                .ca_hints
                .iter()
                .map(|h| format!("{:?}", name_of(h)))
                .collect::<Vec<_>>()
                .join(", ");
            reasons.push(format!(
                "the server trusts client certificates from {trusted}, but it is issued by {:?}",
                c.issuer
            ));
        }
    }
    let why = if reasons.is_empty() {
        "the server's log names the reason (for etcd: \"rejected connection ... tls: ...\")"
            .to_string()
    } else {
        reasons.join("; ")
    };
    format!(
        "the server refused our client certificate {} (TLS alert {}): {why}",
        cfg.cert_label,
        alert_name(alert)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = parse_target("https://127.0.0.1:2379").expect("parse");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 2379));
        let t = parse_target("https://[::1]:12379").expect("parse");
        assert_eq!((t.host.as_str(), t.port), ("::1", 12379));
        assert!(parse_target("http://127.0.0.1:2379")
            .expect_err("http")
            .contains("plaintext"));
        assert!(parse_target("127.0.0.1:2379").is_err());
    }

    #[test]
    fn alerts_have_tls_names() {
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
        assert!(is_client_cert_alert(AlertDescription::UnknownCA));
        assert!(!is_client_cert_alert(AlertDescription::DecodeError));
    }
}
