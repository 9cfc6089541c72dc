//! What the server builds from [`Config`] before it opens anything: listen addresses resolved
//! to sockets, the TLS set-ups of the client and peer ports, the auth options and the request
//! limits. Configuration stays in [`Config`]; this is what it takes to act on it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::api::Limits;
use crate::auth::{AuthOptions, AuthOptionsError};
use crate::config::{Config, ListenUrl};
use crate::tls::{ListenerKind, ServerTls, TlsError, TlsOptions};

/// One listen address and whether it speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listen {
    /// The address to bind.
    pub(super) addr: SocketAddr,
    /// True for https.
    pub(super) tls: bool,
}

/// Why the configuration cannot be acted on.
#[derive(Debug, Error)]
pub enum ResourceError {
    /// A TCP listen URL has no address to bind.
    #[error("{url}: unix sockets are not supported yet")]
    NoBindAddress {
        /// The listen URL.
        url: String,
    },
    /// A listen URL's host could not be resolved.
    #[error("cannot resolve listen URL {url}")]
    Resolve {
        /// The listen URL.
        url: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// A listen URL's host resolves to nothing.
    #[error("listen URL {url} resolves to no address")]
    NoAddress {
        /// The listen URL.
        url: String,
    },
    /// `unixs://` client URLs.
    #[error("--listen-client-urls {url}: TLS on unix sockets (unixs://) is not supported; use unix:// or an https URL")]
    UnixTls {
        /// The listen URL.
        url: String,
    },
    /// A unix client URL without a socket path.
    #[error("--listen-client-urls {url}: no socket path")]
    UnixPath {
        /// The listen URL.
        url: String,
    },
    /// The TLS files or settings are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The auth settings are unusable.
    #[error(transparent)]
    Auth(#[from] AuthOptionsError),
}

/// What the server needs, beyond [`Config`] itself, to start.
#[derive(Debug)]
pub(super) struct Resources {
    /// `--listen-client-urls` (TCP ones).
    pub(super) listen_client: Vec<Listen>,
    /// `--listen-client-http-urls`.
    pub(super) listen_client_http: Vec<Listen>,
    /// `--listen-metrics-urls`.
    pub(super) listen_metrics: Vec<Listen>,
    /// `--listen-peer-urls`.
    pub(super) listen_peer: Vec<Listen>,
    /// The socket files of `unix://` client URLs.
    pub(super) listen_client_unix: Vec<PathBuf>,
    /// TLS of the https client, client HTTP and metrics listeners.
    pub(super) client_tls: Option<ServerTls>,
    /// TLS of the https peer listeners.
    pub(super) peer_tls: Option<ServerTls>,
    /// TLS for dialling https peer URLs.
    pub(super) peer_dial_tls: Option<Arc<rustls::ClientConfig>>,
    /// Auth token provider, token TTL, bcrypt cost and CN-based auth.
    pub(super) auth: AuthOptions,
    /// Request limits.
    pub(super) limits: Limits,
}

impl Resources {
    /// Resolves the listen URLs, loads (or makes, with auto TLS) the certificates, and reads
    /// the auth and limit settings, in that order.
    pub(super) fn build(cfg: &Config) -> Result<Self, ResourceError> {
        let listen_client = listens(&cfg.listen_client_urls)?;
        let listen_client_http = listens(&cfg.listen_client_http_urls)?;
        let listen_metrics = listens(&cfg.listen_metrics_urls)?;
        let listen_peer = listens(&cfg.listen_peer_urls)?;
        let tls_opts = tls_options(cfg);
        // The HTTP-only and metrics listeners serve with the client port's TLS set-up, as in
        // etcd.
        let client_port_tls = listen_client
            .iter()
            .chain(&listen_client_http)
            .chain(&listen_metrics)
            .any(|l| l.tls);
        let client_tls = if client_port_tls {
            let listen_urls: Vec<ListenUrl> = cfg
                .listen_client_urls
                .iter()
                .chain(&cfg.listen_client_http_urls)
                .chain(&cfg.listen_metrics_urls)
                .cloned()
                .collect();
            let hosts = tls_hosts(&listen_urls, &cfg.advertise_client_urls);
            Some(ServerTls::new(
                ListenerKind::Client,
                &cfg.client_tls,
                &tls_opts,
                &cfg.data_dir,
                &hosts,
            )?)
        } else {
            None
        };
        let peer_hosts = tls_hosts(&cfg.listen_peer_urls, &cfg.initial_advertise_peer_urls);
        let peer_tls = if listen_peer.iter().any(|l| l.tls) {
            Some(ServerTls::new(
                ListenerKind::Peer,
                &cfg.peer_tls,
                &tls_opts,
                &cfg.data_dir,
                &peer_hosts,
            )?)
        } else {
            None
        };
        let peer_material = cfg.peer_tls.has_cert()
            || cfg.peer_tls.auto_tls
            || cfg.peer_tls.trusted_ca_file.is_some();
        let peer_dial_tls = match &peer_tls {
            Some(t) => Some(t.client_config()),
            None if peer_material => Some(Arc::new(crate::tls::client_config(
                ListenerKind::Peer,
                &cfg.peer_tls,
                &tls_opts,
                &cfg.data_dir,
                &peer_hosts,
            )?)),
            None => None,
        };
        let listen_client_unix = unix_sockets(&cfg.listen_client_urls)?;
        let auth = AuthOptions::from_flags(
            &cfg.auth_token,
            cfg.auth_token_ttl,
            cfg.bcrypt_cost,
            cfg.client_tls.client_cert_auth,
        )?;
        Ok(Self {
            listen_client,
            listen_client_http,
            listen_metrics,
            listen_peer,
            listen_client_unix,
            client_tls,
            peer_tls,
            peer_dial_tls,
            auth,
            limits: limits(cfg),
        })
    }
}

/// The request limits: `--max-request-bytes`, `--max-txn-ops`, `--quota-backend-bytes`.
fn limits(cfg: &Config) -> Limits {
    Limits {
        max_request_bytes: usize::try_from(cfg.max_request_bytes).unwrap_or(usize::MAX),
        max_txn_ops: cfg.max_txn_ops as usize,
        quota_bytes: cfg.backend_quota().unwrap_or(u64::MAX),
    }
}

/// Resolves a listen URL's host to one socket address (`localhost` -> 127.0.0.1, as etcd
/// binds).
fn resolve(url: &ListenUrl) -> Result<SocketAddr, ResourceError> {
    let bind = url
        .bind_address()
        .ok_or_else(|| ResourceError::NoBindAddress {
            url: url.to_string(),
        })?;
    let addrs: Vec<SocketAddr> = bind
        .to_socket_addrs()
        .map_err(|source| ResourceError::Resolve {
            url: url.to_string(),
            source,
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| ResourceError::NoAddress {
            url: url.to_string(),
        })
}

/// `unix://` client URLs (plain); `unixs://` is refused with a clear message.
fn unix_sockets(urls: &[ListenUrl]) -> Result<Vec<PathBuf>, ResourceError> {
    let mut out = Vec::new();
    for url in urls.iter().filter(|u| u.is_unix()) {
        if url.is_tls() {
            return Err(ResourceError::UnixTls {
                url: url.to_string(),
            });
        }
        let path = url.path.clone().ok_or_else(|| ResourceError::UnixPath {
            url: url.to_string(),
        })?;
        out.push(path);
    }
    Ok(out)
}

/// The TCP listeners of `urls` (unix ones are bound apart).
fn listens(urls: &[ListenUrl]) -> Result<Vec<Listen>, ResourceError> {
    urls.iter()
        .filter(|url| !url.is_unix())
        .map(|url| {
            Ok(Listen {
                addr: resolve(url)?,
                tls: url.is_tls(),
            })
        })
        .collect()
}

/// Hosts an auto-TLS certificate must name: every listen and advertise host.
fn tls_hosts(listen: &[ListenUrl], advertise: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = listen.iter().map(|u| u.host.clone()).collect();
    for a in advertise {
        if let Ok(u) = url::Url::parse(a) {
            if let Some(h) = u.host_str() {
                hosts.push(h.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// `--cipher-suites`, `--tls-min-version`, `--tls-max-version`, `--self-signed-cert-validity`.
fn tls_options(cfg: &Config) -> TlsOptions {
    TlsOptions {
        cipher_suites: cfg.cipher_suites.clone(),
        min_version: cfg.tls_min_version,
        max_version: cfg.tls_max_version,
        self_signed_cert_validity_years: cfg.self_signed_cert_validity,
        ..TlsOptions::default()
    }
}
