//! Free space on the data dir's file system, and space reserved for the state backend.
//!
//! sled cannot recover from a failed write without reopening (its IO errors stick), so it
//! must never meet a full disk. The guard keeps blocks reserved past the end of sled's file
//! (`fallocate` with `FALLOC_FL_KEEP_SIZE`): the file grows into them without needing free
//! space, and no other process can take them. When free space falls below [`LOW_WATER`] the
//! guard reports the disk as low: the API then refuses new writes with etcd's `database space
//! exceeded` and raises the NOSPACE alarm, as etcd does when its quota is exhausted, while
//! what is already committed (and the alarm) is still applied into the reserve. Once free
//! space is back, the reserve is topped up and writes are taken once the alarm is disarmed.
//! The WAL needs no reserve: its segments are preallocated.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tracing::{info, warn};

/// Below this much free space the disk counts as full.
pub const LOW_WATER: u64 = 16 << 20;
/// The largest reserve (smaller on small file systems: a tenth of their size).
pub const MAX_RESERVE: u64 = 64 << 20;

/// Watches free space for one data dir and keeps the state backend's reserve.
#[derive(Debug)]
pub struct SpaceGuard {
    dir: PathBuf,
    /// The state backend's file, reserved past its end.
    file: PathBuf,
    reserve_bytes: u64,
    low: AtomicBool,
    /// Serialises checks.
    checking: Mutex<()>,
}

/// Free and total bytes of the file system holding `path`.
fn statvfs(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let unit = st.f_frsize;
    Ok((
        st.f_bavail.saturating_mul(unit),
        st.f_blocks.saturating_mul(unit),
    ))
}

impl SpaceGuard {
    /// A guard for the file system of `dir`, reserving space past the end of `file`.
    pub fn new(dir: &Path, file: &Path) -> Self {
        let total = statvfs(dir).map_or(0, |(_, total)| total);
        let guard = Self {
            dir: dir.to_path_buf(),
            file: file.to_path_buf(),
            reserve_bytes: MAX_RESERVE.min(total / 10),
            low: AtomicBool::new(false),
            checking: Mutex::new(()),
        };
        guard.check();
        guard
    }

    /// True while free space is low (writes must be refused).
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Acquire)
    }

    /// Measures free space again, tops the reserve up when there is room, and returns whether
    /// space is low.
    pub fn check(&self) -> bool {
        let _one = self.checking.lock();
        let Ok((free, _)) = statvfs(&self.dir) else {
            return self.is_low();
        };
        let was_low = self.is_low();
        if free < LOW_WATER {
            if !was_low {
                warn!(
                    dir = %self.dir.display(),
                    free_bytes = free,
                    "the data dir's disk is almost full: refusing writes (NOSPACE alarm) until space is freed and the alarm is disarmed"
                );
            }
            self.low.store(true, Ordering::Release);
            return true;
        }
        let reserved = match self.top_up() {
            Ok(()) => true,
            Err(e) => {
                warn!(path = %self.file.display(), error = %e, "cannot reserve space for the state");
                false
            }
        };
        if was_low && reserved && free >= 2 * LOW_WATER {
            info!(dir = %self.dir.display(), free_bytes = free, "the data dir's disk has room again");
            self.low.store(false, Ordering::Release);
        }
        self.is_low()
    }

    /// Reserves `reserve_bytes` past the end of the file (already reserved blocks cost nothing).
    fn top_up(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if self.reserve_bytes == 0 {
            return Ok(());
        }
        let file = OpenOptions::new().write(true).open(&self.file)?;
        let end = libc::off_t::try_from(file.metadata()?.len()).unwrap_or(libc::off_t::MAX);
        let len = libc::off_t::try_from(self.reserve_bytes).unwrap_or(libc::off_t::MAX);
        // SAFETY: fallocate only acts on the open descriptor.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, end, len) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
            ) {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_is_reserved_past_the_end_without_growing_the_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("db");
        std::fs::write(&file, b"state").expect("write");
        let guard = SpaceGuard::new(dir.path(), &file);
        assert!(!guard.check(), "a test machine's disk is not full");
        let meta = std::fs::metadata(&file).expect("meta");
        assert_eq!(meta.len(), 5, "the size is unchanged");
        assert!(guard.reserve_bytes > 0);
        assert!(
            meta.blocks() * 512 >= guard.reserve_bytes,
            "{} bytes allocated",
            meta.blocks() * 512
        );
    }
}
