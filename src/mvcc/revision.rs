//! Revisions as etcd numbers them, and their 17-byte storage encoding.

/// A revision: `main` is the store revision of a write transaction, `sub` the operation inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    /// The store revision.
    pub main: i64,
    /// The index of the change inside the transaction.
    pub sub: i64,
}

/// Length of an encoded revision (8 bytes main, `_`, 8 bytes sub).
pub const REV_BYTES_LEN: usize = 17;

impl Revision {
    /// A revision from its parts.
    pub fn new(main: i64, sub: i64) -> Self {
        Self { main, sub }
    }

    /// The big-endian encoding etcd uses as the key of the `key` bucket, with a trailing `t`
    /// for tombstones.
    pub fn encode(&self, tombstone: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(REV_BYTES_LEN + 1);
        out.extend_from_slice(&self.main.to_be_bytes());
        out.push(b'_');
        out.extend_from_slice(&self.sub.to_be_bytes());
        if tombstone {
            out.push(b't');
        }
        out
    }

    /// Decodes [`Revision::encode`]'s output; returns the revision and the tombstone flag.
    pub fn decode(bytes: &[u8]) -> Option<(Self, bool)> {
        if bytes.len() < REV_BYTES_LEN || bytes[8] != b'_' {
            return None;
        }
        let main = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let sub = i64::from_be_bytes(bytes[9..17].try_into().ok()?);
        let tombstone = match bytes.len() {
            REV_BYTES_LEN => false,
            18 if bytes[17] == b't' => true,
            _ => return None,
        };
        Some((Self { main, sub }, tombstone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_sorts_like_revisions_and_round_trips() {
        let a = Revision::new(2, 0).encode(false);
        let b = Revision::new(2, 1).encode(true);
        let c = Revision::new(10, 0).encode(false);
        assert!(a < b && b < c);
        assert_eq!(Revision::decode(&b), Some((Revision::new(2, 1), true)));
        assert_eq!(Revision::decode(&c), Some((Revision::new(10, 0), false)));
        assert_eq!(Revision::decode(b"short"), None);
    }
}
