//! `/metrics`: samples the member's state into the metrics (see [`crate::metrics`]) and renders
//! every family in Prometheus's text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::core::{ETCD_CLUSTER_VERSION, ETCD_VERSION};
use crate::api::Core;
use crate::metrics;
use crate::tls::ServerTls;

/// What the `/metrics` handler reads.
#[derive(Clone)]
pub struct Scrape {
    /// The member.
    pub core: Arc<Core>,
    /// Its TLS listeners (certificate expiry).
    pub tls: Arc<Vec<ServerTls>>,
}

/// The member's state as the metrics report it.
pub fn sample(core: &Core) -> metrics::server::Sample {
    let raft = core.raft.status();
    let mvcc = {
        let s = core.state.mvcc.read();
        metrics::mvcc::Sample {
            db_size: s.size_bytes(),
            db_size_in_use: s.size_bytes(),
            keys: s.live_keys() as u64,
            revision: s.current_rev(),
            compact_revision: s.compact_rev(),
            watchers: 0,
            slow_watchers: 0,
        }
    };
    let (watchers, slow_watchers) = core.state.hub.counts();
    metrics::server::Sample {
        member_id: core.member_id,
        leader: raft.leader,
        is_learner: core.is_learner(),
        commit_index: raft.commit,
        applied_index: raft.applied,
        proposals_pending: core.state.waiters.pending(),
        quota_bytes: core.limits.quota_bytes,
        server_version: ETCD_VERSION,
        cluster_version: major_minor(ETCD_CLUSTER_VERSION),
        auth_revision: core.state.auth.read().revision(),
        mvcc: metrics::mvcc::Sample {
            watchers: watchers as u64,
            slow_watchers: slow_watchers as u64,
            ..mvcc
        },
    }
}

/// `3.5.0` -> `3.5`, as etcd labels its cluster version.
fn major_minor(version: &'static str) -> &'static str {
    match version.match_indices('.').nth(1) {
        Some((i, _)) => &version[..i],
        None => version,
    }
}

/// `/metrics`.
pub async fn metrics(State(Scrape { core, tls }): State<Scrape>) -> Response {
    metrics::server::record(&sample(&core));
    for listener in tls.iter() {
        let files = listener.generation().material.files.clone();
        metrics::tls::record_expiry(listener.kind().name(), &files);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_version_label_is_major_dot_minor() {
        assert_eq!(major_minor("3.5.0"), "3.5");
        assert_eq!(major_minor("3.4"), "3.4");
    }
}
