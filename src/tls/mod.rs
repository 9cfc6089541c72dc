//! kvd's TLS layer for the client and peer listeners, and for kvd's own outgoing peer
//! connections, with etcd's semantics.
//!
//! Owns everything between a configured [`TransportSecurity`] and a running rustls
//! connection: reading PEM files, auto TLS, the rustls server and client configurations,
//! verifying client certificates (with `x509`, which `kvd pki` shares: webpki for
//! v3 chains, kvd's own path for the X.509 v1 certificates `openssl x509 -req` makes), the
//! peer port's extra checks, reloading changed files and logging every refused handshake in
//! etcd's words.
//!
//! What etcd users rely on, and kvd keeps:
//! - a trusted CA alone already requires and verifies client certificates;
//! - certificates without any extended key usage serve for both server and client use;
//! - `allowed-cn` / `allowed-hostname` restrict which client certificates are accepted;
//! - on the peer port, a member's client certificate must name its remote address (unless
//!   `--experimental-peer-skip-client-san-verification`);
//! - auto TLS writes a self-signed certificate under `<data-dir>/fixtures/{client,peer}`,
//!   and members dialing auto-TLS peers do not verify them.
//!
//! Where kvd does better: the CA bundle and CRL are reloaded too (not only the
//! certificate and key), a broken replacement keeps the last good set, CRL signatures are
//! verified, and startup errors name the file, the setting and what to fix.
//!
//! Module map:
//! - `setting.rs`: which flag / YAML key a file came from (for messages);
//! - `error.rs`: [`TlsError`], startup and reload errors;
//! - `load.rs`: PEM certificates, keys (PKCS#1, SEC1, PKCS#8), CA bundles and CRLs;
//! - `verify.rs`: the client-certificate verifier the listeners use;
//! - `client.rs`: rustls client configuration for kvd's outgoing connections (the server
//!   certificate verifier);
//! - `server.rs`: rustls server configuration: suites, versions, ALPN;
//! - `material.rs`: one loaded set of files, turned into both configurations, and
//!   [`client_config`];
//! - `auto.rs`: auto TLS certificates;
//! - `peer.rs`: the peer port's check of the certificate against the remote address;
//! - `reject.rs`: [`Rejected`]: why a handshake was refused, in etcd's words;
//! - `acceptor.rs`: [`ServerTls`]: accept, reload, hand out configurations;
//! - `reload.rs`: watching the files of anything `Reloadable` (the acceptor).
//!
//! This module reads [`crate::config`] types and judges certificates with `x509`;
//! it must not import the server, API or storage layers.

mod acceptor;
mod auto;
mod client;
mod error;
mod load;
mod material;
mod peer;
mod reject;
mod reload;
mod server;
mod setting;
mod verify;

use std::time::Duration;

pub use acceptor::{PeerIdentity, ServerTls};
pub use error::{FileProblem, TlsError};
pub use material::client_config;
pub use reject::{RejectKind, Rejected};

use crate::config::{TlsVersion, TransportSecurity};

/// Which listener a TLS set-up serves. The peer port has extra checks and other flag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// The client port (`--listen-client-urls`, `--cert-file`, ...).
    Client,
    /// The peer port (`--listen-peer-urls`, `--peer-cert-file`, ...).
    Peer,
}

impl ListenerKind {
    /// `"client"` or `"peer"`, as in messages and `<data-dir>/fixtures/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Client => "client",
            ListenerKind::Peer => "peer",
        }
    }
}

/// The TLS settings shared by both ports (`--cipher-suites`, `--tls-min-version`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--cipher-suites`: etcd's (Go's) names. Only TLS 1.2 suites are chosen this way;
    /// TLS 1.3 suites are always on, as in Go. Empty means kvd's defaults.
    pub cipher_suites: Vec<String>,
    /// `--tls-min-version`; `None` means TLS 1.2.
    pub min_version: Option<TlsVersion>,
    /// `--tls-max-version`; `None` means TLS 1.3.
    pub max_version: Option<TlsVersion>,
    /// `--self-signed-cert-validity`: years an auto-TLS certificate is valid (0 means 1).
    pub self_signed_cert_validity_years: u32,
    /// How long a connection may take to finish its TLS handshake before it is dropped.
    pub handshake_timeout: Duration,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            cipher_suites: Vec::new(),
            min_version: None,
            max_version: None,
            self_signed_cert_validity_years: 1,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// True when `security` makes a port require client certificates, as kvd applies it: a
/// trusted CA or `client-cert-auth`, except with auto TLS (etcd ignores both then).
fn client_certs_required(security: &TransportSecurity) -> bool {
    security.requires_client_cert() && !uses_auto_tls(security)
}

/// True when the port serves the auto-TLS certificate: auto TLS on and no certificate
/// files given (etcd ignores auto TLS when files are given).
fn uses_auto_tls(security: &TransportSecurity) -> bool {
    security.auto_tls && !security.has_cert()
}
