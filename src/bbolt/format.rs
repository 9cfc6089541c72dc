//! The fixed layouts of bbolt's file format: page headers, elements, meta pages, bucket headers.

use super::BoltError;

/// bbolt's magic number, the first field of a meta.
pub(super) const MAGIC: u32 = 0xED0C_DAED;
/// The only file format version in use.
pub(super) const VERSION: u32 = 2;

/// Page header: id u64, flags u16, count u16, overflow u32.
pub(super) const PAGE_HEADER_SIZE: usize = 16;
/// Branch element: pos u32, ksize u32, pgid u64.
pub(super) const BRANCH_ELEMENT_SIZE: usize = 16;
/// Leaf element: flags u32, pos u32, ksize u32, vsize u32.
pub(super) const LEAF_ELEMENT_SIZE: usize = 16;
/// Bucket header stored as a nested bucket's value: root u64, sequence u64.
pub(super) const BUCKET_HEADER_SIZE: usize = 16;
/// The meta fields after the page header, checksum included.
pub(super) const META_SIZE: usize = 64;
/// The meta bytes the checksum covers (everything before the checksum).
const META_CHECKSUMMED: usize = 56;

/// Page flags.
pub(super) const BRANCH_PAGE: u16 = 0x01;
pub(super) const LEAF_PAGE: u16 = 0x02;
pub(super) const META_PAGE: u16 = 0x04;
pub(super) const FREELIST_PAGE: u16 = 0x10;

/// Leaf element flag marking a nested bucket.
pub(super) const BUCKET_LEAF_FLAG: u32 = 0x01;

/// The meta's freelist page id when the freelist is not stored in the file.
pub(super) const NO_FREELIST: u64 = u64::MAX;

/// Smallest and largest page size accepted.
pub(super) const MIN_PAGE_SIZE: u32 = 512;
pub(super) const MAX_PAGE_SIZE: u32 = 65_536;

/// Checks a page size is one bbolt could have written and we can handle.
pub(super) fn check_page_size(page_size: u32) -> Result<(), BoltError> {
    if page_size.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
        Ok(())
    } else {
        Err(BoltError::PageSize(page_size))
    }
}

/// Reads a little-endian u16 at `off` (the caller has checked bounds).
pub(super) fn le_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[off..off + 2]);
    u16::from_le_bytes(a)
}

/// Reads a little-endian u32 at `off` (the caller has checked bounds).
pub(super) fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

/// Reads a little-endian u64 at `off` (the caller has checked bounds).
pub(super) fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// A page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageHeader {
    pub id: u64,
    pub flags: u16,
    pub count: u16,
    pub overflow: u32,
}

impl PageHeader {
    /// Decodes the header at the start of `b` (at least [`PAGE_HEADER_SIZE`] bytes).
    pub fn decode(b: &[u8]) -> Self {
        Self {
            id: le_u64(b, 0),
            flags: le_u16(b, 8),
            count: le_u16(b, 10),
            overflow: le_u32(b, 12),
        }
    }

    /// Encodes the header into the start of `b` (at least [`PAGE_HEADER_SIZE`] bytes).
    pub fn encode(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..10].copy_from_slice(&self.flags.to_le_bytes());
        b[10..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&self.overflow.to_le_bytes());
    }

    /// A readable name for the page type, for error messages.
    pub fn type_name(&self) -> String {
        if self.flags & BRANCH_PAGE != 0 {
            "branch".into()
        } else if self.flags & LEAF_PAGE != 0 {
            "leaf".into()
        } else if self.flags & META_PAGE != 0 {
            "meta".into()
        } else if self.flags & FREELIST_PAGE != 0 {
            "freelist".into()
        } else {
            format!("unknown<{:02x}>", self.flags)
        }
    }
}

/// A meta page's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    pub magic: u32,
    pub version: u32,
    pub page_size: u32,
    pub flags: u32,
    pub root: u64,
    pub root_sequence: u64,
    pub freelist: u64,
    pub pgid: u64,
    pub txid: u64,
    pub checksum: u64,
}

impl Meta {
    /// Decodes a meta from `b` (the [`META_SIZE`] bytes after a meta page's header).
    pub fn decode(b: &[u8]) -> Self {
        Self {
            magic: le_u32(b, 0),
            version: le_u32(b, 4),
            page_size: le_u32(b, 8),
            flags: le_u32(b, 12),
            root: le_u64(b, 16),
            root_sequence: le_u64(b, 24),
            freelist: le_u64(b, 32),
            pgid: le_u64(b, 40),
            txid: le_u64(b, 48),
            checksum: le_u64(b, 56),
        }
    }

    /// Encodes the meta, checksum field as it stands.
    pub fn encode(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.root.to_le_bytes());
        b[24..32].copy_from_slice(&self.root_sequence.to_le_bytes());
        b[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        b[40..48].copy_from_slice(&self.pgid.to_le_bytes());
        b[48..56].copy_from_slice(&self.txid.to_le_bytes());
        b[56..64].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    /// The FNV-1a 64 checksum over the fields before `checksum`.
    pub fn sum64(&self) -> u64 {
        fnv1a64(&self.encode()[..META_CHECKSUMMED])
    }

    /// Checks magic, version and checksum as bbolt does when it opens a file.
    pub fn validate(&self, page: u64) -> Result<(), BoltError> {
        if self.magic != MAGIC {
            return Err(BoltError::NotBolt(format!(
                "meta page {page} has magic {:#010x}, expected {MAGIC:#010x}",
                self.magic
            )));
        }
        if self.version != VERSION {
            return Err(BoltError::Version(self.version));
        }
        let computed = self.sum64();
        if self.checksum != 0 && self.checksum != computed {
            return Err(BoltError::MetaChecksum {
                page,
                stored: self.checksum,
                computed,
            });
        }
        Ok(())
    }
}

/// FNV-1a, 64-bit (Go's `hash/fnv.New64a`).
pub(super) fn fnv1a64(data: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    data.iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn header_and_meta_round_trip() {
        let h = PageHeader {
            id: 7,
            flags: LEAF_PAGE,
            count: 3,
            overflow: 2,
        };
        let mut b = [0u8; PAGE_HEADER_SIZE];
        h.encode(&mut b);
        assert_eq!(PageHeader::decode(&b), h);

        let mut m = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: 3,
            root_sequence: 9,
            freelist: 2,
            pgid: 4,
            txid: 5,
            checksum: 0,
        };
        m.checksum = m.sum64();
        assert_eq!(Meta::decode(&m.encode()), m);
        assert!(m.validate(0).is_ok());
        let mut bad = m;
        bad.txid = 6;
        assert!(matches!(
            bad.validate(1),
            Err(BoltError::MetaChecksum { page: 1, .. })
        ));
        bad.checksum = 0;
        assert!(bad.validate(1).is_ok(), "a zero checksum is not checked");
    }

    #[test]
    fn page_sizes() {
        for ok in [512, 1024, 4096, 16384, 65536] {
            assert!(check_page_size(ok).is_ok(), "{ok}");
        }
        for bad in [0, 256, 1000, 4095, 131_072] {
            assert_eq!(check_page_size(bad), Err(BoltError::PageSize(bad)));
        }
    }
}
