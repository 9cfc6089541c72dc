//! The gRPC server metrics go-grpc-prometheus gives etcd, as a tower layer around the client
//! port's gRPC services: `grpc_server_started_total`, `grpc_server_handled_total` (by
//! `grpc_code`), `grpc_server_msg_received_total`, `grpc_server_msg_sent_total` and, with
//! `--metrics extensive`, `grpc_server_handling_seconds`; labelled `grpc_type` (`unary`,
//! `client_stream`, `server_stream`, `bidi_stream`), `grpc_service` and `grpc_method`. The layer
//! also counts the message bytes of `etcd_network_client_grpc_{sent,received}_bytes_total` and
//! `etcd_server_client_requests_total` by the client's `client-api-version`.
//!
//! Messages are counted from the gRPC length-prefixed frames as they pass, so streams count
//! each message. As with go-grpc-prometheus, every method of etcd's `etcdserverpb` services is
//! listed from the start (with zeros), so rate() and ratios work before the first call; the
//! Lock and Election services appear once called. A call whose client went away before the
//! server finished it is `Canceled`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use prometheus::{HistogramVec, IntCounter, IntCounterVec, Registry};

use super::{add, counter_vec, histogram_vec};

const LABELS: &[&str] = &["grpc_type", "grpc_service", "grpc_method"];
const HANDLED_LABELS: &[&str] = &["grpc_type", "grpc_service", "grpc_method", "grpc_code"];

/// `grpc_server_started_total`.
pub static STARTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "grpc_server_started_total",
        "Total number of RPCs started on the server.",
        LABELS,
    )
});
/// `grpc_server_handled_total`.
pub static HANDLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "grpc_server_handled_total",
        "Total number of RPCs completed on the server, regardless of success or failure.",
        HANDLED_LABELS,
    )
});
/// `grpc_server_msg_received_total`.
pub static MSG_RECEIVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "grpc_server_msg_received_total",
        "Total number of RPC stream messages received on the server.",
        LABELS,
    )
});
/// `grpc_server_msg_sent_total`.
pub static MSG_SENT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "grpc_server_msg_sent_total",
        "Total number of gRPC stream messages sent by the server.",
        LABELS,
    )
});
/// `grpc_server_handling_seconds` (only with `--metrics extensive`).
pub static HANDLING: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "grpc_server_handling_seconds",
        "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        LABELS,
        prometheus::DEFAULT_BUCKETS.to_vec(),
    )
});

static EXTENSIVE: AtomicBool = AtomicBool::new(false);

/// gRPC's status codes by number, named as grpc-go names them.
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// One gRPC method, labelled as go-grpc-prometheus labels it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub kind: &'static str,
    /// The service's full name, e.g. `etcdserverpb.KV`.
    pub service: String,
    /// The method, e.g. `Range`.
    pub method: String,
}

impl Method {
    fn labels(&self) -> [&str; 3] {
        [self.kind, &self.service, &self.method]
    }
}

/// The client-facing methods by request path (`/etcdserverpb.KV/Range`), from the compiled
/// API descriptors, and gRPC's health service.
static METHODS: LazyLock<HashMap<String, Method>> = LazyLock::new(|| {
    let mut out = HashMap::new();
    let Ok(pool) = prost_reflect::DescriptorPool::decode(crate::proto::DESCRIPTORS) else {
        return out;
    };
    // gRPC's standard health service, served beside etcd's API as etcd serves it.
    for (method, kind) in [("Check", "unary"), ("Watch", "server_stream")] {
        out.insert(
            format!("/grpc.health.v1.Health/{method}"),
            Method {
                kind,
                service: "grpc.health.v1.Health".to_string(),
                method: method.to_string(),
            },
        );
    }
    for service in pool.services() {
        if !matches!(
            service.package_name(),
            "etcdserverpb" | "v3lockpb" | "v3electionpb"
        ) {
            continue;
        }
        for m in service.methods() {
            let kind = match (m.is_client_streaming(), m.is_server_streaming()) {
                (false, false) => "unary",
                (true, false) => "client_stream",
                (false, true) => "server_stream",
                (true, true) => "bidi_stream",
            };
            out.insert(
                format!("/{}/{}", service.full_name(), m.name()),
                Method {
                    kind,
                    service: service.full_name().to_string(),
                    method: m.name().to_string(),
                },
            );
        }
    }
    out
});

