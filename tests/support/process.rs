//! Waiting on and stopping one child process, every wait bounded.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How a suite waits on its child processes (the suites differ, so each passes its own).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Interval between two checks of a process's state.
    pub poll: Duration,
    /// How long a process gets to exit after SIGTERM before it is SIGKILLed.
    pub term_grace: Duration,
}

/// Exit code of a finished process; a signal `n` maps to `128 + n` like a shell does.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Waits until `child` exits or `timeout` passes, checking every `poll`; returns its status if
/// it exited.
pub fn wait_timeout(child: &mut Child, timeout: Duration, poll: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(poll);
    }
}

/// SIGTERM, then SIGKILL if the process has not exited within `timing.term_grace`; returns
/// its exit status (the error is that of the final wait after SIGKILL).
pub fn terminate(child: &mut Child, timing: Timing) -> io::Result<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Ok(st);
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Some(st) = wait_timeout(child, timing.term_grace, timing.poll) {
        return Ok(st);
    }
    let _ = child.kill();
    child.wait()
}

/// SIGKILL (no clean shutdown) and reap.
pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
