//! Reading a gateway request body: the whole body, decoded, and refused as gRPC refuses a
//! message above the receive limit.

use axum::body::Body;
use prost::Message;
use tonic::Code;

use super::error::GatewayError;
use super::json::ProtoName;
use super::Gateway;

/// Reads and decodes a unary request, refusing what gRPC would refuse as too large.
///
/// As etcd's gateway, the whole body is read before the answer (a client still uploading is
/// not cut off), decoded, and refused with grpc-go's size message for the encoded request. A
/// body too large to be worth decoding is read and discarded; its answer names the body's own
/// size.
pub(super) async fn read_request<Req>(gw: &Gateway, body: Body) -> Result<Req, GatewayError>
where
    Req: Message + Default + ProtoName,
{
    use http_body_util::BodyExt;
    let limit = gw.max_json_bytes();
    let mut body = body;
    let mut bytes = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            GatewayError::new(
                Code::InvalidArgument,
                format!("kvd: cannot read the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= limit {
                bytes.extend_from_slice(&data);
            } else {
                bytes = Vec::new();
            }
        }
    }
    if total > limit {
        return Err(too_large(total, gw.max_message_bytes()));
    }
    let req: Req = gw.json.decode_body(&bytes)?;
    check_size(gw, &req)?;
    Ok(req)
}

fn too_large(len: usize, max: usize) -> GatewayError {
    GatewayError::new(
        Code::ResourceExhausted,
        format!("grpc: received message larger than max ({len} vs. {max})"),
    )
}

/// etcd's gRPC server refuses a message above its receive limit; so does the gateway.
pub(super) fn check_size<M: Message>(gw: &Gateway, msg: &M) -> Result<(), GatewayError> {
    let (len, max) = (msg.encoded_len(), gw.max_message_bytes());
    if len > max {
        return Err(too_large(len, max));
    }
    Ok(())
}
