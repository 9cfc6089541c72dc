//! Writing a [`Db`] as a complete bbolt file.

use std::borrow::Cow;
use std::ops::Range;

use super::format::{
    check_page_size, Meta, PageHeader, BRANCH_ELEMENT_SIZE, BRANCH_PAGE, BUCKET_HEADER_SIZE,
    BUCKET_LEAF_FLAG, FREELIST_PAGE, LEAF_ELEMENT_SIZE, LEAF_PAGE, MAGIC, META_PAGE, META_SIZE,
    PAGE_HEADER_SIZE, VERSION,
};
use super::{BoltError, Bucket, Db, Entry, MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// The page size bbolt picks on Linux (the OS page size), and so the one etcd's files use.
pub const DEFAULT_PAGE_SIZE: u32 = 4096;

/// The transaction id written to meta page 0; meta page 1 gets one less, as in a bbolt snapshot.
/// An even id on page 0 and an odd one on page 1 keep bbolt's "meta page = txid % 2" habit.
const TXID: u64 = 2;

/// The freelist's page: right after the two meta pages.
const FREELIST_PGID: u64 = 2;
/// [`FREELIST_PGID`] as an index into the file's pages.
const FREELIST_INDEX: usize = 2;

/// Writes `db` as a bbolt file with pages of `page_size` bytes.
///
/// The file has two meta pages, an empty freelist page and the buckets' leaf and branch pages;
/// small buckets without nested buckets are stored inline, as bbolt does. It is exactly
/// `page_count * page_size` bytes long.
///
/// # Errors
///
/// [`BoltError::PageSize`] for a page size other than a power of two from 512 to 65536;
/// [`BoltError::KeySize`] for an empty key (or bucket name) or one over [`MAX_KEY_SIZE`] bytes;
/// [`BoltError::ValueSize`] for a value over [`MAX_VALUE_SIZE`] bytes.
pub fn write(db: &Db, page_size: u32) -> Result<Vec<u8>, BoltError> {
    check_page_size(page_size)?;
    let ps = page_size as usize;
    let mut w = Writer {
        ps,
        out: vec![0u8; 3 * ps],
        next: 3,
    };

    // The root bucket: its entries are the top-level buckets.
    let mut elems = Vec::with_capacity(db.buckets.len());
    for (name, bucket) in &db.buckets {
        check_key(name)?;
        elems.push(Elem {
            flags: BUCKET_LEAF_FLAG,
            key: name,
            value: Cow::Owned(w.bucket_value(bucket)?),
        });
    }
    let root = w.tree(&elems);

    // Freelist: no free pages.
    PageHeader {
        id: FREELIST_PGID,
        flags: FREELIST_PAGE,
        count: 0,
        overflow: 0,
    }
    .encode(&mut w.out[FREELIST_INDEX * ps..]);

    // Meta pages: the same meta twice, page 1 one transaction older.
    for (page, txid) in [(0usize, TXID), (1, TXID - 1)] {
        let mut meta = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size,
            flags: 0,
            root,
            root_sequence: db.root_sequence,
            freelist: FREELIST_PGID,
            pgid: w.next,
            txid,
            checksum: 0,
        };
        meta.checksum = meta.sum64();
        let at = page * ps;
        PageHeader {
            id: page as u64,
            flags: META_PAGE,
            count: 0,
            overflow: 0,
        }
        .encode(&mut w.out[at..]);
        w.out[at + PAGE_HEADER_SIZE..at + PAGE_HEADER_SIZE + META_SIZE]
            .copy_from_slice(&meta.encode());
    }
    Ok(w.out)
}

/// One leaf element to be written.
struct Elem<'a> {
    flags: u32,
    key: &'a [u8],
    value: Cow<'a, [u8]>,
}

impl Elem<'_> {
    fn size(&self) -> usize {
        LEAF_ELEMENT_SIZE + self.key.len() + self.value.len()
    }
}

struct Writer {
    ps: usize,
    out: Vec<u8>,
    next: u64,
}

