//! The gateway's streams, shaped as etcd 3.4's gateway shapes them: the request body is a
//! sequence of JSON request objects, the answer is one `{"result":…}` line per response; a
//! stream that fails ends with an `{"error":{…}}` chunk (and carries the error's HTTP status
//! when nothing was written before it).
//!
//! Watch (`/v3/watch`), lease keep-alive (`/v3/lease/keepalive`), snapshot
//! (`/v3/maintenance/snapshot`) and election observe (`/v3/election/observe`) live here.

use std::convert::Infallible;
use std::future::ready;
use std::sync::Arc;

use axum::body::{Body, BodyDataStream};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::StreamBody;
use hyper::body::Frame;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Streaming};
use tonic_prost::ProstDecoder;

use super::error::GatewayError;
use super::json::{syntax_message, ProtoName};
use super::request::{check_size, read_request};
use super::Gateway;
use crate::api::lease;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{LeaseKeepAliveRequest, SnapshotRequest, WatchRequest};
use crate::proto::v3electionpb::election_server::Election;
use crate::proto::v3electionpb::LeaderRequest;

type Shared = Arc<Gateway>;

/// Requests a client sends on one stream before the watch task takes them.
const WATCH_REQUEST_QUEUE: usize = 16;

/// The JSON values of a request body, read as they arrive.
struct JsonValues {
    body: BodyDataStream,
    buf: Vec<u8>,
    ended: bool,
    /// The body could not be read to its end: the client is gone or broke the request.
    broken: bool,
    limit: usize,
}

impl JsonValues {
    /// Values of `body`; one value may take at most `limit` bytes.
    fn new(body: Body, limit: usize) -> Self {
        Self {
            body: body.into_data_stream(),
            buf: Vec::new(),
            ended: false,
            broken: false,
            limit,
        }
    }

    /// The next value, `None` when the body ended. Errors carry code `Unknown`, as etcd's
    /// gateway reports a message it cannot read in a request stream.
    async fn next(&mut self) -> Option<Result<serde_json::Value, GatewayError>> {
        loop {
            let mut values =
                serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
            match values.next() {
                Some(Ok(value)) => {
                    let used = values.byte_offset();
                    self.buf.drain(..used);
                    return Some(Ok(value));
                }
                Some(Err(e)) if !e.is_eof() || self.ended => {
                    return Some(Err(GatewayError::new(Code::Unknown, syntax_message(&e))));
                }
                None if self.ended => return None,
                // An incomplete value, or only white space so far: read on.
                _ => {}
            }
            if self.buf.len() > self.limit {
                return Some(Err(GatewayError::new(
                    Code::ResourceExhausted,
                    format!(
                        "kvd: a request in the stream is larger than {} bytes of JSON",
                        self.limit
                    ),
                )));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.ended = true;
                    self.broken = true;
                    return Some(Err(GatewayError::new(Code::Unknown, e.to_string())));
                }
                None => self.ended = true,
            }
        }
    }
}

/// The next request of a stream, `None` when the body ended.
async fn next_request<M>(gw: &Gateway, values: &mut JsonValues) -> Result<Option<M>, GatewayError>
where
    M: Message + Default + ProtoName,
{
    match values.next().await {
        None => Ok(None),
        Some(Err(e)) => Err(e),
        Some(Ok(value)) => {
            let msg: M = gw.json.decode_value(value)?;
            check_size(gw, &msg)?;
            Ok(Some(msg))
        }
    }
}

