//! The guard around one server process whose stdout and stderr go to a log file.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::process::{kill_and_reap, terminate, wait_timeout, Timing};

/// One server process (kvd or etcd) appending stdout and stderr to a log file; it can be
/// stopped and started again with the same (or changed) flags, and is SIGKILLed on drop.
pub struct LoggedProcess {
    label: String,
    bin: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    log: PathBuf,
    env_prefix_removed: Option<String>,
    env_removed: Vec<String>,
    child: Option<Child>,
}

impl LoggedProcess {
    /// A process of `bin` with `args`, run in `cwd` and logging to `log`; not started yet.
    /// `label` names it in messages.
    pub fn new(label: &str, bin: &Path, args: Vec<String>, cwd: &Path, log: PathBuf) -> Self {
        LoggedProcess {
            label: label.to_string(),
            bin: bin.to_path_buf(),
            args,
            cwd: cwd.to_path_buf(),
            log,
            env_prefix_removed: None,
            env_removed: Vec::new(),
            child: None,
        }
    }

    /// Starts the process without the test environment's variables whose names begin with
    /// `prefix`, so that only the flags configure it.
    pub fn without_env_prefix(mut self, prefix: &str) -> Self {
        self.env_prefix_removed = Some(prefix.to_string());
        self
    }

    /// Starts the process without the test environment's variable `name` (unless a launch
    /// sets it explicitly).
    pub fn without_env(mut self, name: &str) -> Self {
        self.env_removed.push(name.to_string());
        self
    }

    /// Starts the process; returns its pid. Panics if it is already running.
    pub fn launch(&mut self) -> u32 {
        self.launch_with(&[])
    }

    /// Starts the process with `extra` flags after its own, for this run only; returns its
    /// pid. Panics if it is already running.
    pub fn launch_with(&mut self, extra: &[&str]) -> u32 {
        self.launch_with_env(extra, &[])
    }

    /// [`LoggedProcess::launch_with`] with environment variables `env` set for this run only.
    pub fn launch_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) -> u32 {
        assert!(self.child.is_none(), "{} already running", self.label);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        let log2 = log.try_clone().expect("clone log handle");
        let mut cmd = Command::new(&self.bin);
        if let Some(prefix) = &self.env_prefix_removed {
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with(prefix.as_str()) {
                    cmd.env_remove(&k);
                }
            }
        }
        for name in &self.env_removed {
            cmd.env_remove(name);
        }
        cmd.envs(env.iter().copied());
        let child = cmd
            .args(&self.args)
            .args(extra)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    /// Path of the binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The flags for the following starts.
    pub fn args_mut(&mut self) -> &mut Vec<String> {
        &mut self.args
    }

    /// The pid of the running process, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while a started process has not been seen to exit (or been stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `try_wait` of the running process, or `None` if none is running.
    pub fn try_wait(&mut self) -> Option<io::Result<Option<ExitStatus>>> {
        self.child.as_mut().map(|c| c.try_wait())
    }

    /// The exit status if the process has exited by itself (it then no longer counts as
    /// running); `None` while it runs or when none was running.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        match self.try_wait() {
            Some(Ok(Some(st))) => {
                self.child = None;
                Some(st)
            }
            _ => None,
        }
    }

    /// Waits (checking every `poll`) for the process to exit by itself; its status, or
    /// `None` after `timeout` or when none was running.
    pub fn wait_exit(&mut self, timeout: Duration, poll: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let st = wait_timeout(child, timeout, poll)?;
        self.child = None;
        Some(st)
    }

    /// SIGKILL (no clean shutdown) and reap; the pid of the process killed, if one ran.
    pub fn kill(&mut self) -> Option<u32> {
        let mut c = self.child.take()?;
        kill_and_reap(&mut c);
        Some(c.id())
    }

    /// SIGTERM, SIGKILL after `timing.term_grace`; the exit status, if a process ran.
    pub fn stop(&mut self, timing: Timing) -> Option<io::Result<ExitStatus>> {
        let mut c = self.child.take()?;
        Some(terminate(&mut c, timing))
    }

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        last_lines(self.log_text().lines(), n)
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` of `lines`, joined with newlines.
pub fn last_lines<'a>(lines: impl IntoIterator<Item = &'a str>, n: usize) -> String {
    let lines: Vec<&str> = lines.into_iter().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
