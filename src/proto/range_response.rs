//! etcd's `RangeResponse`, written by hand instead of generated: besides the decoded `kvs` it
//! can carry key-values already in their wire form ([`EncodedKvs`]), copied from storage as
//! stored. A range over a million keys then sends one buffer instead of decoding a million
//! records into structs and encoding them again.
//!
//! On the wire it is exactly the generated message: header (1), kvs (2), more (3), count (4).
//! Decoding always fills `kvs`.
#![warn(missing_docs, clippy::all)]

use std::fmt;
use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use super::etcdserverpb::ResponseHeader;
use super::mvccpb::KeyValue;

/// The field number of `kvs`.
const KVS_FIELD: u32 = 2;

/// Key-values in their wire form: each one `kvs`'s tag, its length and an encoded `KeyValue`.
///
/// The records sit in one buffer, either in the order they are sent or, when they were read in
/// another order (storage returns them by revision, a range wants them by key), with the span
/// of each in sending order: encoding then gathers them straight into the outgoing message
/// instead of copying the whole buffer once more to reorder it.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EncodedKvs {
    bytes: Bytes,
    /// Where each record lies in `bytes`, in sending order (None: `bytes` is in order).
    order: Option<Vec<Range<usize>>>,
    len: usize,
}

impl EncodedKvs {
    /// Records in sending order.
    pub fn in_order(bytes: Bytes, len: usize) -> Self {
        Self {
            bytes,
            order: None,
            len,
        }
    }

    /// Records in `bytes`, sent in the order of `spans` (which together cover `bytes` once).
    pub fn gathered(bytes: Bytes, spans: Vec<Range<usize>>) -> Self {
        Self {
            bytes,
            len: spans.len(),
            order: Some(spans),
        }
    }

    /// How many key-values it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes they take in a message.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// Writes the records, in sending order.
    pub fn write_to(&self, buf: &mut impl BufMut) {
        match &self.order {
            None => buf.put_slice(&self.bytes),
            Some(spans) => {
                for span in spans {
                    buf.put_slice(&self.bytes[span.clone()]);
                }
            }
        }
    }

    /// Decodes them (tests compare them with decoded ranges).
    ///
    /// # Errors
    /// A record that is not a `KeyValue`.
    pub fn decode(&self) -> Result<Vec<KeyValue>, DecodeError> {
        let mut ordered = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut ordered);
        let mut out = Vec::with_capacity(self.len);
        let mut buf = ordered.as_slice();
        while buf.has_remaining() {
            let (tag, wire_type) = encoding::decode_key(&mut buf)?;
            let ctx = DecodeContext::default();
            if tag == KVS_FIELD {
                encoding::message::merge_repeated(wire_type, &mut out, &mut buf, ctx)?;
            } else {
                encoding::skip_field(wire_type, tag, &mut buf, ctx)?;
            }
        }
        Ok(out)
    }
}

impl fmt::Debug for EncodedKvs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncodedKvs({} key-values, {} bytes)",
            self.len,
            self.bytes.len()
        )
    }
}

/// Builds [`EncodedKvs`] one key-value at a time.
#[derive(Debug, Default)]
pub struct EncodedKvsBuilder {
    buf: BytesMut,
    len: usize,
}

impl EncodedKvsBuilder {
    /// A builder with room for `bytes` of records.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(bytes),
            len: 0,
        }
    }

    /// The bytes one record of an encoded key-value of `len` bytes takes.
    pub fn record_len(len: usize) -> usize {
        encoding::key_len(KVS_FIELD) + encoding::encoded_len_varint(len as u64) + len
    }

    /// Appends a key-value already encoded as a `KeyValue` message.
    pub fn push_encoded(&mut self, kv: &[u8]) {
        self.push_parts(kv, &[]);
    }

    /// Appends a key-value whose encoding is `head` followed by `tail` (a stored record with a
    /// field cut out of its middle).
    pub fn push_parts(&mut self, head: &[u8], tail: &[u8]) {
        encoding::encode_key(KVS_FIELD, WireType::LengthDelimited, &mut self.buf);
        encoding::encode_varint((head.len() + tail.len()) as u64, &mut self.buf);
        self.buf.put_slice(head);
        self.buf.put_slice(tail);
        self.len += 1;
    }

    /// Appends a decoded key-value.
    pub fn push(&mut self, kv: &KeyValue) {
        encoding::message::encode(KVS_FIELD, kv, &mut self.buf);
        self.len += 1;
    }

    /// Makes room for `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.buf.len()
    }

    /// The key-values appended so far, in the order appended.
    pub fn finish(self) -> EncodedKvs {
        EncodedKvs::in_order(self.buf.freeze(), self.len)
    }

    /// The key-values appended so far, sent in the order of `spans` (byte ranges of
    /// [`EncodedKvsBuilder::written`] before and after each record).
    pub fn finish_gathered(self, spans: Vec<Range<usize>>) -> EncodedKvs {
        EncodedKvs::gathered(self.buf.freeze(), spans)
    }
}

