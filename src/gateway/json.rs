//! Protobuf <-> JSON as etcd 3.4's gateway writes and reads it: the `.proto` field names
//! (`create_revision`, `ID`, `dbSize`), 64-bit integers as strings, bytes as base64, enums by
//! name, fields with their zero value left out. Requests accept the `.proto` and the
//! lowerCamelCase names, numbers or strings for 64-bit integers, and unknown fields are ignored.
//!
//! The mapping is driven by kvd's embedded descriptors ([`crate::proto::DESCRIPTORS`]) through
//! prost-reflect; messages move between the dynamic and the generated types by re-encoding.

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};
use tonic::Code;

use super::error::GatewayError;
use super::escape::go_escape;

/// How responses are written.
const SERIALIZE: SerializeOptions = SerializeOptions::new()
    .use_proto_field_name(true)
    .skip_default_fields(true);

/// The full protobuf name of a generated message type.
pub trait ProtoName {
    /// `package.Message`, as in the `.proto` file.
    const NAME: &'static str;
}

macro_rules! proto_names {
    ($($pkg:ident: [$($ty:ident),+ $(,)?]),+ $(,)?) => {
        $($(impl ProtoName for crate::proto::$pkg::$ty {
            const NAME: &'static str = concat!(stringify!($pkg), ".", stringify!($ty));
        })+)+
        /// Every name above, for the test that each one resolves.
        #[cfg(test)]
        const ALL_NAMES: &[&str] = &[$($(concat!(stringify!($pkg), ".", stringify!($ty))),+),+];
    };
}

proto_names! {
    etcdserverpb: [
        RangeRequest, RangeResponse, PutRequest, PutResponse, DeleteRangeRequest,
        DeleteRangeResponse, TxnRequest, TxnResponse, CompactionRequest, CompactionResponse,
        WatchRequest, WatchResponse,
        LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
        LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest,
        LeaseTimeToLiveResponse, LeaseLeasesRequest, LeaseLeasesResponse,
        MemberAddRequest, MemberAddResponse, MemberRemoveRequest, MemberRemoveResponse,
        MemberUpdateRequest, MemberUpdateResponse, MemberListRequest, MemberListResponse,
        MemberPromoteRequest, MemberPromoteResponse,
        AlarmRequest, AlarmResponse, StatusRequest, StatusResponse, DefragmentRequest,
        DefragmentResponse, HashRequest, HashResponse, SnapshotRequest, SnapshotResponse,
        MoveLeaderRequest, MoveLeaderResponse,
        AuthEnableRequest, AuthEnableResponse, AuthDisableRequest, AuthDisableResponse,
        AuthenticateRequest, AuthenticateResponse, AuthUserGetRequest, AuthUserGetResponse,
        AuthUserListRequest, AuthUserListResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
        AuthUserChangePasswordRequest, AuthUserChangePasswordResponse, AuthUserGrantRoleRequest,
        AuthUserGrantRoleResponse, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse,
        AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleListRequest, AuthRoleListResponse,
        AuthRoleDeleteRequest, AuthRoleDeleteResponse, AuthRoleGrantPermissionRequest,
        AuthRoleGrantPermissionResponse, AuthRoleRevokePermissionRequest,
        AuthRoleRevokePermissionResponse, AuthStatusRequest, AuthStatusResponse,
        AuthUserAddRequest, AuthUserAddResponse, AuthRoleAddRequest, AuthRoleAddResponse,
    ],
    v3lockpb: [LockRequest, LockResponse, UnlockRequest, UnlockResponse],
    v3electionpb: [
        CampaignRequest, CampaignResponse, ProclaimRequest, ProclaimResponse, LeaderRequest,
        LeaderResponse, ResignRequest, ResignResponse,
    ],
}

/// Converts requests from JSON and responses to JSON.
pub struct JsonCodec {
    pool: DescriptorPool,
}

impl JsonCodec {
    /// A codec over kvd's embedded descriptors.
    ///
    /// # Panics
    /// If the descriptors embedded at build time do not decode, which `build.rs` rules out.
    pub fn new() -> Self {
        let pool = DescriptorPool::decode(crate::proto::DESCRIPTORS)
            .expect("build.rs embeds a valid FileDescriptorSet of kvd's protos");
        Self { pool }
    }

