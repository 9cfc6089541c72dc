//! The key index written to a file at a clean stop, so that the next start loads it instead of
//! rebuilding it from every stored record (seconds at a million keys).
//!
//! The image is a hint, never the truth: it names the applied index and the current and
//! compacted revisions it was taken at, and is used only when the state backend says exactly
//! the same on open. It is removed before it is used, so that it can serve one start only: a
//! write after that start makes it stale, and a crash then finds no image and rebuilds.
//!
//! Format: a magic line, then varints (applied index, current revision, compacted revision,
//! stored bytes, key count, then per key its length, bytes, change count and changes as main
//! revision, sub revision and tombstone flag; then the leased keys as key length, bytes and
//! lease ID), then the CRC-32C of everything before it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use prost::encoding::{decode_varint, encode_varint};

use super::key_index::KeyIndex;
use super::revision::Revision;

/// The first bytes of an image file (and its format version).
const MAGIC: &[u8; 16] = b"kvd-key-index-1\n";

/// What a key index image was taken at, and the store's size estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Taken {
    /// The raft index the state had applied.
    pub applied_index: u64,
    /// The store's current revision.
    pub current_rev: i64,
    /// The store's compacted revision.
    pub compact_rev: i64,
    /// Bytes of the stored key-values (the store's size estimate).
    pub size_bytes: u64,
}

/// A key index image read back.
#[derive(Debug, Default)]
pub struct IndexImage {
    /// What it was taken at.
    pub taken: Taken,
    /// Every key and its retained changes.
    pub index: BTreeMap<Box<[u8]>, KeyIndex>,
    /// The live keys attached to a lease, with the lease.
    pub leased_keys: Vec<(Vec<u8>, i64)>,
}

