//! A reader and writer for bbolt database files, the single-file B+tree format etcd keeps its
//! backend in and streams as a Maintenance snapshot.
//!
//! This module owns the on-disk page format only: it turns bytes into nested buckets of ordered
//! key/value pairs ([`Db::read`]) and nested buckets back into a complete file ([`write()`]). It knows
//! nothing of etcd's bucket layout (that is `etcd_snapshot`'s job) and imports nothing from kvd.
//!
//! # The format facts this module relies on
//!
//! All integers are little-endian (bbolt writes its structs in the machine's byte order, and every
//! platform etcd ships for is little-endian).
//!
//! * The file is a sequence of pages of `page_size` bytes; page `n` starts at byte `n * page_size`.
//!   A page may continue into `overflow` following pages (an element larger than a page).
//! * Page header, 16 bytes: `id: u64` (the page's own number), `flags: u16` (branch `0x01`,
//!   leaf `0x02`, meta `0x04`, freelist `0x10`), `count: u16` (elements), `overflow: u32`.
//! * Pages 0 and 1 are meta pages. After the header comes the meta, 64 bytes: `magic: u32`
//!   (`0xED0CDAED`), `version: u32` (2), `page_size: u32`, `flags: u32`, the root bucket header
//!   (`root: u64` page id, `sequence: u64`), `freelist: u64` (page id, or `u64::MAX` when the
//!   freelist is not stored, as etcd runs bbolt), `pgid: u64` (the high-water mark: number of pages
//!   in use), `txid: u64`, `checksum: u64`. The checksum is FNV-1a 64 over the first 56 bytes of
//!   the meta; a stored checksum of 0 is not checked. Readers use the valid meta with the higher
//!   txid. A snapshot (bbolt's `Tx.WriteTo`) writes the same meta to both pages, page 1 with
//!   txid - 1.
//! * Freelist page: `count` page ids (`u64`) follow the header; when `count` is `0xFFFF` the first
//!   `u64` holds the real count and the ids follow it.
//! * Branch page: `count` elements of 16 bytes (`pos: u32`, `ksize: u32`, `pgid: u64`), each naming
//!   a child page and that child's first key; `pos` is the offset of the key from the start of its
//!   own element.
//! * Leaf page: `count` elements of 16 bytes (`flags: u32`, `pos: u32`, `ksize: u32`,
//!   `vsize: u32`); key and value lie back to back at `pos` bytes past the element. Flag `0x01`
//!   marks a nested bucket, whose value is a 16-byte bucket header (`root: u64`, `sequence: u64`).
//!   A bucket with `root == 0` is *inline*: its single leaf page (header with id 0, then elements)
//!   follows the header inside the value. bbolt inlines a bucket that has no nested buckets and
//!   whose leaf page would take at most a quarter of a page.
//! * Keys are unique and sorted bytewise within a bucket; keys are 1..=32768 bytes, values at most
//!   2^31 - 2 bytes. The root bucket holds only buckets.
//! * bbolt's consistency check (which `etcdctl snapshot status` runs) wants every page below the
//!   high-water mark to be either reachable exactly once from the meta or listed as free.
//!
//! The writer lays a file out as bbolt's own writer would leave it after a fresh bulk load: meta
//! pages 0 and 1, an empty freelist on page 2, then the buckets' pages (children before parents),
//! leaves filled up to one page each, and branch levels above them until one root page remains.

mod format;
mod read;
#[cfg(test)]
mod tests;
mod write;

use std::collections::BTreeMap;

pub use write::{write, DEFAULT_PAGE_SIZE};

/// The largest key bbolt accepts, in bytes.
pub const MAX_KEY_SIZE: usize = 32_768;

/// The largest value bbolt accepts, in bytes.
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;

