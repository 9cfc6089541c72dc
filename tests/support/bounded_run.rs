//! One run of a command to completion, bounded by a timeout.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::output::Output;
use super::process::{exit_code, wait_timeout};

/// Exit status reported when the harness killed a command after its timeout.
pub const TIMED_OUT: i32 = 124;

/// One run of `cmd`: stdout and stderr collected, SIGKILLed (status [`TIMED_OUT`]) after the
/// timeout.
pub struct BoundedRun {
    cmd: Command,
    shown: String,
    timeout: Duration,
    poll: Duration,
    stdin: Option<Vec<u8>>,
    note_timeout: bool,
}

impl BoundedRun {
    /// A run of `cmd`, shown as `shown` in messages, killed after `timeout`; its state is
    /// checked every `poll`. Its stdin is `/dev/null` unless [`BoundedRun::stdin`] is given.
    pub fn new(cmd: Command, shown: String, timeout: Duration, poll: Duration) -> BoundedRun {
        BoundedRun {
            cmd,
            shown,
            timeout,
            poll,
            stdin: None,
            note_timeout: false,
        }
    }

    /// Feeds `data` through a pipe on stdin (closed after it).
    pub fn stdin(mut self, data: Vec<u8>) -> BoundedRun {
        self.stdin = Some(data);
        self
    }

    /// When the run is killed after its timeout, appends `[harness: killed after ...]` to
    /// its stderr.
    pub fn note_timeout_in_stderr(mut self) -> BoundedRun {
        self.note_timeout = true;
        self
    }

    /// Runs to completion (or the timeout) and collects the output.
    pub fn output(mut self) -> Output {
        let stdin = match self.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        };
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.shown));
        let writer = self.stdin.take().map(|data| {
            let mut pipe = child.stdin.take().expect("piped stdin");
            thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })
        });
        let out_r = read_all(child.stdout.take().expect("piped stdout"));
        let err_r = read_all(child.stderr.take().expect("piped stderr"));
        let status = match wait_timeout(&mut child, self.timeout, self.poll) {
            Some(st) => exit_code(st),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                TIMED_OUT
            }
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = out_r.join().unwrap_or_default();
        let mut stderr = err_r.join().unwrap_or_default();
        if status == TIMED_OUT && self.note_timeout {
            stderr.push_str(&format!("\n[harness: killed after {:?}]", self.timeout));
        }
        Output {
            status,
            stdout,
            stderr,
            cmd: self.shown,
        }
    }
}

/// Reads `r` to its end on a thread of its own; the text, lossily decoded.
fn read_all<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}
