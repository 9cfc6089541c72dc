//! The write-ahead log: an append-only sequence of checksummed records in preallocated segment
//! files, made durable with one `fdatasync` per [`Wal::sync`] (group commit).
//!
//! The WAL knows nothing of raft: a record is a kind byte, a tag (the highest raft index it
//! refers to, so that whole segments can be dropped once compaction passed them) and opaque
//! bytes. `raft::log_store` gives the records their meaning and rebuilds the log from them.
//!
//! - Segments are named `<seq>.wal` (16 hex digits) and preallocated to their size with
//!   `fallocate`, so that appending never grows the file and a full disk shows when a segment
//!   is created, not in the middle of a write.
//! - When the active segment is full, [`Wal::rotate`] seals it and starts the next one with
//!   checkpoint records (the caller's current metadata), so that older segments hold nothing
//!   the newer ones do not repeat.
//! - [`Wal::purge`] deletes the oldest sealed segments whose records all refer to indexes at or
//!   below a compaction point.
//! - On open, every segment is read in order. A record that is not intact in the last segment
//!   is where a crash cut the log short: nothing after it was ever synced, so the segment is cut
//!   there. Anywhere else it is corruption, reported with the file and offset.

mod record;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use thiserror::Error;
use tracing::{info, warn};

/// Default size of a segment (etcd's WAL segments are 64 MiB too).
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"KVDWAL\x00\x01";

/// Why the WAL cannot be read or written.
#[derive(Debug, Error)]
pub enum WalError {
    /// The file system failed.
    #[error("wal {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A sealed segment holds a record that is not intact.
    #[error("wal {path}: corrupt record at offset {offset}: {why}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where the record starts.
        offset: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The disk has no room for a new segment.
    #[error("wal {path}: no space left on device")]
    NoSpace {
        /// The segment that could not be made.
        path: PathBuf,
    },
}

impl WalError {
    fn io(path: &Path, source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return WalError::NoSpace {
                path: path.to_path_buf(),
            };
        }
        WalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One record read back at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The caller's kind.
    pub kind: u8,
    /// The highest raft index it refers to (0 for none).
    pub tag: u64,
    /// The caller's bytes.
    pub payload: Vec<u8>,
}

struct Sealed {
    seq: u64,
    path: PathBuf,
    max_tag: u64,
}

struct Active {
    seq: u64,
    path: PathBuf,
    file: File,
    /// Where the next record goes.
    offset: u64,
    max_tag: u64,
}

/// The write-ahead log of one member.
pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    sealed: Vec<Sealed>,
    active: Active,
    /// Records appended since the last sync, framed.
    pending: Vec<u8>,
    pending_max_tag: u64,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.wal"))
}

fn parse_seq(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".wal")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io(dir, e))
}

/// Creates segment `seq`, preallocated to `bytes`, with its magic header, durably.
fn create_segment(dir: &Path, seq: u64, bytes: u64) -> Result<Active, WalError> {
    let path = segment_path(dir, seq);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    preallocate(&file, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&path);
        WalError::io(&path, e)
    })?;
    file.write_all_at(MAGIC, 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| WalError::io(&path, e))?;
    sync_dir(dir)?;
    Ok(Active {
        seq,
        path,
        file,
        offset: MAGIC.len() as u64,
        max_tag: 0,
    })
}

/// Reserves `bytes` for `file` (zeros when read), so appends neither grow it nor find the disk
/// full. File systems without `fallocate` get a sparse file of that size.
fn preallocate(file: &File, bytes: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(bytes).unwrap_or(libc::off_t::MAX);
    // SAFETY: fallocate only acts on the open descriptor.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => file.set_len(bytes),
        _ => Err(err),
    }
}

/// The records of one segment's bytes, and where its valid part ends; `Err` names the first
/// record that is not intact.
fn scan(data: &[u8]) -> (Vec<Record>, usize, Option<&'static str>) {
    let mut records = Vec::new();
    let mut offset = MAGIC.len();
    loop {
        match record::read(data, offset) {
            record::Read::Record {
                kind,
                tag,
                payload,
                next,
            } => {
                records.push(Record {
                    kind,
                    tag,
                    payload: payload.to_vec(),
                });
                offset = next;
            }
            record::Read::End => return (records, offset, None),
            record::Read::Torn(why) => return (records, offset, Some(why)),
        }
    }
}