/// etcd's `RangeResponse`.
#[derive(Clone, Default, PartialEq)]
pub struct RangeResponse {
    /// The response header.
    pub header: Option<ResponseHeader>,
    /// The key-values, decoded. Sent before `encoded_kvs`.
    pub kvs: Vec<KeyValue>,
    /// Whether the limit left key-values out.
    pub more: bool,
    /// How many keys are in the range.
    pub count: i64,
    /// Key-values already encoded, sent after `kvs` (empty on a decoded response).
    pub encoded_kvs: EncodedKvs,
}

impl fmt::Debug for RangeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeResponse")
            .field("header", &self.header)
            .field("kvs", &self.kvs)
            .field("more", &self.more)
            .field("count", &self.count)
            .field("encoded_kvs", &self.encoded_kvs)
            .finish()
    }
}

impl Message for RangeResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if let Some(header) = &self.header {
            encoding::message::encode(1, header, buf);
        }
        encoding::message::encode_repeated(KVS_FIELD, &self.kvs, buf);
        self.encoded_kvs.write_to(buf);
        if self.more {
            encoding::bool::encode(3, &self.more, buf);
        }
        if self.count != 0 {
            encoding::int64::encode(4, &self.count, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => encoding::message::merge(
                wire_type,
                self.header.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            KVS_FIELD => encoding::message::merge_repeated(wire_type, &mut self.kvs, buf, ctx),
            3 => encoding::bool::merge(wire_type, &mut self.more, buf, ctx),
            4 => encoding::int64::merge(wire_type, &mut self.count, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        self.header
            .as_ref()
            .map_or(0, |h| encoding::message::encoded_len(1, h))
            + encoding::message::encoded_len_repeated(KVS_FIELD, &self.kvs)
            + self.encoded_kvs.encoded_len()
            + if self.more {
                encoding::bool::encoded_len(3, &self.more)
            } else {
                0
            }
            + if self.count != 0 {
                encoding::int64::encoded_len(4, &self.count)
            } else {
                0
            }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            lease: 0,
        }
    }

    /// The generated type this one replaces, for comparing wire forms.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Generated {
        #[prost(message, optional, tag = "1")]
        header: Option<ResponseHeader>,
        #[prost(message, repeated, tag = "2")]
        kvs: Vec<KeyValue>,
        #[prost(bool, tag = "3")]
        more: bool,
        #[prost(int64, tag = "4")]
        count: i64,
    }

    #[test]
    fn encoded_key_values_go_on_the_wire_as_decoded_ones() {
        let header = Some(ResponseHeader {
            revision: 9,
            ..Default::default()
        });
        let all = vec![kv("a", "1", 2), kv("b", "", 3), kv("c", "33", 4)];
        let mut builder = EncodedKvsBuilder::default();
        builder.push_encoded(&all[1].encode_to_vec());
        builder.push(&all[2]);
        let encoded = builder.finish();
        assert_eq!(encoded.len(), 2);
        let mixed = RangeResponse {
            header,
            kvs: vec![all[0].clone()],
            more: true,
            count: 7,
            encoded_kvs: encoded,
        };
        let generated = Generated {
            header,
            kvs: all.clone(),
            more: true,
            count: 7,
        };
        let bytes = mixed.encode_to_vec();
        assert_eq!(bytes, generated.encode_to_vec());
        assert_eq!(mixed.encoded_len(), bytes.len());
        let back = RangeResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(back.kvs, all);
        assert!(back.encoded_kvs.is_empty());
        assert_eq!((back.more, back.count), (true, 7));
    }

    #[test]
    fn a_record_split_around_a_field_encodes_as_the_whole() {
        let full = kv("key", "value", 5).encode_to_vec();
        let (head, tail) = full.split_at(4);
        let mut builder = EncodedKvsBuilder::default();
        builder.push_parts(head, tail);
        assert_eq!(
            builder.finish().decode().unwrap(),
            vec![kv("key", "value", 5)]
        );
        assert_eq!(EncodedKvsBuilder::record_len(full.len()), full.len() + 2);
    }
}
