//! One client listener: accepts connections and serves gRPC and HTTP/1.1 + HTTP/2 on each.

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::api::auth::AuthService;
use crate::api::cluster::ClusterService;
use crate::api::core::GRPC_OVERHEAD_BYTES;
use crate::api::kv::KvService;
use crate::api::lease::LeaseService;
use crate::api::maintenance::MaintenanceService;
use crate::api::v3election::ElectionService;
use crate::api::v3lock::LockService;
use crate::api::watch::WatchService;
use crate::api::Core;
use crate::proto::etcdserverpb::auth_server::AuthServer;
use crate::proto::etcdserverpb::cluster_server::ClusterServer;
use crate::proto::etcdserverpb::kv_server::KvServer;
use crate::proto::etcdserverpb::lease_server::LeaseServer;
use crate::proto::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::proto::etcdserverpb::watch_server::WatchServer;
use crate::proto::v3electionpb::election_server::ElectionServer;
use crate::proto::v3lockpb::lock_server::LockServer;
use crate::tls::ServerTls;

/// Largest header list a client request may carry (grpc-go's default for servers, 16 MiB).
const MAX_HEADER_LIST_SIZE: u32 = 16 << 20;

/// What a client listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// gRPC and the HTTP endpoints (etcd's default).
    GrpcAndHttp,
    /// gRPC only (client URLs when `--listen-client-http-urls` is set).
    Grpc,
    /// The HTTP endpoints and the JSON gateway only (`--listen-client-http-urls`).
    Http,
}

impl Traffic {
    /// etcd's name for it in its "serving client traffic" log line.
    pub fn name(self) -> &'static str {
        match self {
            Traffic::GrpcAndHttp => "grpc+http",
            Traffic::Grpc => "grpc",
            Traffic::Http => "http",
        }
    }
}

/// The client port's router for `traffic`: the gRPC services and/or the HTTP endpoints and
/// the JSON gateway.
pub fn router(
    core: Arc<Core>,
    gateway: bool,
    tls: Vec<ServerTls>,
    traffic: Traffic,
) -> axum::Router {
    let mut routes = axum::Router::new();
    if traffic != Traffic::Http {
        routes = routes.merge(grpc_routes(core.clone()));
    }
    if traffic != Traffic::Grpc && gateway {
        routes = routes.merge(crate::gateway::routes(core.clone()));
    }
    // gRPC and gateway calls are served as the user their token or certificate names.
    let routes = routes.layer(axum::middleware::from_fn(crate::auth::with_credentials));
    let routes = if traffic == Traffic::Grpc {
        routes
    } else {
        routes.merge(crate::http::routes(core, tls))
    };
    routes.fallback(not_found)
}

/// The client API's gRPC services, counted by the gRPC metrics layer.
fn grpc_routes(core: Arc<Core>) -> axum::Router {
    let max = core.limits.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let grpc = tonic::service::Routes::new(
        KvServer::new(KvService::new(core.clone())).max_decoding_message_size(max),
    )
    .add_service(WatchServer::new(WatchService::new(core.clone())).max_decoding_message_size(max))
    .add_service(LeaseServer::new(LeaseService::new(core.clone())).max_decoding_message_size(max))
    .add_service(
        ClusterServer::new(ClusterService::new(core.clone())).max_decoding_message_size(max),
    )
    .add_service(
        MaintenanceServer::new(MaintenanceService::new(core.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(AuthServer::new(AuthService::new(core.clone())).max_decoding_message_size(max))
    .add_service(LockServer::new(LockService::new(core.clone())).max_decoding_message_size(max))
    .add_service(
        ElectionServer::new(ElectionService::new(core.clone())).max_decoding_message_size(max),
    );
    // gRPC's health service (`grpc_health_probe`, Kubernetes gRPC probes): SERVING until the
    // member stops, as etcd's.
    let (reporter, health) = tonic_health::server::health_reporter();
    let stopping = core.clone();
    tokio::spawn(async move {
        stopping.stopped().await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    });
    let grpc = grpc.add_service(health);
    let checks = super::guards::CallChecks {
        core: core.clone(),
        txn: super::guards::TxnGuard {
            max_message: max,
            max_txn_ops: core.limits.max_txn_ops,
        },
    };
    grpc.prepare()
        .into_axum_router()
        .layer(axum::middleware::from_fn(move |request, next| {
            checks.clone().run(request, next)
        }))
        // Outside the status rewrite and the guards, so that calls are counted with the codes
        // clients see.
        .layer(crate::metrics::grpc::GrpcMetricsLayer)
}

/// What a `--listen-metrics-urls` listener serves: `/metrics` and the health endpoints.
pub fn metrics_router(core: Arc<Core>, tls: Vec<ServerTls>) -> axum::Router {
    crate::http::metrics_routes(core, tls).fallback(not_found)
}

/// What a path nothing serves answers: gRPC's "unimplemented" to gRPC clients, and Go's
/// `404 page not found` to everything else (as etcd does), never a 200.
pub async fn not_found(request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if grpc {
        return crate::api::status::unknown_method()
            .into_http::<axum::body::Body>()
            .into_response();
    }
    (
        http::StatusCode::NOT_FOUND,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

/// Whether a listener rewrites the `:authority` of etcdctl's `--cluster` requests
/// (`server/h2compat.rs`): client listeners do, peer and metrics listeners pass bytes as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// Rewrite (client URLs, which etcdctl dials).
    Rewrite,
    /// Pass on as sent.
    AsSent,
}

/// Accepts connections until `shutdown`; with `tls`, each one completes a TLS handshake first
/// (refusals are logged by the TLS layer) and the verified client identity is attached to every
/// request on it.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<ServerTls>,
    rewrite: Authority,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            match tls {
                None => serve_connection(stream, router, peer, rewrite, shutdown).await,
                Some(tls) => {
                    let Ok((stream, identity)) = tls.accept(stream, peer).await else {
                        return;
                    };
                    let router = match identity {
                        Some(id) => router.layer(axum::Extension(id)),
                        None => router,
                    };
                    serve_connection(stream, router, peer, rewrite, shutdown).await;
                }
            }
        });
    }
}

/// Accepts connections on a unix socket (plain, as etcd's `unix://` client URLs) until `shutdown`.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    router: axum::Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        tracker.spawn(serve_connection(
            stream,
            router.clone(),
            "unix socket",
            Authority::Rewrite,
            shutdown.clone(),
        ));
    }
}

async fn serve_connection<S>(
    stream: S,
    router: axum::Router,
    peer: impl std::fmt::Display + Send + 'static,
    rewrite: Authority,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let mut builder = Builder::new(TokioExecutor::new());
    // grpc-go's (and so etcd's) limit on a request's headers: one over hyper's 16 KiB default,
    // such as a huge auth token, fails that request alone instead of the whole connection.
    builder.http2().max_header_list_size(MAX_HEADER_LIST_SIZE);
    let conn = builder.serve_connection_with_upgrades(
        TokioIo::new(super::coalesce::Coalesce::new(match rewrite {
            Authority::Rewrite => super::h2compat::AuthorityFix::new(stream),
            Authority::AsSent => super::h2compat::AuthorityFix::passthrough(stream),
        })),
        service,
    );
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn).await;
        }
    }
}
