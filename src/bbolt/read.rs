//! Reading a bbolt file into a [`Db`], checking it as it goes.

use std::collections::BTreeMap;

use super::format::{
    check_page_size, le_u32, le_u64, Meta, PageHeader, BRANCH_ELEMENT_SIZE, BRANCH_PAGE,
    BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, FREELIST_PAGE, LEAF_ELEMENT_SIZE, LEAF_PAGE,
    MAX_PAGE_SIZE, META_SIZE, MIN_PAGE_SIZE, NO_FREELIST, PAGE_HEADER_SIZE,
};
use super::{BoltError, Bucket, Db, Entry, FileInfo};

/// Deeper trees than this are refused: a real file of any size is far shallower, and the limit
/// keeps a crafted file from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// Reads a whole file (see [`Db::read`]).
pub(super) fn read(bytes: &[u8]) -> Result<Db, BoltError> {
    let (meta, page_size) = choose_meta(bytes)?;
    let ps = u64::from(page_size);
    let expected = meta
        .pgid
        .checked_mul(ps)
        .ok_or_else(|| BoltError::Corrupt {
            page: 0,
            reason: format!("high-water mark {} overflows", meta.pgid),
        })?;
    let actual = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if actual < expected {
        return Err(BoltError::Truncated {
            pages: meta.pgid,
            page_size,
            expected,
            actual,
        });
    }
    if meta.pgid < 2 {
        return Err(corrupt(
            0,
            format!("high-water mark {} is below 2", meta.pgid),
        ));
    }
    if meta.root < 2 || meta.root >= meta.pgid {
        return Err(corrupt(
            0,
            format!("root page {} outside pages 2..{}", meta.root, meta.pgid),
        ));
    }

    let mut reader = Reader {
        bytes,
        page_size: ps,
        pgid: meta.pgid,
        used: vec![Use::Unused; usize_of(meta.pgid, 0)?],
    };
    reader.used[0] = Use::Meta;
    reader.used[1] = Use::Meta;

    let free_pages = if meta.freelist == NO_FREELIST {
        0
    } else {
        reader.read_freelist(meta.freelist)?
    };

    let root = reader.read_bucket_pages(meta.root, 0)?;
    if meta.freelist != NO_FREELIST {
        // With a stored freelist, every page must be accounted for (bbolt's consistency check);
        // without one, bbolt treats unreached pages as free.
        if let Some(lost) = reader.used.iter().position(|u| *u == Use::Unused) {
            return Err(corrupt(
                lost as u64,
                "page is neither reachable nor listed as free".into(),
            ));
        }
    }
    let mut buckets = BTreeMap::new();
    for (name, entry) in root {
        match entry {
            Entry::Bucket(b) => {
                buckets.insert(name, b);
            }
            Entry::Value(_) => {
                return Err(corrupt(
                    meta.root,
                    format!(
                        "top-level key {} holds a value, not a bucket",
                        show_key(&name)
                    ),
                ))
            }
        }
    }

    Ok(Db {
        buckets,
        root_sequence: meta.root_sequence,
        info: FileInfo {
            page_size,
            page_count: meta.pgid,
            txid: meta.txid,
            free_pages,
        },
    })
}

/// Picks the meta page bbolt would use: the valid one with the higher txid.
fn choose_meta(bytes: &[u8]) -> Result<(Meta, u32), BoltError> {
    let need = PAGE_HEADER_SIZE + META_SIZE;
    if bytes.len() < need {
        return Err(BoltError::NotBolt(format!(
            "{} bytes is too short for a meta page",
            bytes.len()
        )));
    }
    let meta0 = Meta::decode(&bytes[PAGE_HEADER_SIZE..need]);
    let check0 = meta0
        .validate(0)
        .and_then(|()| check_page_size(meta0.page_size));

    // Meta page 1 sits one page in; if meta 0 is unusable, its page size is unknown, so try the
    // page sizes bbolt could have used (bbolt itself falls back to the OS page size).
    let mut sizes = Vec::new();
    if check0.is_ok() {
        sizes.push(meta0.page_size);
    } else {
        sizes.push(4096);
        let mut s = MIN_PAGE_SIZE;
        while s <= MAX_PAGE_SIZE {
            if s != 4096 {
                sizes.push(s);
            }
            s *= 2;
        }
    }
    let mut meta1 = None;
    for size in sizes {
        let off = usize_of(u64::from(size), 1)?;
        if let Some(b) = bytes.get(off + PAGE_HEADER_SIZE..off + need) {
            let m = Meta::decode(b);
            if m.validate(1).is_ok() && m.page_size == size {
                meta1 = Some(m);
                break;
            }
        }
    }

    match (check0, meta1) {
        (Ok(()), Some(m1)) if m1.txid > meta0.txid => Ok((m1, m1.page_size)),
        (Ok(()), _) => Ok((meta0, meta0.page_size)),
        (Err(_), Some(m1)) => Ok((m1, m1.page_size)),
        (Err(e), None) => Err(e),
    }
}

