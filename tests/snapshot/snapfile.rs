//! Snapshot files: saving one from a server, restoring one with either tool, and crafting the
//! damaged and foreign files the refusal tests feed to `kvd snapshot`.
//!
//! Format facts used (etcd's snapshot file): the bbolt database followed by a 32-byte SHA-256 of
//! it. bbolt: page 0 is a meta page; after its 16-byte page header come `magic: u32`,
//! `version: u32`, `page_size: u32`, `flags: u32` and the root bucket's page id (`u64`), all
//! little-endian. A leaf page has `flags == 0x02` at byte 8 of its header and `count: u16` at byte
//! 10; its 16-byte elements follow the header, each `flags, pos, ksize, vsize` (`u32`), the key
//! lying `pos` bytes past the element's own start.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::harness::{etcdctl_local, kvd_cli, Member, Output, Server};

/// The `--initial-cluster-token` every restore in this suite uses.
pub const TOKEN: &str = "kvd-snap-restored";

/// `etcdctl snapshot save FILE` against `s` as `user` ("" for none); asserts the confirmation.
pub fn save(s: &Server, user: &str, file: &Path) {
    let p = file.display().to_string();
    let out = s
        .ctl()
        .user(user)
        .args(&["snapshot", "save", &p])
        .run()
        .ok();
    assert_eq!(out.stdout, format!("Snapshot saved at {p}\n"), "{out:?}");
}

/// Which program restores a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restorer {
    /// `kvd snapshot restore`: writes a kvd data dir.
    Kvd,
    /// `etcdctl snapshot restore`: writes an etcd data dir (`member/snap/db`, `member/wal`).
    Etcdctl,
}

/// Restores `file` into `data_dir` as `member` of `cluster` (an `--initial-cluster` value), with
/// [`TOKEN`]; `extra` flags go last. Returns the run, successful or not.
pub fn restore(
    tool: Restorer,
    file: &Path,
    data_dir: &Path,
    member: &Member,
    cluster: &str,
    extra: &[&str],
) -> Output {
    let file = file.display().to_string();
    let data = data_dir.display().to_string();
    let peer = member.peer_url();
    let mut args = vec![
        "snapshot",
        "restore",
        &file,
        "--data-dir",
        &data,
        "--name",
        &member.name,
        "--initial-cluster",
        cluster,
        "--initial-cluster-token",
        TOKEN,
        "--initial-advertise-peer-urls",
        &peer,
    ];
    args.extend_from_slice(extra);
    match tool {
        Restorer::Kvd => kvd_cli(&args),
        Restorer::Etcdctl => etcdctl_local(&args),
    }
}

/// `db` followed by its SHA-256, as etcd's Snapshot RPC ends a stream.
pub fn with_trailer(db: &[u8]) -> Vec<u8> {
    let mut out = db.to_vec();
    out.extend_from_slice(&Sha256::digest(db));
    out
}

/// The database part of a snapshot file (without the 32-byte trailer).
pub fn db_part(file: &[u8]) -> &[u8] {
    assert_eq!(file.len() % 512, 32, "not a snapshot file with a trailer");
    &file[..file.len() - 32]
}

/// A copy of `file` with one byte of the first occurrence of `marker` changed (content and
/// bbolt structure stay sound, the trailer no longer matches).
pub fn flip_byte_in(file: &[u8], marker: &[u8]) -> Vec<u8> {
    let at = file
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap_or_else(|| panic!("marker {:?} not in file", String::from_utf8_lossy(marker)));
    let mut out = file.to_vec();
    out[at] ^= 0x01;
    out
}

/// `len` deterministic pseudo-random bytes (xorshift64 from a fixed seed).
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A sound bbolt snapshot whose top-level buckets are renamed (ASCII upper case, which keeps
/// their order), so it holds none of etcd's buckets; the trailer is recomputed. Returns the file
/// and the original bucket names.
pub fn with_foreign_buckets(file: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut db = db_part(file).to_vec();
    assert_eq!(u32_at(&db, 16), 0xED0C_DAED, "bbolt magic");
    let page_size = u32_at(&db, 24) as usize;
    let root = u64_at(&db, 32) as usize;
    let page = root * page_size;
    assert_eq!(u16_at(&db, page + 8), 0x02, "root bucket is one leaf page");
    let count = usize::from(u16_at(&db, page + 10));
    let mut names = Vec::new();
    for i in 0..count {
        let elem = page + 16 + i * 16;
        let pos = u32_at(&db, elem + 4) as usize;
        let ksize = u32_at(&db, elem + 8) as usize;
        let key = &mut db[elem + pos..elem + pos + ksize];
        names.push(String::from_utf8_lossy(key).into_owned());
        key.make_ascii_uppercase();
    }
    (with_trailer(&db), names)
}

/// A file at `dir/name` holding `bytes`; returns its path as a string.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p.display().to_string()
}
