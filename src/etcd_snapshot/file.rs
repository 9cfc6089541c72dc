//! The snapshot file: a bbolt database followed by the sha256 of everything before it.

use sha2::{Digest, Sha256};

use super::{EtcdBackend, SnapshotError};
use crate::bbolt::{self, Db};

/// The length of the sha256 trailer.
pub const SHA256_TRAILER_LEN: usize = 32;

/// How to read a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Accept a file without a trailer (a `db` file copied from a data directory) and do not
    /// verify a trailer that is present, like `etcdctl snapshot restore --skip-hash-check`.
    pub skip_hash_check: bool,
}

/// Whether a file of `len` bytes ends in a sha256 trailer, by etcd's rule: bbolt files are whole
/// pages of a multiple of 512 bytes, so only a trailer leaves 32 bytes over.
fn has_trailer(len: usize) -> bool {
    len % 512 == SHA256_TRAILER_LEN
}

/// Checks a snapshot file's trailer and returns the database part (the bytes before it).
///
/// # Errors
///
/// [`SnapshotError::MissingHash`] when there is no trailer and `skip_hash_check` is off;
/// [`SnapshotError::HashMismatch`] when the trailer does not match (unless `skip_hash_check`).
pub fn split_trailer(bytes: &[u8], opts: ParseOptions) -> Result<&[u8], SnapshotError> {
    if !has_trailer(bytes.len()) {
        if opts.skip_hash_check {
            return Ok(bytes);
        }
        return Err(SnapshotError::MissingHash { size: bytes.len() });
    }
    let (db, trailer) = bytes.split_at(bytes.len() - SHA256_TRAILER_LEN);
    if !opts.skip_hash_check {
        let actual = Sha256::digest(db);
        if actual.as_slice() != trailer {
            return Err(SnapshotError::HashMismatch {
                expected: hex(trailer),
                actual: hex(&actual),
            });
        }
    }
    Ok(db)
}

/// Reads an etcd snapshot file, verifying its sha256 trailer.
///
/// # Errors
///
/// A [`SnapshotError`] saying why the file is refused: no or bad trailer, not a bbolt file, not
/// an etcd backend, or a record that does not decode.
pub fn parse_snapshot_file(bytes: &[u8]) -> Result<EtcdBackend, SnapshotError> {
    parse_snapshot_file_with(bytes, ParseOptions::default())
}

/// Reads an etcd snapshot file with the given options.
///
/// # Errors
///
/// As [`parse_snapshot_file`].
pub fn parse_snapshot_file_with(
    bytes: &[u8],
    opts: ParseOptions,
) -> Result<EtcdBackend, SnapshotError> {
    let db = split_trailer(bytes, opts)?;
    EtcdBackend::from_bolt(&Db::read(db)?)
}

/// Writes a snapshot file as etcd's Maintenance Snapshot stream sends it: the backend as a bbolt
/// file with 4096-byte pages, then the sha256 of that file.
///
/// # Errors
///
/// [`SnapshotError::Invalid`] for a backend [`EtcdBackend::to_bolt`] refuses, and
/// [`SnapshotError::Bolt`] for a key or value bbolt cannot store (an empty or over-long key).
pub fn encode_snapshot_file(backend: &EtcdBackend) -> Result<Vec<u8>, SnapshotError> {
    let mut file = bbolt::write(&backend.to_bolt()?, bbolt::DEFAULT_PAGE_SIZE)?;
    let digest = Sha256::digest(&file);
    file.extend_from_slice(&digest);
    Ok(file)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