    fn descriptor<T: ProtoName>(&self) -> Result<MessageDescriptor, GatewayError> {
        self.pool.get_message_by_name(T::NAME).ok_or_else(|| {
            tracing::error!(message = T::NAME, "no descriptor for a gateway message");
            GatewayError::new(
                Code::Internal,
                format!("kvd: no descriptor for {}", T::NAME),
            )
        })
    }

    /// Decodes the first JSON value of a unary call's body, as etcd's gateway does: an empty
    /// body or `null` is the empty request, anything after the first value is ignored.
    ///
    /// # Errors
    /// `InvalidArgument` (HTTP 400) when the body is not JSON of the request's shape.
    pub fn decode_body<T: ProtoName + Message + Default>(
        &self,
        body: &[u8],
    ) -> Result<T, GatewayError> {
        let first = serde_json::Deserializer::from_slice(body)
            .into_iter::<serde_json::Value>()
            .next();
        let value = match first {
            None => serde_json::Value::Null,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                return Err(GatewayError::new(Code::InvalidArgument, syntax_message(&e)))
            }
        };
        self.decode_value(value)
            .map_err(|e| GatewayError::new(Code::InvalidArgument, e.message))
    }

    /// Decodes one JSON value into a request (`null` is the empty request).
    ///
    /// # Errors
    /// `Unknown` with the reason when the value does not have the request's shape (the code
    /// etcd's gateway gives a bad message in a request stream).
    pub fn decode_value<T: ProtoName + Message + Default>(
        &self,
        value: serde_json::Value,
    ) -> Result<T, GatewayError> {
        if value.is_null() {
            return Ok(T::default());
        }
        let options = DeserializeOptions::new().deny_unknown_fields(false);
        let dynamic =
            DynamicMessage::deserialize_with_options(self.descriptor::<T>()?, value, &options)
                .map_err(|e| GatewayError::new(Code::Unknown, e.to_string()))?;
        dynamic
            .transcode_to::<T>()
            .map_err(|e| GatewayError::new(Code::Unknown, e.to_string()))
    }

    /// Encodes a response as etcd's gateway writes it.
    ///
    /// # Errors
    /// `Internal` if the message does not match its descriptor (a kvd bug).
    pub fn encode<T: ProtoName + Message>(&self, msg: &T) -> Result<String, GatewayError> {
        let internal = |e: String| {
            tracing::error!(message = T::NAME, error = %e, "cannot write a response as JSON");
            GatewayError::new(
                Code::Internal,
                format!("kvd: cannot write {} as JSON: {e}", T::NAME),
            )
        };
        let mut dynamic = DynamicMessage::new(self.descriptor::<T>()?);
        dynamic
            .transcode_from(msg)
            .map_err(|e| internal(e.to_string()))?;
        let mut out = Vec::new();
        dynamic
            .serialize_with_options(&mut serde_json::Serializer::new(&mut out), &SERIALIZE)
            .map_err(|e| internal(e.to_string()))?;
        let text = String::from_utf8(out).map_err(|e| internal(e.to_string()))?;
        Ok(go_escape(text))
    }

    /// One message of a response stream: `{"result":…}` and a newline.
    ///
    /// # Errors
    /// As [`JsonCodec::encode`].
    pub fn result_line<T: ProtoName + Message>(&self, msg: &T) -> Result<String, GatewayError> {
        Ok(format!("{{\"result\":{}}}\n", self.encode(msg)?))
    }
}

impl Default for JsonCodec {
    fn default() -> Self {
        Self::new()
    }
}