/// Why a bbolt file could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoltError {
    /// The bytes do not start with a bbolt meta page (wrong magic, or far too short).
    #[error("not a bbolt database file: {0}")]
    NotBolt(String),
    /// The file is bbolt, but of a format version other than 2.
    #[error("unsupported bbolt file format version {0} (only version 2 can be read)")]
    Version(u32),
    /// Neither meta page passes its checksum.
    #[error(
        "bbolt meta page {page} is corrupt: stored checksum {stored:#018x}, computed {computed:#018x}"
    )]
    MetaChecksum {
        /// The meta page (0 or 1) that was checked.
        page: u64,
        /// The checksum stored in the page.
        stored: u64,
        /// The checksum computed over the page's meta fields.
        computed: u64,
    },
    /// The file is shorter than its meta page says.
    #[error(
        "bbolt file is truncated: its meta page says {pages} pages of {page_size} bytes \
         ({expected} bytes), but only {actual} bytes are there"
    )]
    Truncated {
        /// Pages in use according to the meta page.
        pages: u64,
        /// The file's page size.
        page_size: u32,
        /// `pages * page_size`.
        expected: u64,
        /// The number of bytes given.
        actual: u64,
    },
    /// A page or element is inconsistent (bad type, out of bounds, keys out of order, ...).
    #[error("corrupt bbolt file: page {page}: {reason}")]
    Corrupt {
        /// The page where the problem was found.
        page: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A page size the format cannot use.
    #[error("invalid bbolt page size {0}: it must be a power of two from 512 to 65536")]
    PageSize(u32),
    /// A key that bbolt would refuse (empty, or longer than [`MAX_KEY_SIZE`]).
    #[error("invalid bbolt key of {len} bytes: keys must be 1 to {MAX_KEY_SIZE} bytes long")]
    KeySize {
        /// The key's length.
        len: usize,
    },
    /// A value longer than [`MAX_VALUE_SIZE`].
    #[error("bbolt value of {len} bytes is too large (at most {MAX_VALUE_SIZE} bytes)")]
    ValueSize {
        /// The value's length.
        len: usize,
    },
}

/// Where a [`Db`] was read from: the figures of the file's chosen meta page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileInfo {
    /// The file's page size in bytes.
    pub page_size: u32,
    /// The high-water mark: pages in use, so the database size is `page_count * page_size`.
    pub page_count: u64,
    /// The transaction id of the meta page in use.
    pub txid: u64,
    /// The number of pages the file lists as free (0 when, as etcd runs bbolt, no freelist is
    /// stored).
    pub free_pages: u64,
}

impl FileInfo {
    /// The database size as bbolt reports it (`Tx.Size`): `page_count * page_size`.
    pub fn size(&self) -> u64 {
        self.page_count.saturating_mul(u64::from(self.page_size))
    }
}

/// A whole bbolt database: its top-level buckets by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Db {
    /// Top-level buckets, ordered by name as bbolt keeps them.
    pub buckets: BTreeMap<Vec<u8>, Bucket>,
    /// The root bucket's sequence number (bbolt's `NextSequence` counter; normally 0).
    pub root_sequence: u64,
    /// The file's figures when the database was read from a file; all zero for a database built in
    /// memory. [`write()`] does not use them.
    pub info: FileInfo,
}

impl Db {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a bbolt file. Bytes past the high-water mark (such as etcd's sha256 trailer) are
    /// ignored.
    ///
    /// Checks the magic number, the format version, the meta checksums, that every page lies
    /// inside the file and below the high-water mark, that page types and element bounds are
    /// sane, that no page is used twice or both used and free, and that keys are ordered.
    ///
    /// # Errors
    ///
    /// A [`BoltError`] naming what is wrong with the file.
    pub fn read(bytes: &[u8]) -> Result<Db, BoltError> {
        read::read(bytes)
    }

    /// The top-level bucket `name`, if present.
    pub fn bucket(&self, name: &[u8]) -> Option<&Bucket> {
        self.buckets.get(name)
    }

    /// The top-level bucket `name`, created empty if absent.
    pub fn bucket_mut(&mut self, name: &[u8]) -> &mut Bucket {
        self.buckets.entry(name.to_vec()).or_default()
    }
}

/// A bucket: ordered keys, each holding a value or a nested bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bucket {
    /// The bucket's entries, ordered bytewise by key as bbolt keeps them.
    pub entries: BTreeMap<Vec<u8>, Entry>,
    /// The bucket's sequence number (bbolt's `NextSequence` counter; normally 0).
    pub sequence: u64,
}

/// What a key in a [`Bucket`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A plain value.
    Value(Vec<u8>),
    /// A nested bucket.
    Bucket(Bucket),
}

impl Bucket {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing whatever it held.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.entries.insert(key.into(), Entry::Value(value.into()));
    }

    /// Sets `key` to a nested bucket, replacing whatever it held.
    pub fn put_bucket(&mut self, key: impl Into<Vec<u8>>, bucket: Bucket) {
        self.entries.insert(key.into(), Entry::Bucket(bucket));
    }

    /// The value under `key`, if it holds a plain value.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        match self.entries.get(key) {
            Some(Entry::Value(v)) => Some(v),
            _ => None,
        }
    }

    /// The nested bucket under `key`, if it holds one.
    pub fn bucket(&self, key: &[u8]) -> Option<&Bucket> {
        match self.entries.get(key) {
            Some(Entry::Bucket(b)) => Some(b),
            _ => None,
        }
    }

    /// The plain key/value pairs, in key order (nested buckets are skipped).
    pub fn values(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().filter_map(|(k, e)| match e {
            Entry::Value(v) => Some((k.as_slice(), v.as_slice())),
            Entry::Bucket(_) => None,
        })
    }

    /// The number of entries (values and nested buckets).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the bucket has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
