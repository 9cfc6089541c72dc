//! A long-running command (watch, lock, elect, keep-alive) whose stdout is read line by line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::process::{exit_code, terminate, wait_timeout, Timing};

/// A long-running command; its stdout arrives line by line, its stderr is collected, and it
/// is killed on drop.
pub struct Bg {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    cmd: String,
    timing: Timing,
}

impl Bg {
    /// Starts `cmd` (shown as `shown` in messages) with stdin on `/dev/null`; waits on it
    /// with `timing`.
    pub fn spawn(cmd: Command, shown: String, timing: Timing) -> Bg {
        Bg::spawn_with(cmd, shown, timing, false)
    }

    /// Like [`Bg::spawn`], with stdin open for [`Bg::send_line`] (interactive commands such as
    /// `watch -i`).
    pub fn spawn_interactive(cmd: Command, shown: String, timing: Timing) -> Bg {
        Bg::spawn_with(cmd, shown, timing, true)
    }

    fn spawn_with(mut cmd: Command, shown: String, timing: Timing, interactive: bool) -> Bg {
        let mut child = cmd
            .stdin(if interactive {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = Arc::new(Mutex::new(String::new()));
        let err2 = Arc::clone(&err);
        let stderr = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut e = err2.lock().unwrap_or_else(|e| e.into_inner());
                e.push_str(&line);
                e.push('\n');
            }
        });
        let stdin = child.stdin.take();
        Bg {
            child,
            stdin,
            lines: rx,
            stderr: err,
            cmd: shown,
            timing,
        }
    }

    /// Writes `line` and a newline to the command's stdin (started with
    /// [`Bg::spawn_interactive`]).
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("started with spawn_interactive");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("`{}`: cannot write stdin: {e}", self.cmd));
    }

    /// Closes stdin (an interactive command then sees end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, or `None` if none arrives within `timeout` (or stdout closed).
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Exactly the next `n` lines; panics (with stderr) if they do not all arrive within
    /// `timeout`.
    #[track_caller]
    pub fn lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(l) => out.push(l),
                None => panic!(
                    "`{}`: got {} of {n} lines within {timeout:?}: {out:?}\nstderr: {}",
                    self.cmd,
                    out.len(),
                    self.stderr()
                ),
            }
        }
        out
    }

    /// Reads lines until one equals `line`; returns the lines before it.
    #[track_caller]
    pub fn until(&self, line: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(l) if l == line => return out,
                Some(l) => out.push(l),
                None => panic!(
                    "`{}`: no line {line:?} within {timeout:?}; got {out:?}\nstderr: {}",
                    self.cmd,
                    self.stderr()
                ),
            }
        }
    }

    /// True if no stdout line arrives within `d` (used to show a waiter is still blocked).
    pub fn quiet_for(&self, d: Duration) -> bool {
        matches!(self.lines.recv_timeout(d), Err(RecvTimeoutError::Timeout))
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the process to exit by itself; returns its exit code.
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        match wait_timeout(&mut self.child, timeout, self.timing.poll) {
            Some(st) => exit_code(st),
            None => panic!(
                "`{}` did not exit within {timeout:?}; stderr: {}",
                self.cmd,
                self.stderr()
            ),
        }
    }

    /// SIGTERM (etcdctl lock/elect release on it), SIGKILL after the grace period.
    pub fn terminate(&mut self) -> i32 {
        exit_code(terminate(&mut self.child, self.timing).expect("wait after SIGKILL"))
    }

    /// Remaining stdout lines after the process exited (waits up to `timeout` for EOF).
    pub fn rest(&self, timeout: Duration) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = self.next_line(timeout) {
            out.push(l);
        }
        out
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
