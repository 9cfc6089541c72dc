//! Key-values straight from storage into a response: stored records are `mvccpb.KeyValue`
//! encodings, so a range copies them as they are (or without their value, for keys-only)
//! instead of decoding each into a struct and encoding it again.

use std::ops::Range;

use prost::encoding::{decode_key, decode_varint, WireType};

use crate::proto::mvccpb::KeyValue;
use crate::proto::range_response::{EncodedKvs, EncodedKvsBuilder};

/// `KeyValue.value`'s field number.
const VALUE_FIELD: u32 = 5;

/// Where `KeyValue.value` lies in an encoded key-value: the byte range of its whole field (tag,
/// length and bytes), empty at the end when the value is empty (and so not encoded). None when
/// the record holds a field of a kind `KeyValue` does not have.
pub fn value_field(encoded: &[u8]) -> Option<Range<usize>> {
    let mut buf = encoded;
    let mut found = None;
    while !buf.is_empty() {
        let start = encoded.len() - buf.len();
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        match wire_type {
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                buf = buf.get(len..)?;
            }
            _ => return None,
        }
        if tag == VALUE_FIELD {
            found = Some(start..encoded.len() - buf.len());
        }
    }
    Some(found.unwrap_or(encoded.len()..encoded.len()))
}

/// Appends a stored key-value to `out`, without its value when `keys_only`.
///
/// # Errors
/// A record of another shape that does not decode as a `KeyValue` either (keys-only only: a
/// whole record is copied as it is).
pub fn push_stored(
    out: &mut EncodedKvsBuilder,
    stored: &[u8],
    keys_only: bool,
) -> Result<(), prost::DecodeError> {
    if !keys_only {
        out.push_encoded(stored);
        return Ok(());
    }
    match value_field(stored) {
        Some(value) => out.push_parts(&stored[..value.start], &stored[value.end..]),
        None => {
            let mut kv = <KeyValue as prost::Message>::decode(stored)?;
            kv.value.clear();
            out.push(&kv);
        }
    }
    Ok(())
}

/// Appends a key-value held in memory (not yet in storage), without its value when `keys_only`.
pub fn push_decoded(out: &mut EncodedKvsBuilder, kv: &KeyValue, keys_only: bool) {
    if keys_only && !kv.value.is_empty() {
        let mut kv = kv.clone();
        kv.value.clear();
        out.push(&kv);
    } else {
        out.push(kv);
    }
}

/// Records read out of order (storage returns them by revision) put back in the order wanted.
#[derive(Default)]
pub struct Reorder {
    records: EncodedKvsBuilder,
    spans: Vec<Option<Range<usize>>>,
}

impl Reorder {
    /// Room for `n` records.
    pub fn new(n: usize) -> Self {
        Self {
            records: EncodedKvsBuilder::default(),
            spans: vec![None; n],
        }
    }

    /// Records the key-value for position `i`, written by `write`.
    pub fn put(&mut self, i: usize, write: impl FnOnce(&mut EncodedKvsBuilder)) {
        let start = self.records.written();
        write(&mut self.records);
        let end = self.records.written();
        if start == 0 {
            // Room for as many again as the first, and an eighth more (later revisions take
            // more bytes): one allocation for a range of like values, where doubling would
            // copy the buffer and fault in fresh pages several times over.
            let each = end + end / 8 + 2;
            self.records.reserve(each.saturating_mul(self.spans.len()));
        }
        self.spans[i] = Some(start..end);
    }

    /// Whether position `i` has its key-value.
    pub fn has(&self, i: usize) -> bool {
        self.spans[i].is_some()
    }

    /// The records in position order. None if a position has none.
    pub fn finish(self) -> Option<EncodedKvs> {
        let mut next = 0;
        let in_order = self.spans.iter().all(|s| match s {
            Some(s) if s.start == next => {
                next = s.end;
                true
            }
            _ => false,
        });
        if in_order {
            // Read in the order wanted (keys written in key order).
            return Some(self.records.finish());
        }
        let spans = self.spans.into_iter().collect::<Option<Vec<_>>>()?;
        Some(self.records.finish_gathered(spans))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn kv(value: &[u8], lease: i64) -> KeyValue {
        KeyValue {
            key: b"key".to_vec(),
            create_revision: 3,
            mod_revision: 300,
            version: 2,
            value: value.to_vec(),
            lease,
        }
    }

    #[test]
    fn keys_only_drops_exactly_the_value_field() {
        for (value, lease) in [(&b"v"[..], 0), (&[7u8; 300][..], 5), (&b""[..], 9)] {
            let whole = kv(value, lease);
            let mut out = EncodedKvsBuilder::default();
            push_stored(&mut out, &whole.encode_to_vec(), true).unwrap();
            let mut expected = whole.clone();
            expected.value.clear();
            assert_eq!(out.finish().decode().unwrap(), vec![expected]);
        }
    }

    #[test]
    fn a_record_of_another_shape_has_no_value_field() {
        // A fixed64 field (wire type 1): nothing KeyValue holds.
        assert_eq!(value_field(&[0x09, 1, 2, 3, 4, 5, 6, 7, 8]), None);
        assert_eq!(value_field(&[0x2a, 9, 1]), None, "a length past the end");
    }

    #[test]
    fn records_written_out_of_order_come_back_in_position_order() {
        let kvs: Vec<KeyValue> = (1..=3).map(|i| kv(&[i; 4], 0)).collect();
        let mut r = Reorder::new(3);
        for i in [2, 0, 1] {
            r.put(i, |out| push_decoded(out, &kvs[i], false));
        }
        assert!(r.has(0));
        assert_eq!(r.finish().unwrap().decode().unwrap(), kvs);
        let mut missing = Reorder::new(2);
        missing.put(1, |out| push_decoded(out, &kvs[1], false));
        assert!(missing.finish().is_none());
    }
}
