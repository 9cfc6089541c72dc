//! The WAL's record framing: `len` (u32, little-endian: the bytes after the checksum), `crc`
//! (u32, little-endian: CRC-32C of those bytes), then the kind (one byte), the tag (u64,
//! little-endian: the highest raft index the record refers to, 0 for none) and the payload.
//! A `len` of zero marks the end of the written part of a segment (segments are preallocated,
//! so the rest reads as zeros).

/// Bytes before a record's kind: length and checksum.
pub const HEADER: usize = 8;
/// Bytes of kind and tag.
const PREFIX: usize = 9;

/// Largest record accepted when reading (a raft append of many large entries fits easily).
pub const MAX_RECORD: usize = 256 << 20;

/// Appends one framed record to `out`.
///
/// # Panics
/// If the payload is 4 GiB or more (raft entries are bounded far below that).
pub fn encode(kind: u8, tag: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len() + PREFIX).expect("a WAL record is smaller than 4 GiB");
    let mut prefix = [0u8; PREFIX];
    prefix[0] = kind;
    prefix[1..].copy_from_slice(&tag.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&prefix), payload);
    out.reserve(HEADER + PREFIX + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(payload);
}

/// What reading at an offset found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// A whole, intact record and the offset after it.
    Record {
        /// The record's kind.
        kind: u8,
        /// Its tag.
        tag: u64,
        /// Its payload.
        payload: &'a [u8],
        /// Offset just past it.
        next: usize,
    },
    /// The end of the written part: zeros, or the end of the data.
    End,
    /// Bytes that are not an intact record: a write cut short by a crash, or corruption.
    Torn(&'static str),
}

/// Reads the record at `offset` of `data`.
pub fn read(data: &[u8], offset: usize) -> Read<'_> {
    let Some(header) = data.get(offset..offset + HEADER) else {
        return if data[offset.min(data.len())..].iter().all(|b| *b == 0) {
            Read::End
        } else {
            Read::Torn("a record header cut short")
        };
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 {
        return if crc == 0 {
            Read::End
        } else {
            Read::Torn("a zero length with a checksum")
        };
    }
    if !(PREFIX..=MAX_RECORD).contains(&len) {
        return Read::Torn("an impossible record length");
    }
    let start = offset + HEADER;
    let Some(body) = data.get(start..start + len) else {
        return Read::Torn("a record cut short");
    };
    if crc32c::crc32c(body) != crc {
        return Read::Torn("a checksum mismatch");
    }
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&body[1..PREFIX]);
    Read::Record {
        kind: body[0],
        tag: u64::from_le_bytes(tag),
        payload: &body[PREFIX..],
        next: start + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_zeros_end_the_data() {
        let mut buf = Vec::new();
        encode(1, 42, b"hello", &mut buf);
        encode(2, 0, b"", &mut buf);
        let end = buf.len();
        buf.extend_from_slice(&[0u8; 64]);
        let Read::Record {
            kind,
            tag,
            payload,
            next,
        } = read(&buf, 0)
        else {
            panic!("first record");
        };
        assert_eq!((kind, tag, payload), (1, 42, &b"hello"[..]));
        let Read::Record {
            kind,
            tag,
            payload,
            next,
        } = read(&buf, next)
        else {
            panic!("second record");
        };
        assert_eq!((kind, tag, payload, next), (2, 0, &b""[..], end));
        assert_eq!(read(&buf, next), Read::End);
        assert_eq!(read(&buf[..end], end), Read::End, "end of data");
    }

    #[test]
    fn torn_and_corrupt_records_are_recognised() {
        let mut buf = Vec::new();
        encode(7, 9, b"payload bytes", &mut buf);
        for cut in 1..buf.len() {
            assert!(
                matches!(read(&buf[..cut], 0), Read::Torn(_)),
                "cut at {cut}"
            );
        }
        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(read(&flipped, 0), Read::Torn("a checksum mismatch"));
    }
}