/// `/v3/watch`: the watch stream of kvd's Watch service, fed with the body's requests.
pub(super) async fn watch(State(gw): State<Shared>, body: Body) -> Response {
    let mut values = JsonValues::new(body, gw.max_json_bytes());
    // As etcd's gateway, read the first request before answering: a bad one is a plain error.
    let first = match next_request::<WatchRequest>(&gw, &mut values).await {
        Ok(first) => first,
        Err(e) => return e.into_response(),
    };
    let (tx, rx) = mpsc::channel::<WatchRequest>(WATCH_REQUEST_QUEUE);
    if let Some(first) = first {
        // A fresh channel has room for one request.
        let _ = tx.try_send(first);
    }
    let frames =
        ReceiverStream::new(rx).map(|req| Ok::<_, Infallible>(Frame::data(grpc_frame(&req))));
    let inbound = Streaming::new_request(
        ProstDecoder::<WatchRequest>::default(),
        StreamBody::new(frames),
        None,
        Some(gw.max_message_bytes()),
    );
    let responses = match gw.watch.watch(Request::new(inbound)).await {
        Ok(responses) => responses.into_inner(),
        Err(status) => return respond(futures::stream::iter([Err(status.into())])).await,
    };
    tokio::spawn(forward_watch_requests(gw.clone(), values, tx));
    respond(responses.map(move |item| {
        item.map_err(GatewayError::from)
            .and_then(|r| gw.json.result_line(&r))
    }))
    .await
}

/// Passes the body's further requests to the watch until the body or the watch ends.
async fn forward_watch_requests(
    gw: Shared,
    mut values: JsonValues,
    tx: mpsc::Sender<WatchRequest>,
) {
    loop {
        let next = tokio::select! {
            () = tx.closed() => return,
            next = next_request::<WatchRequest>(&gw, &mut values) => next,
        };
        match next {
            Ok(Some(req)) => {
                if tx.send(req).await.is_err() {
                    return;
                }
            }
            // etcd's gateway stops reading at the end of the body or at a request it cannot
            // read, and the watch goes on.
            Ok(None) | Err(_) => break,
        }
    }
    if values.broken {
        // The connection broke while the client was still sending: nobody reads the answers
        // either (and nothing would notice until an event is written), so end the watch.
        return;
    }
    // kvd's Watch service ends a stream whose requests end, etcd's does not: hold the request
    // side open until the watch stream itself ends (the client went away).
    tx.closed().await;
}

/// `/v3/lease/keepalive`: one answer per request of the body; the stream ends with the body.
pub(super) async fn keep_alive(State(gw): State<Shared>, body: Body) -> Response {
    let mut values = JsonValues::new(body, gw.max_json_bytes());
    let first = match next_request::<LeaseKeepAliveRequest>(&gw, &mut values).await {
        Ok(first) => first,
        Err(e) => return e.into_response(),
    };
    let answers = futures::stream::unfold(
        (gw, values, first),
        |(gw, mut values, pending)| async move {
            let req = match pending {
                Some(req) => req,
                // A request that cannot be read ends the stream, as the body's end does.
                None => match next_request::<LeaseKeepAliveRequest>(&gw, &mut values).await {
                    Ok(Some(req)) => req,
                    Ok(None) | Err(_) => return None,
                },
            };
            let line = match lease::keep_alive_once(&gw.core, req.id).await {
                Ok(resp) => gw.json.result_line(&resp),
                Err(e) => Err(e.into()),
            };
            Some((line, (gw, values, None)))
        },
    );
    respond(answers).await
}

/// `/v3/maintenance/snapshot`: the snapshot's chunks, one line each.
pub(super) async fn snapshot(State(gw): State<Shared>, body: Body) -> Response {
    let req: SnapshotRequest = match read_request(&gw, body).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    match gw.maintenance.snapshot(Request::new(req)).await {
        Ok(chunks) => {
            let chunks = chunks.into_inner();
            respond(chunks.map(move |item| {
                item.map_err(GatewayError::from)
                    .and_then(|c| gw.json.result_line(&c))
            }))
            .await
        }
        Err(status) => respond(futures::stream::iter([Err(status.into())])).await,
    }
}

