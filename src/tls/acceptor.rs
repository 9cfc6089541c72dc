//! [`ServerTls`]: a port's TLS, ready to accept connections. It holds the current
//! [`Material`] (swapped whole on reload; connections keep the configuration they started
//! with), runs the handshake with a timeout, applies the peer port's address check, and
//! logs every refused connection once, in etcd's words.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::client::ClientConfig;
use rustls::server::{Acceptor, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::error::TlsError;
use super::material::Material;
use super::peer;
use super::reject::{RejectKind, Rejected};
use super::reload::{self, Reloadable, Stamp, Watched};
use super::{uses_auto_tls, ListenerKind, TlsOptions};
use crate::config::TransportSecurity;
use crate::x509::cert;

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What plaintext HTTP clients get from a TLS port before it closes (as Go's HTTP server).
const PLAINTEXT_HTTP_REPLY: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The verified client certificate of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's Common Name (the user name for CN-based auth), if any.
    pub common_name: Option<String>,
    /// The subject in RFC 4514 form (`CN=alice,O=kvd`).
    pub subject: String,
}

impl PeerIdentity {
    fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        let leaf = cert::parse(der).ok()?;
        Some(PeerIdentity {
            common_name: cert::common_name(&leaf),
            subject: cert::dn_string(leaf.subject()),
        })
    }
}

/// One loaded set and the file stamps it was read from.
#[derive(Debug)]
pub(crate) struct Generation {
    pub(crate) material: Material,
    pub(crate) stamps: Vec<Stamp>,
}

#[derive(Debug)]
struct Inner {
    kind: ListenerKind,
    security: TransportSecurity,
    options: TlsOptions,
    data_dir: PathBuf,
    hosts: Vec<String>,
    current: RwLock<Arc<Generation>>,
}

/// TLS for one listener (client or peer port). Cheap to clone; clones share the current
/// certificates.
#[derive(Debug, Clone)]
pub struct ServerTls {
    inner: Arc<Inner>,
}

impl ServerTls {
    /// Loads the port's files (or creates the auto-TLS certificate under
    /// `<data_dir>/fixtures/<kind>` for `hosts`: host names or IPs, optionally with a port
    /// as in the listen URLs) and builds the port's TLS.
    ///
    /// Client certificates are required and verified when `security` has a trusted CA or
    /// `client_cert_auth` (not with auto TLS, as in etcd). Warnings (an expired
    /// certificate, a peer certificate without clientAuth, ...) are logged here.
    ///
    /// # Errors
    /// [`TlsError`] naming the file, the setting and the problem: a missing file, not PEM,
    /// no certificate or key in it, a key that does not match the certificate, an empty CA
    /// bundle, an unparsable CRL, a certificate whose usage forbids its role, or settings
    /// that do not fit together.
    pub fn new(
        kind: ListenerKind,
        security: &TransportSecurity,
        options: &TlsOptions,
        data_dir: &Path,
        hosts: &[String],
    ) -> Result<ServerTls, TlsError> {
        let material = Material::load(kind, security, options, data_dir, hosts)?;
        let stamps = reload::stamps(&material.files);
        let inner = Inner {
            kind,
            security: security.clone(),
            options: options.clone(),
            data_dir: data_dir.to_path_buf(),
            hosts: hosts.to_vec(),
            current: RwLock::new(Arc::new(Generation { material, stamps })),
        };
        let tls = ServerTls {
            inner: Arc::new(inner),
        };
        let generation = tls.generation();
        for w in &generation.material.warnings {
            warn!(listener = kind.name(), "{w}");
        }
        info!(
            listener = kind.name(),
            auto_tls = uses_auto_tls(security),
            client_cert_required = generation.material.requires_client_cert,
            files = ?generation.material.files,
            "TLS ready"
        );
        Ok(tls)
    }

    /// Which port this is.
    pub fn kind(&self) -> ListenerKind {
        self.inner.kind
    }

    /// True when connecting clients must present a certificate the port verifies.
    pub fn requires_client_cert(&self) -> bool {
        self.generation().material.requires_client_cert
    }

    pub(crate) fn generation(&self) -> Arc<Generation> {
        self.inner.current.read().clone()
    }

    /// When the certificate this listener serves expires (Unix seconds).
    pub fn certificate_not_after(&self) -> Option<i64> {
        self.generation().material.served_not_after
    }

