//! Checks on gRPC requests before tonic decodes them:
//! - a Txn nested deeper than etcd's operation budget allows is refused (see
//!   [`crate::api::txn_depth`]): the request body is read, its nesting measured without
//!   recursion, and only then handed on;
//! - a request carrying `hasleader: true` is refused while the member knows no leader, as
//!   etcd's interceptors do (streams also end later: see [`crate::api::leader_monitor`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::api::txn_depth::{depth_limit, txn_depth};
use crate::api::{ApiError, Core};

/// Refuses a request that requires a leader while there is none.
pub async fn require_leader(core: Arc<Core>, request: Request, next: Next) -> Response {
    if crate::api::leader_monitor::requires_leader_header(request.headers())
        && core.raft.status().leader == 0
    {
        return tonic::Status::from(ApiError::NoLeader)
            .into_http::<Body>()
            .into_response();
    }
    next.run(request).await
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