/// The method a request path calls, if it is one of the client API's.
pub fn method(path: &str) -> Option<&'static Method> {
    METHODS.get(path)
}

pub(super) fn register(r: &Registry) {
    add(r, STARTED.clone());
    add(r, HANDLED.clone());
    add(r, MSG_RECEIVED.clone());
    add(r, MSG_SENT.clone());
    for m in METHODS.values().filter(|m| initialized(m)) {
        initialize(m);
    }
}

/// The services etcd registers before go-grpc-prometheus lists its methods: etcd's own and
/// the health service (Lock and Election come later and appear once called).
fn initialized(m: &Method) -> bool {
    m.service.starts_with("etcdserverpb.") || m.service == "grpc.health.v1.Health"
}

/// Creates every series of `m` with zeros, as go-grpc-prometheus's `InitializeMetrics` does.
fn initialize(m: &Method) {
    let labels = m.labels();
    STARTED.with_label_values(&labels);
    MSG_RECEIVED.with_label_values(&labels);
    MSG_SENT.with_label_values(&labels);
    for code in CODES {
        HANDLED.with_label_values(&[labels[0], labels[1], labels[2], code]);
    }
    if EXTENSIVE.load(Ordering::Relaxed) {
        HANDLING.with_label_values(&labels);
    }
}

/// `--metrics extensive`: adds `grpc_server_handling_seconds` (per-method latency histograms).
pub fn enable_handling_histogram() {
    if EXTENSIVE.swap(true, Ordering::Relaxed) {
        return;
    }
    add(super::registry(), HANDLING.clone());
    for m in METHODS.values().filter(|m| initialized(m)) {
        HANDLING.with_label_values(&m.labels());
    }
}

/// The tower layer that counts the gRPC calls passing through it.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<Request<Body>> for GrpcMetrics<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(method) = method(request.uri().path()) else {
            return Box::pin(self.inner.call(request));
        };
        let call = Arc::new(Call::start(method, request.headers()));
        let request = request.map(|body| {
            Body::new(Counting {
                inner: body,
                frames: FrameCounter::default(),
                call: call.clone(),
                sending: false,
            })
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            // Dropped before the response (the client went away): `Canceled`.
            let mut pending = Finish(Some(call.clone()));
            let response = response.await?;
            pending.0 = None;
            if let Some(code) = grpc_status(response.headers()) {
                // A trailers-only response: the call ended with its headers.
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(Counting {
                    inner: body,
                    frames: FrameCounter::default(),
                    call,
                    sending: true,
                })
            }))
        })
    }
}

/// Ends the call as `Canceled` when dropped while still holding it.
struct Finish(Option<Arc<Call>>);

impl Drop for Finish {
    fn drop(&mut self) {
        if let Some(call) = &self.0 {
            call.finish(1);
        }
    }
}

/// One call in flight, with its per-message counters looked up once.
struct Call {
    method: &'static Method,
    start: Instant,
    finished: AtomicBool,
    sent: IntCounter,
    received: IntCounter,
}

impl Call {
    fn start(method: &'static Method, headers: &HeaderMap) -> Call {
        let version = headers
            .get("client-api-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        let kind = if method.kind == "unary" {
            "unary"
        } else {
            "stream"
        };
        super::server::CLIENT_REQUESTS
            .with_label_values(&[kind, version])
            .inc();
        let labels = method.labels();
        STARTED.with_label_values(&labels).inc();
        Call {
            method,
            start: Instant::now(),
            finished: AtomicBool::new(false),
            sent: MSG_SENT.with_label_values(&labels),
            received: MSG_RECEIVED.with_label_values(&labels),
        }
    }

