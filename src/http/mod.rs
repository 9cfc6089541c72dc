//! HTTP endpoints served on the client port beside gRPC: `/health`, `/livez`, `/readyz`,
//! `/version` and `/metrics`, as etcd serves them to curl.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::core::{ETCD_CLUSTER_VERSION, ETCD_VERSION};
use crate::api::Core;
use crate::tls::ServerTls;

/// What the HTTP handlers share.
#[derive(Clone)]
struct Http {
    core: Arc<Core>,
    tls: Arc<Vec<ServerTls>>,
}

/// The HTTP routes, sharing `core`.
pub fn routes(core: Arc<Core>, tls: Vec<ServerTls>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(health))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .with_state(Http {
            core,
            tls: Arc::new(tls),
        })
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Healthy when no alarm is raised, a leader is known and a linearizable read succeeds in time.
async fn health(State(Http { core, .. }): State<Http>) -> Response {
    let healthy = core.state.alarms.read().list().is_empty()
        && core.raft.status().leader != 0
        && tokio::time::timeout(Duration::from_secs(1), core.read_barrier())
            .await
            .is_ok_and(|r| r.is_ok());
    if healthy {
        text(StatusCode::OK, r#"{"health":"true"}"#.to_string())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"health":"false"}"#.to_string(),
        )
    }
}

async fn livez() -> Response {
    text(StatusCode::OK, "ok".to_string())
}

async fn version() -> Response {
    text(
        StatusCode::OK,
        format!(r#"{{"etcdserver":"{ETCD_VERSION}","etcdcluster":"{ETCD_CLUSTER_VERSION}"}}"#),
    )
}

async fn metrics(State(Http { core, tls }): State<Http>) -> Response {
    let raft = core.raft.status();
    let (rev, compact, size, keys) = {
        let s = core.state.mvcc.read();
        (
            s.current_rev(),
            s.compact_rev(),
            s.size_bytes(),
            s.live_keys(),
        )
    };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        u8::from(raft.leader != 0).to_string(),
    );
    gauge(
        "etcd_server_is_leader",
        "Whether or not this member is a leader.",
        u8::from(raft.leader == core.member_id).to_string(),
    );
    gauge(
        "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.",
        raft.commit.to_string(),
    );
    gauge(
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
        raft.applied.to_string(),
    );
    gauge(
        "etcd_server_term",
        "The current raft term.",
        raft.term.to_string(),
    );
    gauge(
        "etcd_mvcc_db_total_size_in_bytes",
        "Total size of the underlying database in bytes.",
        size.to_string(),
    );
    gauge(
        "etcd_debugging_mvcc_current_revision",
        "The current revision of store.",
        rev.to_string(),
    );
    gauge(
        "etcd_debugging_mvcc_compact_revision",
        "The revision of the last compaction in store.",
        compact.to_string(),
    );
    gauge(
        "etcd_debugging_mvcc_keys_total",
        "Total number of keys.",
        keys.to_string(),
    );
    let _ = writeln!(
        out,
        "# HELP etcd_server_id Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.\n# TYPE etcd_server_id gauge\netcd_server_id{{server_id=\"{:x}\"}} 1",
        core.member_id
    );
    let _ = writeln!(
        out,
        "# HELP kvd_tls_certificate_expiry_timestamp_seconds When the certificate a TLS listener serves expires (Unix time).\n# TYPE kvd_tls_certificate_expiry_timestamp_seconds gauge"
    );
    for listener in tls.iter() {
        if let Some(at) = listener.certificate_not_after() {
            let _ = writeln!(
                out,
                "kvd_tls_certificate_expiry_timestamp_seconds{{listener=\"{}\"}} {at}",
                listener.kind().name()
            );
        }
    }
    text(StatusCode::OK, out)
}
