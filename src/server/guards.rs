//! Checks on client gRPC calls, run as one middleware ([`CallChecks`]) around tonic:
//! - a Txn nested deeper than etcd's operation budget allows is refused (see
//!   [`crate::api::txn_depth`]): the request body is read, its nesting measured without
//!   recursion, and only then handed on;
//! - a request carrying `hasleader: true` is refused while the member knows no leader, as
//!   etcd's interceptors do (streams also end later: see [`crate::api::leader_monitor`]);
//! - tonic's refusal of an oversized message is answered in grpc-go's words, as etcd's.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::api::txn_depth::{depth_limit, txn_depth};
use crate::api::{ApiError, Core};

/// Every check on a client gRPC call, in one middleware (one boxed future per call instead of
/// one per check).
#[derive(Clone)]
pub struct CallChecks {
    /// The member, asked whether it knows a leader.
    pub core: Arc<Core>,
    /// The Txn size and depth limits.
    pub txn: TxnGuard,
}

impl CallChecks {
    /// Refuses a call that requires a leader while there is none, measures a Txn before tonic
    /// decodes it, and words tonic's size refusal as grpc-go does.
    pub async fn run(self, request: Request, next: Next) -> Response {
        if crate::api::leader_monitor::requires_leader_header(request.headers())
            && self.core.raft.status().leader == 0
        {
            return tonic::Status::from(ApiError::NoLeader)
                .into_http::<Body>()
                .into_response();
        }
        grpc_go_messages(self.txn.check(request, next).await)
    }
}

/// The gRPC path of KV.Txn.
const TXN_PATH: &str = "/etcdserverpb.KV/Txn";
/// A gRPC message frame: a compression flag and a 4-byte big-endian length, then the message.
const FRAME_HEADER: usize = 5;

/// Limits the guard applies.
#[derive(Clone, Copy)]
pub struct TxnGuard {
    /// Largest message tonic decodes (`--max-request-bytes` plus gRPC's overhead).
    pub max_message: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
}

impl TxnGuard {
    /// The middleware: passes every other request through untouched.
    pub async fn check(self, request: Request, next: Next) -> Response {
        if request.uri().path() != TXN_PATH {
            return next.run(request).await;
        }
        let (parts, mut body) = request.into_parts();
        let mut bytes = Vec::new();
        let mut declared = None;
        loop {
            if declared.is_none() && bytes.len() >= FRAME_HEADER {
                let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
                if len > self.max_message {
                    // What tonic would answer (and grpc-go's wording, as etcd's): refused
                    // before the message is read.
                    return crate::api::status::message_too_large(len, self.max_message)
                        .into_http::<Body>()
                        .into_response();
                }
                declared = Some(len);
            }
            if declared.is_some_and(|len| bytes.len() >= FRAME_HEADER + len) {
                break;
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
                Some(Err(_)) | None => break,
            }
        }
        let limit = depth_limit(self.max_txn_ops);
        let too_deep = bytes.len() > FRAME_HEADER
            && bytes[0] == 0
            && txn_depth(&bytes[FRAME_HEADER..], limit).is_some_and(|d| d > limit);
        if too_deep {
            return tonic::Status::from(ApiError::TooManyOps)
                .into_http::<Body>()
                .into_response();
        }
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    }
}

/// grpc-go's wording for a message over the size limit, which etcd clients show verbatim:
/// tonic answers `OutOfRange` "Error, decoded message length too large: found N bytes, the
/// limit is: M bytes" where grpc-go (and so etcd) answers `ResourceExhausted` "grpc: received
/// message larger than max (N vs. M)".
fn grpc_go_messages(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers.get("grpc-status").and_then(|v| v.to_str().ok()) != Some("11") {
        return response;
    }
    let Some(message) = headers.get("grpc-message").and_then(|v| v.to_str().ok()) else {
        return response;
    };
    let Some(status) = crate::api::status::grpc_go_size_status(&percent_decode(message)) else {
        return response;
    };
    if let Ok(v) = http::HeaderValue::from_str(&percent_encode(status.message())) {
        headers.insert("grpc-message", v);
        headers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    }
    response
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn percent_encode(s: &str) -> String {
    // gRPC's grpc-message encoding: every byte outside printable ASCII, and '%' itself.
    const GRPC_MESSAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');
    percent_encoding::utf8_percent_encode(s, GRPC_MESSAGE).to_string()
}