impl Writer {
    /// Writes a nested bucket's pages (unless it is inlined) and returns the value its parent
    /// stores under its name.
    fn bucket_value(&mut self, bucket: &Bucket) -> Result<Vec<u8>, BoltError> {
        let mut elems = Vec::with_capacity(bucket.entries.len());
        let mut has_buckets = false;
        for (key, entry) in &bucket.entries {
            check_key(key)?;
            elems.push(match entry {
                Entry::Value(v) => {
                    if v.len() > MAX_VALUE_SIZE {
                        return Err(BoltError::ValueSize { len: v.len() });
                    }
                    Elem {
                        flags: 0,
                        key,
                        value: Cow::Borrowed(v),
                    }
                }
                Entry::Bucket(b) => {
                    has_buckets = true;
                    Elem {
                        flags: BUCKET_LEAF_FLAG,
                        key,
                        value: Cow::Owned(self.bucket_value(b)?),
                    }
                }
            });
        }

        let leaf_size = PAGE_HEADER_SIZE + elems.iter().map(Elem::size).sum::<usize>();
        let mut value = Vec::with_capacity(BUCKET_HEADER_SIZE);
        if !has_buckets && leaf_size <= self.ps / 4 {
            // Inline: header with root 0, then the leaf page itself (page id 0).
            value.extend_from_slice(&0u64.to_le_bytes());
            value.extend_from_slice(&bucket.sequence.to_le_bytes());
            value.extend_from_slice(&leaf_page(0, 0, &elems, leaf_size));
        } else {
            let root = self.tree(&elems);
            value.extend_from_slice(&root.to_le_bytes());
            value.extend_from_slice(&bucket.sequence.to_le_bytes());
        }
        Ok(value)
    }

    /// Writes a B+tree of leaf pages (and branch pages above them when one page is not enough)
    /// holding `elems`, returning the root page id.
    fn tree(&mut self, elems: &[Elem<'_>]) -> u64 {
        // Leaves.
        let mut level: Vec<(&[u8], u64)> = Vec::new();
        for group in groups(elems.iter().map(Elem::size), self.ps, 1) {
            let chunk = &elems[group];
            let size = PAGE_HEADER_SIZE + chunk.iter().map(Elem::size).sum::<usize>();
            let (id, overflow) = self.alloc(size);
            self.place(id, &leaf_page(id, overflow, chunk, size));
            level.push((chunk[0].key, id));
        }
        if level.is_empty() {
            // An empty bucket is one empty leaf page.
            let (id, overflow) = self.alloc(PAGE_HEADER_SIZE);
            self.place(id, &leaf_page(id, overflow, &[], PAGE_HEADER_SIZE));
            return id;
        }

        // Branch levels until a single root remains.
        while level.len() > 1 {
            let mut up = Vec::new();
            let sizes = level.iter().map(|(k, _)| BRANCH_ELEMENT_SIZE + k.len());
            for group in groups(sizes, self.ps, 2) {
                let chunk = &level[group];
                let size = PAGE_HEADER_SIZE
                    + chunk
                        .iter()
                        .map(|(k, _)| BRANCH_ELEMENT_SIZE + k.len())
                        .sum::<usize>();
                let (id, overflow) = self.alloc(size);
                self.place(id, &branch_page(id, overflow, chunk, size));
                up.push((chunk[0].0, id));
            }
            level = up;
        }
        level[0].1
    }

    /// Reserves enough whole pages for `size` bytes, returning the first page's id and the
    /// number of overflow pages after it.
    fn alloc(&mut self, size: usize) -> (u64, u32) {
        let pages = size.div_ceil(self.ps).max(1);
        let id = self.next;
        self.next += pages as u64;
        self.out.resize(self.out.len() + pages * self.ps, 0);
        let overflow =
            u32::try_from(pages - 1).expect("a page of at most 2^31 bytes spans < 2^32 pages");
        (id, overflow)
    }

    /// Copies a built page into its place in the file.
    fn place(&mut self, id: u64, page: &[u8]) {
        let at =
            usize::try_from(id).expect("page ids fit in memory: the file is in memory") * self.ps;
        self.out[at..at + page.len()].copy_from_slice(page);
    }
}

/// Splits element sizes into runs that each fill at most one page, with at least `min`
/// elements per run where there are that many (a leaf run may be a single element larger than a
/// page, which then gets overflow pages of its own; branch runs take at least two children so
/// that each level is smaller than the one below) and at most 0xFFFE elements (the header's count
/// is 16 bits).
fn groups(sizes: impl Iterator<Item = usize>, ps: usize, min: usize) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    let mut used = PAGE_HEADER_SIZE;
    let mut i = 0;
    for size in sizes {
        let n = i - start;
        if n >= min.max(1) && (used + size > ps || n >= 0xFFFE) {
            out.push(start..i);
            start = i;
            used = PAGE_HEADER_SIZE;
        }
        used += size;
        i += 1;
    }
    if i > start {
        match out.last_mut() {
            // A short tail joins the run before it rather than make a page of its own.
            Some(prev) if i - start < min && i - prev.start < 0xFFFE => prev.end = i,
            _ => out.push(start..i),
        }
    }
    out
}

