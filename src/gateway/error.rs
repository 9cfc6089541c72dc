//! The gateway's one mapping from a gRPC status to an HTTP answer, as etcd 3.4's gateway
//! (grpc-gateway v1) answers: the HTTP status for each gRPC code, the JSON error body of a
//! unary call, the error chunk that ends a stream, and the plain-text 404 and 405 answers.
//!
//! The gRPC code and message themselves come from [`crate::api::status`]; nothing here
//! chooses a message for a kvd error.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tonic::Code;

use super::escape::quote;
use crate::api::ApiError;

/// An error as the gateway answers it: a gRPC code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (gRPC code {code:?})")]
pub struct GatewayError {
    /// The gRPC code.
    pub code: Code,
    /// The message, shown to the user as both `error` and `message`.
    pub message: String,
}

impl GatewayError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status etcd's gateway answers this error with.
    pub fn http_status(&self) -> StatusCode {
        http_status(self.code)
    }

    /// The JSON body of a failed unary call: `{"error":…,"message":…,"code":N}`.
    pub fn body(&self) -> String {
        let m = quote(&self.message);
        format!(
            r#"{{"error":{m},"message":{m},"code":{}}}"#,
            i32::from(self.code)
        )
    }

    /// The chunk that ends a stream which failed:
    /// `{"error":{"grpc_code":N,"http_code":H,"message":…,"http_status":…}}` (an empty message
    /// is left out, as etcd leaves out empty fields).
    pub fn stream_chunk(&self) -> String {
        let status = self.http_status();
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(r#","message":{}"#, quote(&self.message))
        };
        format!(
            r#"{{"error":{{"grpc_code":{},"http_code":{}{message},"http_status":{}}}}}"#,
            i32::from(self.code),
            status.as_u16(),
            quote(status.canonical_reason().unwrap_or("")),
        )
    }
}

impl From<tonic::Status> for GatewayError {
    fn from(s: tonic::Status) -> Self {
        Self::new(s.code(), s.message())
    }
}

impl From<ApiError> for GatewayError {
    fn from(e: ApiError) -> Self {
        tonic::Status::from(e).into()
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let mut resp = (self.http_status(), self.body()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// The HTTP status for a gRPC code (grpc-gateway v1's `HTTPStatusFromCode`).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A plain-text answer the way Go's `http.Error` writes it.
fn plain(status: StatusCode) -> Response {
    let text = format!("{}\n", status.canonical_reason().unwrap_or(""));
    let mut resp = (status, text).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `404 Not Found` for a path under `/v3/` that names no gateway method.
pub async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND)
}

/// `404 page not found`, as Go's HTTP mux answers a path nothing is registered for (etcd 3.4
/// answers `/v3alpha/…` so).
pub async fn page_not_found() -> Response {
    let mut resp = plain(StatusCode::NOT_FOUND);
    *resp.body_mut() = axum::body::Body::from("404 page not found\n");
    resp
}

/// `405 Method Not Allowed` for a gateway method asked with anything but POST.
pub async fn method_not_allowed() -> Response {
    plain(StatusCode::METHOD_NOT_ALLOWED)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// grpc-gateway v1's table, as test data: (gRPC code, HTTP status).
    #[test]
    fn every_code_maps_to_grpc_gateways_http_status() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 408),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 412),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
        ];
        for (code, status) in table {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn error_bodies_match_etcds_gateway() {
        let e = GatewayError::from(ApiError::FutureRev);
        assert_eq!(e.http_status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            r#"{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}"#
        );
        let e = GatewayError::from(ApiError::NoLeader);
        assert_eq!(
            e.stream_chunk(),
            r#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
        );
        let e = GatewayError::new(Code::Unknown, "");
        assert_eq!(
            e.stream_chunk(),
            r#"{"error":{"grpc_code":2,"http_code":500,"http_status":"Internal Server Error"}}"#
        );
    }
}