    /// The current server configuration (changes on reload).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.generation().material.server.clone()
    }

    /// The current configuration for dialing other members' ports of this kind with this
    /// port's certificates (changes on reload); see [`super::client_config`].
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.generation().material.client.clone()
    }

    /// Runs the TLS handshake on an accepted TCP connection from `remote`, then (peer
    /// port) checks that the client certificate names `remote`.
    ///
    /// Returns the TLS stream and, when the client sent one, its verified certificate's
    /// identity.
    ///
    /// # Errors
    /// [`Rejected`] when the handshake or a check fails or takes longer than
    /// [`TlsOptions::handshake_timeout`]; it has already been logged (WARN, one line as
    /// etcd words it; connections closed before sending anything only at DEBUG, as load
    /// balancers' health checks do that).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        remote: SocketAddr,
    ) -> Result<(TlsStream<TcpStream>, Option<PeerIdentity>), Rejected> {
        let limit = self.inner.options.handshake_timeout;
        let result = match tokio::time::timeout(limit, self.handshake(tcp, remote)).await {
            Ok(r) => r,
            Err(_) => Err(Rejected::new(
                remote,
                RejectKind::Timeout,
                format!("tls: handshake did not finish within {limit:?}"),
            )),
        };
        if let Err(r) = &result {
            crate::metrics::tls::refused(self.inner.kind.name(), r.kind);
        }
        match &result {
            Err(r) if r.kind == RejectKind::ClosedBeforeHandshake => {
                debug!(listener = self.inner.kind.name(), "{r}");
            }
            Err(r) => warn!(listener = self.inner.kind.name(), "{r}"),
            Ok(_) => {}
        }
        result
    }

    async fn handshake(
        &self,
        mut tcp: TcpStream,
        remote: SocketAddr,
    ) -> Result<(TlsStream<TcpStream>, Option<PeerIdentity>), Rejected> {
        let mut first = [0u8; 1];
        let n = tcp
            .peek(&mut first)
            .await
            .map_err(|e| Rejected::new(remote, RejectKind::Io, e.to_string()))?;
        if n == 0 {
            return Err(Rejected::new(
                remote,
                RejectKind::ClosedBeforeHandshake,
                "EOF",
            ));
        }
        if first[0] != HANDSHAKE_RECORD {
            if first[0].is_ascii_uppercase() {
                let _ = tcp.write_all(PLAINTEXT_HTTP_REPLY).await;
                let _ = tcp.shutdown().await;
            }
            return Err(Rejected::new(
                remote,
                RejectKind::NotTls,
                "tls: first record does not look like a TLS handshake",
            ));
        }
        let start = LazyConfigAcceptor::new(Acceptor::default(), tcp)
            .await
            .map_err(|e| Rejected::from_io(remote, &e))?;
        let server_name = start.client_hello().server_name().unwrap_or("").to_string();
        let config = self.server_config();
        let stream = start.into_stream(config).await.map_err(|e| Rejected {
            server_name: server_name.clone(),
            ..Rejected::from_io(remote, &e)
        })?;
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.as_ref().to_vec());
        let identity = leaf.as_deref().and_then(PeerIdentity::from_der);
        let check_address = self.inner.kind == ListenerKind::Peer
            && !self.inner.security.skip_client_san_verification;
        if let (true, Some(leaf)) = (check_address, &leaf) {
            if let Err(reason) = peer::check_remote_address(leaf, remote.ip()).await {
                return Err(Rejected {
                    subject: identity.map(|i| i.subject),
                    server_name,
                    ..Rejected::new(remote, RejectKind::AddressMismatch, reason)
                });
            }
        }
        Ok((stream, identity))
    }

    /// Re-reads all files now and swaps them in (for tests and an operator's signal).
    ///
    /// # Errors
    /// The [`TlsError`] of the broken file; the previous set stays in use.
    pub fn reload_now(&self) -> Result<(), TlsError> {
        let files = self.generation().material.files.clone();
        self.reload_with(reload::stamps(&files))
    }

    /// Starts watching the port's files (certificate, key, CA bundle, CRL; checked about
    /// once a second) until `shutdown`: a changed set is swapped in for new connections,
    /// existing connections continue, a broken set is logged and the last good one kept.
    ///
    /// # Panics
    /// When called outside a tokio runtime (it spawns a task).
    pub fn spawn_reloader(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(reload::run(self.clone(), shutdown, reload::POLL_EVERY))
    }
}

impl Reloadable for ServerTls {
    fn watched(&self) -> Watched {
        let current = self.generation();
        Watched {
            files: current.material.files.clone(),
            stamps: current.stamps.clone(),
            auto_not_after: current.material.auto_not_after,
        }
    }

    fn reload_with(&self, stamps: Vec<Stamp>) -> Result<(), TlsError> {
        let i = &self.inner;
        let material = Material::load(i.kind, &i.security, &i.options, &i.data_dir, &i.hosts)?;
        *i.current.write() = Arc::new(Generation { material, stamps });
        Ok(())
    }

    fn listener(&self) -> &'static str {
        self.inner.kind.name()
    }
}
