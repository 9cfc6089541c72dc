//! Watching a port's TLS files: every poll compares each file's size, modification time
//! and inode with those the current set was read from. A change is acted on once it has
//! been stable for one poll (so that `cp cert; cp key` is read as one change); then the
//! whole set is re-read and swapped in, or, if it is broken, the old set stays and the
//! problem is logged once per change.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::error::TlsError;

/// What the watcher needs of a port's TLS: the loaded set's files and a way to load them
/// again. [`super::ServerTls`] implements it.
pub(crate) trait Reloadable: Send + Sync + 'static {
    /// The files of the current set, their stamps when it was read, and (auto TLS) when its
    /// certificate expires (Unix seconds).
    fn watched(&self) -> Watched;
    /// Loads a new set and swaps it in; `stamps` were taken before reading.
    ///
    /// # Errors
    /// The [`TlsError`] of the broken file; the previous set stays in use.
    fn reload_with(&self, stamps: Vec<Stamp>) -> Result<(), TlsError>;
    /// The listener's name for log lines (`client`, `peer`).
    fn listener(&self) -> &'static str;
}

/// The current set as [`Reloadable::watched`] describes it.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    /// The files read.
    pub(crate) files: Vec<PathBuf>,
    /// Their stamps when they were read.
    pub(crate) stamps: Vec<Stamp>,
    /// With auto TLS, when its certificate expires (it is then regenerated).
    pub(crate) auto_not_after: Option<i64>,
}

/// How often the files are checked.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(1);

/// What identifies one version of a file; `None` when it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    path: PathBuf,
    seen: Option<(u64, Option<SystemTime>, u64)>,
}

/// The stamps of `files`, in order.
pub(crate) fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files.iter().map(|p| stamp(p)).collect()
}

fn stamp(path: &Path) -> Stamp {
    let seen = std::fs::metadata(path).ok().map(|m| {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        (m.len(), m.modified().ok(), inode)
    });
    Stamp {
        path: path.to_path_buf(),
        seen,
    }
}

/// Polls `tls`'s files every `every` until `shutdown`, reloading on changes.
pub(crate) async fn run(tls: impl Reloadable, shutdown: CancellationToken, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Stamps seen changed at the previous poll (acted on when still the same now).
    let mut settling: Option<Vec<Stamp>> = None;
    // Stamps of the last failed attempt (not retried until the files change again).
    let mut failed: Option<Vec<Stamp>> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let current = tls.watched();
        let now = stamps(&current.files);
        let auto_expired = current
            .auto_not_after
            .is_some_and(|t| t <= time::OffsetDateTime::now_utc().unix_timestamp());
        if now == current.stamps && !auto_expired {
            settling = None;
            continue;
        }
        if failed.as_ref() == Some(&now) {
            continue;
        }
        if settling.as_ref() != Some(&now) && !auto_expired {
            settling = Some(now);
            continue;
        }
        settling = None;
        let changed: Vec<String> = now
            .iter()
            .zip(current.stamps.iter())
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.path.display().to_string())
            .collect();
        match tls.reload_with(now.clone()) {
            Ok(()) => {
                failed = None;
                info!(
                    listener = tls.listener(),
                    changed = ?changed,
                    "reloaded TLS files; new connections use them"
                );
            }
            Err(e) => {
                warn!(
                    listener = tls.listener(),
                    changed = ?changed,
                    error = %e,
                    "TLS files changed but cannot be used; keeping the previous certificates"
                );
                failed = Some(now);
            }
        }
    }
}