/// Writes the image to `path` durably: a temporary file, fdatasync, rename, directory sync.
///
/// # Errors
/// The file cannot be written.
pub fn save(
    path: &Path,
    taken: Taken,
    index: &BTreeMap<Box<[u8]>, KeyIndex>,
    leased_keys: &[(Vec<u8>, i64)],
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut body = Vec::with_capacity(index.len() * 32 + 64);
    body.extend_from_slice(MAGIC);
    encode_varint(taken.applied_index, &mut body);
    encode_varint(taken.current_rev as u64, &mut body);
    encode_varint(taken.compact_rev as u64, &mut body);
    encode_varint(taken.size_bytes, &mut body);
    encode_varint(index.len() as u64, &mut body);
    for (key, ki) in index {
        put_bytes(key, &mut body);
        let changes: Vec<_> = ki.changes().collect();
        encode_varint(changes.len() as u64, &mut body);
        for c in changes {
            encode_varint(c.rev.main as u64, &mut body);
            encode_varint(c.rev.sub as u64, &mut body);
            body.push(u8::from(c.tombstone));
        }
    }
    encode_varint(leased_keys.len() as u64, &mut body);
    for (key, lease) in leased_keys {
        put_bytes(key, &mut body);
        encode_varint(*lease as u64, &mut body);
    }
    let crc = crc32c::crc32c(&body);
    let mut out = BufWriter::new(File::create(&tmp)?);
    out.write_all(&body)?;
    out.write_all(&crc.to_be_bytes())?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads the image at `path` and removes the file (durably) before returning it, so that it
/// serves one start only. `None` when there is none, it does not decode or fails its checksum,
/// or it cannot be removed.
pub fn take(path: &Path) -> Option<IndexImage> {
    let mut bytes = Vec::new();
    File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    let removed = std::fs::remove_file(path).is_ok()
        && path
            .parent()
            .is_none_or(|dir| File::open(dir).and_then(|d| d.sync_all()).is_ok());
    if !removed {
        tracing::warn!(path = %path.display(), "cannot remove the key index image; rebuilding the index");
        return None;
    }
    let image = decode(&bytes);
    if image.is_none() {
        tracing::warn!(path = %path.display(), "the key index image does not decode; rebuilding the index");
    }
    image
}

/// Removes a leftover image (and its temporary file), if any.
///
/// # Errors
/// The file exists but cannot be removed.
pub fn discard(path: &Path) -> std::io::Result<()> {
    for p in [path.to_path_buf(), path.with_extension("tmp")] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn put_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn decode(bytes: &[u8]) -> Option<IndexImage> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut buf = body.strip_prefix(MAGIC.as_slice())?;
    let applied_index = decode_varint(&mut buf).ok()?;
    let current_rev = decode_varint(&mut buf).ok()? as i64;
    let compact_rev = decode_varint(&mut buf).ok()? as i64;
    let size_bytes = decode_varint(&mut buf).ok()?;
    let keys = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
    let mut entries = Vec::with_capacity(keys.min(buf.len()));
    for _ in 0..keys {
        let key: Box<[u8]> = take_bytes(&mut buf)?.into();
        let changes = decode_varint(&mut buf).ok()?;
        let mut ki = KeyIndex::default();
        for _ in 0..changes {
            let main = decode_varint(&mut buf).ok()? as i64;
            let sub = decode_varint(&mut buf).ok()? as i64;
            let (&tomb, rest) = buf.split_first()?;
            buf = rest;
            if !(0..1 << 31).contains(&sub) {
                return None;
            }
            ki.push(Revision::new(main, sub), tomb != 0);
        }
        entries.push((key, ki));
    }
    let leased = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
    let mut leased_keys = Vec::with_capacity(leased.min(buf.len()));
    for _ in 0..leased {
        let key = take_bytes(&mut buf)?.to_vec();
        leased_keys.push((key, decode_varint(&mut buf).ok()? as i64));
    }
    if !buf.is_empty() {
        return None;
    }
    Some(IndexImage {
        taken: Taken {
            applied_index,
            current_rev,
            compact_rev,
            size_bytes,
        },
        // Written in key order: collecting sorted entries builds the tree in one pass.
        index: entries.into_iter().collect(),
        leased_keys,
    })
}

fn take_bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(decode_varint(buf).ok()?).ok()?;
    let (bytes, rest) = buf.split_at_checked(len)?;
    *buf = rest;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IndexImage {
        let mut index = BTreeMap::new();
        let mut a = KeyIndex::default();
        a.push(Revision::new(2, 0), false);
        a.push(Revision::new(5, 1), false);
        a.push(Revision::new(7, 0), true);
        index.insert(Box::<[u8]>::from(&b"a"[..]), a);
        let mut b = KeyIndex::default();
        b.push(Revision::new(3, 0), false);
        index.insert(Box::<[u8]>::from(&b"b\xff"[..]), b);
        IndexImage {
            taken: Taken {
                applied_index: 42,
                current_rev: 7,
                compact_rev: -1,
                size_bytes: 1234,
            },
            index,
            leased_keys: vec![(b"b\xff".to_vec(), 0x7fff_0000_0000_0001)],
        }
    }

    fn same(a: &IndexImage, b: &IndexImage) -> bool {
        let flat = |i: &IndexImage| -> Vec<(Vec<u8>, Vec<_>)> {
            i.index
                .iter()
                .map(|(k, ki)| (k.to_vec(), ki.changes().collect()))
                .collect()
        };
        a.taken == b.taken && flat(a) == flat(b) && a.leased_keys == b.leased_keys
    }

    #[test]
    fn an_image_round_trips_and_serves_one_start_only() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key-index");
        let image = sample();
        save(&path, image.taken, &image.index, &image.leased_keys).expect("save");
        let read = take(&path).expect("the image");
        assert!(same(&image, &read));
        assert!(!path.exists(), "taken images are removed");
        assert!(take(&path).is_none(), "and serve one start only");
    }

    #[test]
    fn a_damaged_image_is_refused_and_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key-index");
        let image = sample();
        save(&path, image.taken, &image.index, &image.leased_keys).expect("save");
        let mut bytes = std::fs::read(&path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&path, &bytes).expect("write");
        assert!(take(&path).is_none(), "a flipped bit fails the checksum");
        assert!(!path.exists());
        std::fs::write(&path, &bytes[..bytes.len() - 9]).expect("write");
        assert!(take(&path).is_none(), "a torn file is refused");
        std::fs::write(&path, b"").expect("write");
        assert!(take(&path).is_none(), "an empty file is refused");
    }

    #[test]
    fn discard_removes_leftovers_and_accepts_none() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key-index");
        discard(&path).expect("nothing to remove");
        let image = sample();
        save(&path, image.taken, &image.index, &image.leased_keys).expect("save");
        std::fs::write(path.with_extension("tmp"), b"half").expect("write");
        discard(&path).expect("discard");
        assert!(!path.exists() && !path.with_extension("tmp").exists());
    }
}