/// `/v3/election/observe`: the election's leaders as they change, one line each.
pub(super) async fn observe(State(gw): State<Shared>, body: Body) -> Response {
    let req: LeaderRequest = match read_request(&gw, body).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    match gw.election.observe(Request::new(req)).await {
        Ok(leaders) => {
            let leaders = leaders.into_inner();
            respond(leaders.map(move |item| {
                item.map_err(GatewayError::from)
                    .and_then(|l| gw.json.result_line(&l))
            }))
            .await
        }
        Err(status) => respond(futures::stream::iter([Err(status.into())])).await,
    }
}

/// One message in gRPC's length-prefixed framing (uncompressed).
fn grpc_frame<M: Message>(msg: &M) -> Bytes {
    let payload = msg.encode_to_vec();
    // check_size keeps every request far below 4 GiB.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload);
    Bytes::from(frame)
}

/// Answers with a stream of lines. The first line is awaited before the answer starts, so an
/// error that comes first sets the HTTP status; a later error ends the stream with its chunk.
async fn respond<S>(lines: S) -> Response
where
    S: Stream<Item = Result<String, GatewayError>> + Send + 'static,
{
    let mut lines = Box::pin(lines);
    let first = match lines.next().await {
        None => return stream_response(StatusCode::OK, futures::stream::empty().boxed(), false),
        Some(Err(e)) => {
            let chunk = futures::stream::once(ready(e.stream_chunk())).boxed();
            return stream_response(e.http_status(), chunk, false);
        }
        Some(Ok(line)) => line,
    };
    let rest = lines.scan(false, |failed, item| {
        if *failed {
            return ready(None);
        }
        ready(Some(match item {
            Ok(line) => line,
            Err(e) => {
                *failed = true;
                e.stream_chunk()
            }
        }))
    });
    let all = futures::stream::once(ready(first)).chain(rest).boxed();
    stream_response(StatusCode::OK, all, true)
}

fn stream_response(
    status: StatusCode,
    chunks: futures::stream::BoxStream<'static, String>,
    grpc_ok: bool,
) -> Response {
    let body = Body::from_stream(chunks.map(|s| Ok::<_, Infallible>(Bytes::from(s))));
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if grpc_ok {
        // etcd's gateway forwards the gRPC response headers it received.
        headers.insert(
            "grpc-metadata-content-type",
            HeaderValue::from_static("application/grpc"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values_of(chunks: &[&'static str]) -> JsonValues {
        let chunks: Vec<Result<Bytes, Infallible>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        JsonValues::new(Body::from_stream(futures::stream::iter(chunks)), 1024)
    }

    #[tokio::test]
    async fn values_are_split_across_and_within_chunks() {
        let mut v = values_of(&[r#"{"a":1} {"b""#, r#":2}"#, "\n ", r#"{"c":[3]}"#, "  "]);
        for want in [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":[3]}"#] {
            let got = v.next().await.expect("a value").expect("valid");
            assert_eq!(got.to_string(), want);
        }
        assert!(v.next().await.is_none());
    }

    #[tokio::test]
    async fn a_truncated_or_bad_value_is_an_unknown_error() {
        let mut v = values_of(&[r#"{"a":"#]);
        assert_eq!(
            v.next()
                .await
                .expect("an answer")
                .expect_err("truncated")
                .code,
            Code::Unknown
        );
        let mut v = values_of(&[r#"{"a":1} xx"#]);
        assert!(v.next().await.expect("first").is_ok());
        assert_eq!(
            v.next().await.expect("second").expect_err("bad").code,
            Code::Unknown
        );
        let mut v = values_of(&[""]);
        assert!(v.next().await.is_none(), "an empty body has no values");
    }

    #[test]
    fn frames_carry_grpcs_length_prefix() {
        let req = LeaseKeepAliveRequest { id: 1 };
        let frame = grpc_frame(&req);
        assert_eq!(&frame[..5], &[0, 0, 0, 0, 2]);
        assert_eq!(&frame[5..], &req.encode_to_vec()[..]);
    }
}