/// What a page below the high-water mark has been found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Unused,
    Meta,
    Free,
    Freelist,
    Tree,
}

struct Reader<'a> {
    bytes: &'a [u8],
    page_size: u64,
    pgid: u64,
    used: Vec<Use>,
}

/// A decoded page: its header and all its bytes (overflow pages included).
struct Page<'a> {
    id: u64,
    header: PageHeader,
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Returns page `id` with its overflow, checking bounds and marking its pages as `mark`.
    fn page(&mut self, id: u64, mark: Use) -> Result<Page<'a>, BoltError> {
        if id >= self.pgid {
            return Err(corrupt(
                id,
                format!("page id is beyond the high-water mark {}", self.pgid),
            ));
        }
        let start = id * self.page_size;
        let hdr_end = start + PAGE_HEADER_SIZE as u64;
        let header = PageHeader::decode(self.slice(id, start, hdr_end)?);
        if header.id != id {
            return Err(corrupt(id, format!("page header carries id {}", header.id)));
        }
        let last = id
            .checked_add(u64::from(header.overflow))
            .filter(|&l| l < self.pgid)
            .ok_or_else(|| {
                corrupt(
                    id,
                    format!(
                        "{} overflow pages run past the high-water mark {}",
                        header.overflow, self.pgid
                    ),
                )
            })?;
        for p in id..=last {
            let slot = &mut self.used[usize_of(p, id)?];
            match *slot {
                Use::Unused => *slot = mark,
                Use::Free => {
                    return Err(corrupt(p, "page is in use but listed as free".into()));
                }
                _ => {
                    return Err(corrupt(p, "page is referenced more than once".into()));
                }
            }
        }
        let end = (last + 1) * self.page_size;
        let data = self.slice(id, start, end)?;
        Ok(Page { id, header, data })
    }

    fn slice(&self, page: u64, start: u64, end: u64) -> Result<&'a [u8], BoltError> {
        let s = usize_of(start, page)?;
        let e = usize_of(end, page)?;
        self.bytes
            .get(s..e)
            .ok_or_else(|| corrupt(page, "page lies past the end of the file".into()))
    }

    /// Reads the freelist page, marks the pages it lists, returns how many it lists.
    fn read_freelist(&mut self, id: u64) -> Result<u64, BoltError> {
        let page = self.page(id, Use::Freelist)?;
        if page.header.flags & FREELIST_PAGE == 0 {
            return Err(corrupt(
                id,
                format!(
                    "meta names it as the freelist, but it is a {} page",
                    page.header.type_name()
                ),
            ));
        }
        let mut first = PAGE_HEADER_SIZE;
        let mut count = u64::from(page.header.count);
        if page.header.count == 0xFFFF {
            let b = bounded(&page, first, 8)?;
            count = le_u64(b, 0);
            first += 8;
        }
        let len = count
            .checked_mul(8)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| corrupt(id, format!("freelist count {count} is too large")))?;
        let ids = bounded(&page, first, len)?;
        for chunk in ids.chunks_exact(8) {
            let free = le_u64(chunk, 0);
            if free < 2 || free >= self.pgid {
                return Err(corrupt(
                    id,
                    format!("freelist lists page {free}, outside pages 2..{}", self.pgid),
                ));
            }
            let slot = &mut self.used[usize_of(free, id)?];
            if *slot != Use::Unused {
                return Err(corrupt(
                    id,
                    format!("freelist lists page {free}, which is already in use or free"),
                ));
            }
            *slot = Use::Free;
        }
        Ok(count)
    }

    /// Reads the bucket whose root page is `root`, returning its entries in order.
    fn read_bucket_pages(
        &mut self,
        root: u64,
        depth: usize,
    ) -> Result<BTreeMap<Vec<u8>, Entry>, BoltError> {
        let mut items = Vec::new();
        self.walk(root, depth, &mut items)?;
        Ok(items.into_iter().collect())
    }

    /// Appends the entries under page `id` to `out`, checking order.
    fn walk(
        &mut self,
        id: u64,
        depth: usize,
        out: &mut Vec<(Vec<u8>, Entry)>,
    ) -> Result<(), BoltError> {
        if depth > MAX_DEPTH {
            return Err(corrupt(
                id,
                format!("tree is deeper than {MAX_DEPTH} levels"),
            ));
        }
        let page = self.page(id, Use::Tree)?;
        if page.header.flags & BRANCH_PAGE != 0 {
            if page.header.count == 0 {
                return Err(corrupt(id, "branch page has no elements".into()));
            }
            let mut children = Vec::with_capacity(usize::from(page.header.count));
            let mut prev: Option<&[u8]> = None;
            for i in 0..usize::from(page.header.count) {
                let at = PAGE_HEADER_SIZE + i * BRANCH_ELEMENT_SIZE;
                let e = bounded(&page, at, BRANCH_ELEMENT_SIZE)?;
                let pos = le_u32(e, 0) as usize;
                let ksize = le_u32(e, 4) as usize;
                let child = le_u64(e, 8);
                let key = bounded(&page, at + pos, ksize)?;
                if prev.is_some_and(|p| p >= key) {
                    return Err(corrupt(id, "branch keys are out of order".into()));
                }
                prev = Some(key);
                children.push((key, child));
            }
            for (key, child) in children {
                let before = out.len();
                self.walk(child, depth + 1, out)?;
                if let Some((first, _)) = out.get(before) {
                    if first.as_slice() < key {
                        return Err(corrupt(
                            child,
                            format!(
                                "first key {} sorts before its branch key {}",
                                show_key(first),
                                show_key(key)
                            ),
                        ));
                    }
                }
            }
            Ok(())
        } else if page.header.flags & LEAF_PAGE != 0 {
            self.leaf_entries(&page, depth, out)
        } else {
            Err(corrupt(
                id,
                format!(
                    "expected a branch or leaf page, found a {} page",
                    page.header.type_name()
                ),
            ))
        }
    }

    /// Appends a leaf page's entries (from a file page or an inline bucket) to `out`.
    fn leaf_entries(
        &mut self,
        page: &Page<'_>,
        depth: usize,
        out: &mut Vec<(Vec<u8>, Entry)>,
    ) -> Result<(), BoltError> {
        for i in 0..usize::from(page.header.count) {
            let at = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
            let e = bounded(page, at, LEAF_ELEMENT_SIZE)?;
            let flags = le_u32(e, 0);
            let pos = le_u32(e, 4) as usize;
            let ksize = le_u32(e, 8) as usize;
            let vsize = le_u32(e, 12) as usize;
            let key = bounded(page, at + pos, ksize)?;
            let value = bounded(page, at + pos + ksize, vsize)?;
            if key.is_empty() {
                return Err(corrupt(
                    page.id,
                    format!("leaf element {i} has an empty key"),
                ));
            }
            if let Some((last, _)) = out.last() {
                if last.as_slice() >= key {
                    return Err(corrupt(
                        page.id,
                        format!(
                            "key {} does not sort after {}",
                            show_key(key),
                            show_key(last)
                        ),
                    ));
                }
            }
            let entry = if flags & BUCKET_LEAF_FLAG != 0 {
                Entry::Bucket(self.nested_bucket(page.id, key, value, depth)?)
            } else {
                Entry::Value(value.to_vec())
            };
            out.push((key.to_vec(), entry));
        }
        Ok(())
    }

    /// Decodes a nested bucket from its header value (inline or not).
    fn nested_bucket(
        &mut self,
        parent: u64,
        name: &[u8],
        value: &[u8],
        depth: usize,
    ) -> Result<Bucket, BoltError> {
        if value.len() < BUCKET_HEADER_SIZE {
            return Err(corrupt(
                parent,
                format!(
                    "bucket {} has a {}-byte header, expected {BUCKET_HEADER_SIZE}",
                    show_key(name),
                    value.len()
                ),
            ));
        }
        let root = le_u64(value, 0);
        let sequence = le_u64(value, 8);
        let entries = if root == 0 {
            let inline = &value[BUCKET_HEADER_SIZE..];
            if inline.len() < PAGE_HEADER_SIZE {
                return Err(corrupt(
                    parent,
                    format!("inline bucket {} has no page header", show_key(name)),
                ));
            }
            let header = PageHeader::decode(inline);
            if header.flags & LEAF_PAGE == 0 {
                return Err(corrupt(
                    parent,
                    format!(
                        "inline bucket {} holds a {} page, expected a leaf",
                        show_key(name),
                        header.type_name()
                    ),
                ));
            }
            let page = Page {
                id: parent,
                header,
                data: inline,
            };
            let mut items = Vec::new();
            self.leaf_entries(&page, depth + 1, &mut items)?;
            items.into_iter().collect()
        } else {
            if root < 2 {
                return Err(corrupt(
                    parent,
                    format!("bucket {} has root page {root}", show_key(name)),
                ));
            }
            self.read_bucket_pages(root, depth + 1)?
        };
        Ok(Bucket { entries, sequence })
    }
}

/// `len` bytes at `at` inside a page, or a corruption error naming the page.
fn bounded<'p>(page: &Page<'p>, at: usize, len: usize) -> Result<&'p [u8], BoltError> {
    at.checked_add(len)
        .and_then(|end| page.data.get(at..end))
        .ok_or_else(|| {
            corrupt(
                page.id,
                format!(
                    "element data at {at}+{len} lies outside the page's {} bytes",
                    page.data.len()
                ),
            )
        })
}

fn corrupt(page: u64, reason: String) -> BoltError {
    BoltError::Corrupt { page, reason }
}

/// Converts a file offset or page number to `usize`.
fn usize_of(v: u64, page: u64) -> Result<usize, BoltError> {
    usize::try_from(v).map_err(|_| corrupt(page, format!("offset {v} does not fit in memory")))
}

/// A key for error messages: as text when printable, else as hex.
pub(super) fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}