    fn message(&self, sent: bool, bytes: usize) {
        if sent {
            self.sent.inc();
            super::network::CLIENT_GRPC_SENT_BYTES.inc_by(bytes as u64);
        } else {
            self.received.inc();
            super::network::CLIENT_GRPC_RECEIVED_BYTES.inc_by(bytes as u64);
        }
    }

    /// Records the outcome once; later calls are ignored.
    fn finish(&self, code: usize) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let labels = self.method.labels();
        let code = CODES.get(code).copied().unwrap_or("Unknown");
        HANDLED
            .with_label_values(&[labels[0], labels[1], labels[2], code])
            .inc();
        if EXTENSIVE.load(Ordering::Relaxed) {
            HANDLING
                .with_label_values(&labels)
                .observe(self.start.elapsed().as_secs_f64());
        }
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<usize> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Finds gRPC message boundaries in a byte stream: each message is a 1-byte flag, a 4-byte
/// big-endian length, then that many bytes.
#[derive(Debug, Default)]
struct FrameCounter {
    header: [u8; 5],
    header_len: usize,
    remaining: usize,
}

impl FrameCounter {
    /// Feeds the next chunk; returns the lengths of the messages whose header it completed.
    fn feed(&mut self, mut data: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        while !data.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(data.len());
                self.remaining -= skip;
                data = &data[skip..];
                continue;
            }
            let take = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
            self.header_len += take;
            data = &data[take..];
            if self.header_len == 5 {
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as usize;
                found.push(len);
                self.remaining = len;
                self.header_len = 0;
            }
        }
        found
    }
}

/// A request or response body whose gRPC messages are counted as they pass; a response body
/// also records the call's outcome from its trailers (or `Canceled` when dropped first).
struct Counting {
    inner: Body,
    frames: FrameCounter,
    call: Arc<Call>,
    sending: bool,
}

impl http_body::Body for Counting {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    for len in this.frames.feed(data) {
                        this.call.message(this.sending, len);
                    }
                }
                if this.sending {
                    if let Some(trailers) = frame.trailers_ref() {
                        this.call.finish(grpc_status(trailers).unwrap_or(2));
                    }
                }
            }
            // The stream failed, or ended without the trailers gRPC requires.
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) if this.sending => this.call.finish(2),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if self.sending {
            self.call.finish(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_typed_as_go_grpc_prometheus_types_them() {
        let range = method("/etcdserverpb.KV/Range").expect("Range");
        assert_eq!(range.kind, "unary");
        assert_eq!(range.service, "etcdserverpb.KV");
        assert_eq!(
            method("/etcdserverpb.Watch/Watch").map(|m| m.kind),
            Some("bidi_stream")
        );
        assert_eq!(
            method("/etcdserverpb.Maintenance/Snapshot").map(|m| m.kind),
            Some("server_stream")
        );
        assert_eq!(method("/v3lockpb.Lock/Lock").map(|m| m.kind), Some("unary"));
        assert!(method("/kvdpb.Peer/Raft").is_none());
        assert!(method("/health").is_none());
    }

    #[test]
    fn messages_are_found_across_chunk_boundaries() {
        let mut f = FrameCounter::default();
        let mut stream = vec![0, 0, 0, 0, 3, b'a', b'b', b'c'];
        stream.extend_from_slice(&[0, 0, 0, 0, 0]);
        stream.extend_from_slice(&[1, 0, 0, 1, 0]);
        stream.extend(std::iter::repeat_n(7u8, 256));
        let mut found = Vec::new();
        for chunk in stream.chunks(3) {
            found.extend(f.feed(chunk));
        }
        assert_eq!(found, vec![3, 0, 256]);
        assert_eq!(f.remaining, 0);
        assert_eq!(f.header_len, 0);
    }
}