/// Builds a leaf page of `size` bytes spanning `1 + overflow` pages (header, elements, then keys and values).
fn leaf_page(id: u64, overflow: u32, elems: &[Elem<'_>], size: usize) -> Vec<u8> {
    let mut page = vec![0u8; size];
    header(id, LEAF_PAGE, elems.len(), overflow).encode(&mut page);
    let mut data = PAGE_HEADER_SIZE + elems.len() * LEAF_ELEMENT_SIZE;
    for (i, e) in elems.iter().enumerate() {
        let at = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
        page[at..at + 4].copy_from_slice(&e.flags.to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&u32_of(data - at).to_le_bytes());
        page[at + 8..at + 12].copy_from_slice(&u32_of(e.key.len()).to_le_bytes());
        page[at + 12..at + 16].copy_from_slice(&u32_of(e.value.len()).to_le_bytes());
        page[data..data + e.key.len()].copy_from_slice(e.key);
        data += e.key.len();
        page[data..data + e.value.len()].copy_from_slice(&e.value);
        data += e.value.len();
    }
    page
}

/// Builds a branch page of `size` bytes from (first key, child page) pairs.
fn branch_page(id: u64, overflow: u32, children: &[(&[u8], u64)], size: usize) -> Vec<u8> {
    let mut page = vec![0u8; size];
    header(id, BRANCH_PAGE, children.len(), overflow).encode(&mut page);
    let mut data = PAGE_HEADER_SIZE + children.len() * BRANCH_ELEMENT_SIZE;
    for (i, (key, child)) in children.iter().enumerate() {
        let at = PAGE_HEADER_SIZE + i * BRANCH_ELEMENT_SIZE;
        page[at..at + 4].copy_from_slice(&u32_of(data - at).to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&u32_of(key.len()).to_le_bytes());
        page[at + 8..at + 16].copy_from_slice(&child.to_le_bytes());
        page[data..data + key.len()].copy_from_slice(key);
        data += key.len();
    }
    page
}

/// The header of a page with `count` elements that spans `1 + overflow` pages.
fn header(id: u64, flags: u16, count: usize, overflow: u32) -> PageHeader {
    PageHeader {
        id,
        flags,
        count: u16::try_from(count).expect("groups() keeps pages under 0xFFFF elements"),
        overflow,
    }
}

/// Converts an in-page offset or length to the u32 the format stores.
fn u32_of(v: usize) -> u32 {
    u32::try_from(v).expect("keys and values are checked to be under 2^31 bytes")
}

fn check_key(key: &[u8]) -> Result<(), BoltError> {
    if key.is_empty() || key.len() > MAX_KEY_SIZE {
        return Err(BoltError::KeySize { len: key.len() });
    }
    Ok(())
}