/// The message for JSON that does not parse: a body that ends inside a value is etcd's
/// `unexpected EOF`; other faults are told in serde_json's words.
pub fn syntax_message(e: &serde_json::Error) -> String {
    if e.is_eof() {
        "unexpected EOF".to_string()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::escape::quote;
    use super::*;
    use crate::proto::etcdserverpb::{
        range_request::SortOrder, LeaseGrantResponse, RangeRequest, RangeResponse, ResponseHeader,
        StatusResponse, WatchResponse,
    };
    use crate::proto::mvccpb::{event::EventType, Event, KeyValue};

    #[test]
    fn every_named_message_has_a_descriptor() {
        let codec = JsonCodec::new();
        for name in ALL_NAMES {
            assert!(codec.pool.get_message_by_name(name).is_some(), "{name}");
        }
    }

    fn header() -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: 6868361742311383469,
            member_id: 7881521356102228245,
            revision: 3,
            raft_term: 2,
        })
    }

    /// Expected texts are what etcd 3.4.23's gateway answered to curl.
    #[test]
    fn responses_are_written_as_etcds_gateway_writes_them() {
        let codec = JsonCodec::new();
        let r = RangeResponse {
            header: header(),
            kvs: vec![KeyValue {
                key: b"foo".to_vec(),
                create_revision: 2,
                mod_revision: 3,
                version: 2,
                value: b"baz".to_vec(),
                lease: 0,
            }],
            count: 1,
            more: false,
            ..Default::default()
        };
        let expected = r#"{"header":{"cluster_id":"6868361742311383469","member_id":"7881521356102228245","revision":"3","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}],"count":"1"}"#;
        assert_eq!(codec.encode(&r).expect("encode"), expected);
        // Key-values in their wire form are written the same.
        let mut wire = crate::proto::range_response::EncodedKvsBuilder::default();
        wire.push(&r.kvs[0]);
        let encoded = RangeResponse {
            kvs: Vec::new(),
            encoded_kvs: wire.finish(),
            ..r.clone()
        };
        assert_eq!(codec.encode(&encoded).expect("encode"), expected);
        let miss = RangeResponse {
            header: header(),
            ..Default::default()
        };
        assert_eq!(
            codec.encode(&miss).expect("encode"),
            r#"{"header":{"cluster_id":"6868361742311383469","member_id":"7881521356102228245","revision":"3","raft_term":"2"}}"#
        );
        let g = LeaseGrantResponse {
            header: header(),
            id: 1234,
            ttl: 60,
            error: String::new(),
        };
        assert!(codec
            .encode(&g)
            .expect("encode")
            .ends_with(r#","ID":"1234","TTL":"60"}"#));
        let s = StatusResponse {
            version: "3.4.23".into(),
            db_size: 20480,
            raft_index: 28,
            ..Default::default()
        };
        assert_eq!(
            codec.encode(&s).expect("encode"),
            r#"{"version":"3.4.23","dbSize":"20480","raftIndex":"28"}"#
        );
        let w = WatchResponse {
            watch_id: 1,
            events: vec![Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    key: b"aa".to_vec(),
                    mod_revision: 8,
                    ..Default::default()
                }),
                prev_kv: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            codec.result_line(&w).expect("encode"),
            "{\"result\":{\"watch_id\":\"1\",\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"YWE=\",\"mod_revision\":\"8\"}}]}}\n"
        );
    }

    #[test]
    fn requests_accept_what_etcds_gateway_accepts() {
        let codec = JsonCodec::new();
        let r: RangeRequest = codec
            .decode_body(br#"{"key":"Zm9v","range_end":"AA==","revision":"2","limit":5,"sortOrder":"DESCEND","bogus":1} trailing"#)
            .expect("decode");
        assert_eq!(r.key, b"foo");
        assert_eq!(r.range_end, b"\0");
        assert_eq!((r.revision, r.limit), (2, 5));
        assert_eq!(r.sort_order, SortOrder::Descend as i32);
        for empty in [&b""[..], b"  ", b"null"] {
            let r: RangeRequest = codec.decode_body(empty).expect("empty body");
            assert_eq!(r, RangeRequest::default());
        }
        let e = codec
            .decode_body::<RangeRequest>(br#"{"key":"Zm9v""#)
            .expect_err("truncated");
        assert_eq!(
            e.message, "unexpected EOF",
            "etcd's words for a truncated body"
        );
        for bad in [
            &br#"{"key":"Zm9v""#[..],
            b"not json",
            br#"{"key":"!!!"}"#,
            b"[]",
            br#"{"limit":"x"}"#,
        ] {
            let e = codec
                .decode_body::<RangeRequest>(bad)
                .expect_err("bad body");
            assert_eq!(
                e.code,
                Code::InvalidArgument,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        assert_eq!(
            quote("a<b>&\"c\u{2028}"),
            r#""a\u003cb\u003e\u0026\"c\u2028""#
        );
    }
}
