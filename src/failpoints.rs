//! Crash points for the robustness tests, compiled in only with the cargo feature
//! `failpoints` (without it every point is empty and costs nothing).
//!
//! A point is named after the place it marks, e.g. `raft::after_persist`. The `FAILPOINTS`
//! environment variable configures them when the member starts, in the `fail` crate's syntax
//! (`raft::after_persist=1%return;watch::before_send=sleep(50)`):
//! - `return` kills the process on the spot with SIGKILL, as `kill -9` would: no destructor
//!   runs and nothing is flushed;
//! - `sleep(ms)`, `pause`, `delay(ms)` and the other `fail` actions act as usual.
//!
//! | point | where |
//! | --- | --- |
//! | `raft::before_persist` | a Ready's entries and hard state are about to be written |
//! | `raft::after_persist` | they are durable; persisted messages not yet sent |
//! | `apply::before_state_write` | committed entries applied in memory, state batch not written |
//! | `apply::after_state_write` | state batch written; waiters and watchers not yet told |
//! | `snapshot::before_save` | a snapshot image for a lagging member is about to be made |
//! | `snapshot::before_send` | a snapshot is about to be sent to a peer |
//! | `snapshot::before_install` | a snapshot from the leader is about to replace the state |
//! | `snapshot::after_install` | the state was replaced; the log not yet reset |
//! | `compact::before_apply` | a committed compaction is about to run |
//! | `compact::after_apply` | its state batch is written |
//! | `defrag::before`, `defrag::after` | around a defragment request |
//! | `watch::before_send` | a watch response is about to be sent (for delays) |

/// Kills this process with SIGKILL after naming the point on stderr.
#[cfg(feature = "failpoints")]
pub fn crash(point: &str) -> ! {
    eprintln!("failpoint {point}: killing the process");
    // SAFETY: raise only sends a signal to this process; SIGKILL cannot be handled.
    unsafe {
        libc::raise(libc::SIGKILL);
    }
    std::process::abort()
}

/// Marks a crash point (see the module docs); nothing without the `failpoints` feature.
#[macro_export]
macro_rules! kvd_crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name, |_| $crate::failpoints::crash($name));
    };
}

/// Configures the crash points from `FAILPOINTS`; the guard keeps them until it is dropped.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}
