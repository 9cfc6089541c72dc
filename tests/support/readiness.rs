//! Waiting until a freshly started server answers a health probe.

use std::thread;
use std::time::{Duration, Instant};

use super::logged_process::LoggedProcess;
use super::output::Output;

/// Runs `probe` (e.g. `etcdctl endpoint health`) every 50 ms until it exits 0; panics with
/// the last 50 log lines if `process` exits meanwhile or `timeout` passes.
pub fn wait_ready(
    process: &mut LoggedProcess,
    timeout: Duration,
    mut probe: impl FnMut() -> Output,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = process.exited() {
            panic!(
                "server {} exited during startup ({st}); log tail:\n{}",
                process.bin().display(),
                process.log_tail(50)
            );
        }
        let out = probe();
        if out.status == 0 {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "server {} not healthy within {timeout:?} (last etcdctl: {}); log tail:\n{}",
                process.bin().display(),
                out.stderr.trim(),
                process.log_tail(50)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}
