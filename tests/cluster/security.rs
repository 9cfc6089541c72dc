//! Transport security of the test clusters: the one place that decides how members talk to
//! each other and how clients reach them.
//!
//! Today every URL is plain `http`. TLS comes later by changing only this module: return
//! `https` from the scheme functions, add the certificate flags in [`member_flags`] (for
//! example from `kvd pki` output in the member's directory) and a `ClientTlsConfig` in
//! [`endpoint`]. Nothing else in the suite builds a URL, a member's flags or a channel by
//! hand.

use std::path::Path;
use std::time::Duration;

use tonic::transport::Endpoint;

/// Scheme of peer URLs (`--listen-peer-urls`, `--initial-advertise-peer-urls`).
pub fn peer_scheme() -> &'static str {
    "http"
}

/// Scheme of client URLs (`--listen-client-urls`, `--advertise-client-urls`).
pub fn client_scheme() -> &'static str {
    "http"
}

/// Extra server flags that secure member `name` whose files live in `dir` (none with plain
/// http; certificate and key flags go here once the suite runs over TLS).
pub fn member_flags(_dir: &Path, _name: &str) -> Vec<String> {
    Vec::new()
}

/// A gRPC endpoint for the client address `host:port` (lazy: connects on first use).
pub fn endpoint(addr: &str) -> Endpoint {
    Endpoint::from_shared(format!("{}://{addr}", client_scheme()))
        .expect("a loopback address is a valid URI")
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
}
