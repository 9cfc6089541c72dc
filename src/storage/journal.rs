//! The apply journal: how a state batch stays all-or-nothing across a crash without the
//! backend's atomic batches (on sled, each of them makes it seal and write its IO buffer
//! twice).
//!
//! A batch that overwrites or removes records is first stored whole as one record under
//! [`JOURNAL_KEY`] (a single record is recovered entirely or not at all), then written key by
//! key, then the journal record is removed. The backend recovers a prefix of its writes
//! (see [`KvBackend`](super::KvBackend)), so after a crash either the journal record is
//! missing — and so is every write of its batch, or all of them are there — or it is present,
//! and writing its batch again completes it. Every write is an absolute put or remove, so
//! replaying it is idempotent. (Batches that only add new records need no journal: see
//! `storage`.)

/// Where the latest state batch is kept (no other state key starts with `j/`).
pub const JOURNAL_KEY: &[u8] = b"j/apply";

pub use super::backend::Write;

/// Encodes `writes` as one record.
pub fn encode(writes: &[Write]) -> Vec<u8> {
    let size: usize = writes
        .iter()
        .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&len32(writes.len()).to_be_bytes());
    for (k, v) in writes {
        out.push(u8::from(v.is_some()));
        out.extend_from_slice(&len32(k.len()).to_be_bytes());
        out.extend_from_slice(k);
        let value = v.as_deref().unwrap_or_default();
        out.extend_from_slice(&len32(value.len()).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("a state batch record is smaller than 4 GiB")
}

/// Decodes a record made by [`encode`]; `None` if it is malformed.
pub fn decode(mut bytes: &[u8]) -> Option<Vec<Write>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if bytes.len() < n {
            return None;
        }
        let (head, tail) = bytes.split_at(n);
        *bytes = tail;
        Some(head)
    }
    fn take_u32(bytes: &mut &[u8]) -> Option<usize> {
        let b = take(bytes, 4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?) as usize)
    }
    let count = take_u32(&mut bytes)?;
    let mut writes = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let is_put = take(&mut bytes, 1)?[0] == 1;
        let klen = take_u32(&mut bytes)?;
        let key = take(&mut bytes, klen)?.to_vec();
        let vlen = take_u32(&mut bytes)?;
        let value = take(&mut bytes, vlen)?.to_vec();
        writes.push((key, is_put.then_some(value)));
    }
    bytes.is_empty().then_some(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_puts_removes_and_empty_values() {
        let writes: Vec<Write> = vec![
            (b"k1".to_vec(), Some(b"v1".to_vec())),
            (b"k2".to_vec(), None),
            (b"k3".to_vec(), Some(Vec::new())),
        ];
        assert_eq!(decode(&encode(&writes)), Some(writes));
        assert_eq!(decode(&encode(&[])), Some(Vec::new()));
    }

    #[test]
    fn a_malformed_record_is_refused() {
        let bytes = encode(&[(b"key".to_vec(), Some(b"value".to_vec()))]);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        assert_eq!(decode(&[0, 0]), None);
    }
}