impl Wal {
    /// Opens (or creates) the WAL in `dir` and returns every record in it, in order. A torn
    /// tail of the last segment is cut off (with a warning).
    ///
    /// # Errors
    /// I/O failure, or a corrupt record before the last segment's tail.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Wal, Vec<Record>), WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        let mut seqs: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|e| WalError::io(dir, e))?
            .filter_map(|e| e.ok()?.file_name().to_str().and_then(parse_seq))
            .collect();
        seqs.sort_unstable();
        let mut records = Vec::new();
        let mut sealed = Vec::new();
        let mut active = None;
        for (i, &seq) in seqs.iter().enumerate() {
            let path = segment_path(dir, seq);
            let data = std::fs::read(&path).map_err(|e| WalError::io(&path, e))?;
            let last = i + 1 == seqs.len();
            if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
                if last && data.iter().all(|b| *b == 0) {
                    // created, but the crash came before its header was synced
                    std::fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
                    continue;
                }
                return Err(WalError::Corrupt {
                    path,
                    offset: 0,
                    why: "not a kvd WAL segment",
                });
            }
            let (found, end, torn) = scan(&data);
            let max_tag = found.iter().map(|r| r.tag).max().unwrap_or(0);
            records.extend(found);
            if !last {
                if let Some(why) = torn {
                    return Err(WalError::Corrupt {
                        path,
                        offset: end,
                        why,
                    });
                }
                sealed.push(Sealed { seq, path, max_tag });
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| WalError::io(&path, e))?;
            if let Some(why) = torn {
                warn!(
                    segment = %path.display(),
                    offset = end,
                    reason = why,
                    "cutting the WAL at a record a crash left incomplete"
                );
                // Nothing after it was ever synced: drop it, so no stale bytes remain that a
                // later crash could make look like records.
                file.set_len(end as u64)
                    .and_then(|()| preallocate(&file, segment_bytes.max(end as u64)))
                    .and_then(|()| file.sync_all())
                    .map_err(|e| WalError::io(&path, e))?;
            }
            active = Some(Active {
                seq,
                path,
                file,
                offset: end as u64,
                max_tag,
            });
        }
        let active = match active {
            Some(a) => a,
            None => {
                let next = sealed.last().map_or(1, |s| s.seq + 1);
                create_segment(dir, next, segment_bytes)?
            }
        };
        info!(
            dir = %dir.display(),
            segments = sealed.len() + 1,
            records = records.len(),
            "WAL opened"
        );
        let wal = Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            sealed,
            active,
            pending: Vec::new(),
            pending_max_tag: 0,
        };
        Ok((wal, records))
    }

    /// Queues a record; it is written and made durable by the next [`Wal::sync`].
    pub fn append(&mut self, kind: u8, tag: u64, payload: &[u8]) {
        record::encode(kind, tag, payload, &mut self.pending);
        self.pending_max_tag = self.pending_max_tag.max(tag);
    }

    /// Writes the queued records and makes them durable (fdatasync).
    ///
    /// # Errors
    /// I/O failure; the member must stop, as etcd does when its WAL cannot be written.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.write_pending()?;
        let _fsync = crate::metrics::disk::wal_fsync_timer();
        self.active
            .file
            .sync_data()
            .map_err(|e| WalError::io(&self.active.path, e))
    }

    fn write_pending(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let a = &mut self.active;
        a.file
            .write_all_at(&self.pending, a.offset)
            .map_err(|e| WalError::io(&a.path, e))?;
        a.offset += self.pending.len() as u64;
        a.max_tag = a.max_tag.max(self.pending_max_tag);
        self.pending.clear();
        self.pending_max_tag = 0;
        Ok(())
    }

    /// True when the active segment is full and [`Wal::rotate`] should be called.
    pub fn should_rotate(&self) -> bool {
        self.active.offset >= self.segment_bytes
    }

    /// Seals the active segment and starts the next one with `checkpoint` records, durably.
    ///
    /// # Errors
    /// I/O failure, or no space for the new segment (the active one stays in use).
    pub fn rotate(&mut self, checkpoint: &[(u8, u64, Vec<u8>)]) -> Result<(), WalError> {
        self.sync()?;
        let next = create_segment(&self.dir, self.active.seq + 1, self.segment_bytes)?;
        let old = std::mem::replace(&mut self.active, next);
        self.sealed.push(Sealed {
            seq: old.seq,
            path: old.path,
            max_tag: old.max_tag,
        });
        for (kind, tag, payload) in checkpoint {
            self.append(*kind, *tag, payload);
        }
        self.sync()
    }

    /// Deletes the oldest sealed segments whose records all refer to indexes at or below
    /// `upto` (they are covered by a compaction the caller recorded); returns how many.
    ///
    /// # Errors
    /// I/O failure deleting a segment.
    pub fn purge(&mut self, upto: u64) -> Result<usize, WalError> {
        let n = self.sealed.iter().take_while(|s| s.max_tag <= upto).count();
        for s in self.sealed.drain(..n) {
            std::fs::remove_file(&s.path).map_err(|e| WalError::io(&s.path, e))?;
        }
        Ok(n)
    }

    /// Number of segment files, the active one included.
    #[cfg(test)]
    pub fn segments(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Bytes written to the active segment so far.
    #[cfg(test)]
    pub fn active_bytes(&self) -> u64 {
        self.active.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(records: &[Record]) -> Vec<(u8, u64, Vec<u8>)> {
        records
            .iter()
            .map(|r| (r.kind, r.tag, r.payload.clone()))
            .collect()
    }

    #[test]
    fn records_survive_a_reopen_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut wal, records) = Wal::open(dir.path(), 1 << 20).expect("open");
            assert!(records.is_empty());
            wal.append(1, 1, b"one");
            wal.append(2, 2, b"two");
            wal.sync().expect("sync");
            wal.append(3, 3, b"three");
            wal.sync().expect("sync");
        }
        let (_, records) = Wal::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(
            kinds(&records),
            vec![
                (1, 1, b"one".to_vec()),
                (2, 2, b"two".to_vec()),
                (3, 3, b"three".to_vec())
            ]
        );
    }

    #[test]
    fn unsynced_records_are_not_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut wal, _) = Wal::open(dir.path(), 1 << 20).expect("open");
            wal.append(1, 1, b"synced");
            wal.sync().expect("sync");
            wal.append(2, 2, b"never synced");
        }
        let (_, records) = Wal::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(kinds(&records), vec![(1, 1, b"synced".to_vec())]);
    }

    /// Cuts the last segment's last record at every length, as a crash mid-write would, and
    /// flips a byte in it: every time the intact records come back, the WAL takes new records
    /// after them, and the garbage never resurfaces.
    #[test]
    fn a_torn_tail_is_cut_off_and_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = segment_path(dir.path(), 1);
        let mut good_end = 0;
        {
            let (mut wal, _) = Wal::open(dir.path(), 1 << 16).expect("open");
            wal.append(1, 1, b"kept");
            wal.sync().expect("sync");
            good_end = good_end.max(wal.active_bytes());
            wal.append(2, 2, &[7u8; 100]);
            wal.sync().expect("sync");
        }
        let full = std::fs::read(&path).expect("read");
        let torn_len = usize::try_from(good_end).expect("small") + 8 + 9 + 100;
        for cut in [0, 1, 5, 8, 12, 30, 116] {
            let mut data = full.clone();
            for b in &mut data[usize::try_from(good_end).expect("small") + cut..torn_len] {
                *b = 0xAB;
            }
            std::fs::write(&path, &data).expect("write");
            let (mut wal, records) = Wal::open(dir.path(), 1 << 16).expect("reopen");
            assert_eq!(kinds(&records), vec![(1, 1, b"kept".to_vec())], "cut {cut}");
            wal.append(3, 3, b"after");
            wal.sync().expect("sync");
            drop(wal);
            let (_, records) = Wal::open(dir.path(), 1 << 16).expect("reopen again");
            assert_eq!(
                kinds(&records),
                vec![(1, 1, b"kept".to_vec()), (3, 3, b"after".to_vec())],
                "cut {cut}"
            );
            std::fs::write(&path, &full).expect("restore");
        }
    }

    #[test]
    fn corruption_in_a_sealed_segment_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut wal, _) = Wal::open(dir.path(), 64).expect("open");
            wal.append(1, 1, &[1u8; 80]);
            wal.sync().expect("sync");
            assert!(wal.should_rotate());
            wal.rotate(&[(9, 0, b"checkpoint".to_vec())])
                .expect("rotate");
            wal.append(2, 2, b"x");
            wal.sync().expect("sync");
        }
        let first = segment_path(dir.path(), 1);
        let mut data = std::fs::read(&first).expect("read");
        data[MAGIC.len() + 20] ^= 0xff;
        std::fs::write(&first, &data).expect("write");
        let err = Wal::open(dir.path(), 64).err().expect("corrupt");
        let text = err.to_string();
        assert!(
            text.contains("0000000000000001.wal") && text.contains("checksum mismatch"),
            "{text}"
        );
    }

    #[test]
    fn rotation_and_purge_keep_what_compaction_has_not_passed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), 200).expect("open");
        for index in 1..=20u64 {
            wal.append(1, index, &[0u8; 50]);
            wal.sync().expect("sync");
            if wal.should_rotate() {
                wal.rotate(&[(9, 0, index.to_le_bytes().to_vec())])
                    .expect("rotate");
            }
        }
        let before = wal.segments();
        assert!(before > 3, "{before} segments");
        let purged = wal.purge(10).expect("purge");
        assert!(
            purged > 0 && purged < before - 1,
            "purged {purged} of {before}"
        );
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 200).expect("reopen");
        let entries: Vec<u64> = records
            .iter()
            .filter(|r| r.kind == 1)
            .map(|r| r.tag)
            .collect();
        assert_eq!(entries.last(), Some(&20));
        assert!(
            entries.contains(&11),
            "what compaction did not pass is kept"
        );
        assert!(!entries.contains(&1), "the oldest segment is gone");
        assert_eq!(records[0].kind, 9, "a segment starts with its checkpoint");
    }
}
