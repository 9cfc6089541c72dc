//! HTTP endpoints for operators, as etcd serves them to curl and Prometheus: `/health`,
//! `/livez`, `/readyz` ([`health`]), `/version` and `/metrics` ([`scrape`]).
//!
//! [`routes`] is what the client URLs (or `--listen-client-http-urls`) serve beside gRPC;
//! [`metrics_routes`] is what a `--listen-metrics-urls` listener serves: `/metrics` and the
//! health endpoints only, as in etcd.

pub mod health;
pub mod scrape;

use std::sync::Arc;

use axum::extract::RawQuery;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

use crate::api::core::{ETCD_CLUSTER_VERSION, ETCD_VERSION};
use crate::api::Core;
use crate::tls::ServerTls;
use health::Kind;

/// The client port's HTTP routes (`/health`, `/livez`, `/readyz`, `/version`, `/metrics`).
pub fn routes(core: Arc<Core>, tls: Vec<ServerTls>) -> Router {
    metrics_routes(core, tls).route("/version", get(version))
}

/// The routes of a `--listen-metrics-urls` listener: `/metrics` and the health endpoints.
pub fn metrics_routes(core: Arc<Core>, tls: Vec<ServerTls>) -> Router {
    let scrape_state = scrape::Scrape {
        core: core.clone(),
        tls: Arc::new(tls),
    };
    let mut router = Router::new()
        .route("/health", any(health::health))
        .with_state(core.clone())
        .route("/metrics", get(scrape::metrics).with_state(scrape_state));
    for kind in [Kind::Livez, Kind::Readyz] {
        let root = match kind {
            Kind::Livez => "/livez",
            Kind::Readyz => "/readyz",
        };
        let c = core.clone();
        router = router.route(
            root,
            any(move |method: Method, RawQuery(q): RawQuery| {
                health::checks(c.clone(), kind, method, q)
            }),
        );
        for name in kind.checks() {
            let c = core.clone();
            router = router.route(
                &format!("{root}/{name}"),
                any(move |method: Method, RawQuery(q): RawQuery| {
                    health::one_check(c.clone(), kind, name, method, q)
                }),
            );
        }
    }
    router
}

/// `/version`: the etcd server and cluster versions kvd reports.
async fn version() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(r#"{{"etcdserver":"{ETCD_VERSION}","etcdcluster":"{ETCD_CLUSTER_VERSION}"}}"#),
    )
        .into_response()
}
