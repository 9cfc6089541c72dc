//! Process harness for the snapshot suite.
//!
//! Owns what the tests need to run real etcd 3.4, kvd, `etcdctl` and `kvd snapshot`: the
//! [`Server`] process guard (start on a fresh or prepared data dir, readiness, SIGTERM/SIGKILL
//! on drop, log tail on panic) and one-shot `etcdctl`/`kvd` runs bounded by a timeout
//! ([`Ctl`], [`kvd_cli`]). Binary lookup, free ports, process handling and the `-w json`
//! helpers come from [`crate::support`].

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::bounded_run::BoundedRun;
use crate::support::logged_process::LoggedProcess;
use crate::support::process::Timing;
use crate::support::readiness;
use crate::support::temp::temp_dir;

pub use crate::support::bins::{etcd_bin, etcdctl_bin, kvd_bin};
pub use crate::support::etcdctl_json::{b64, header_revision, kvs, lease_id};
pub use crate::support::member::{initial_cluster, Member};
pub use crate::support::output::Output;
pub use crate::support::poll::eventually;

/// How long a server may take to answer `endpoint health` after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound on one `etcdctl` or `kvd snapshot` invocation.
pub const CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// etcdctl's own `--command-timeout`: generous, as two cores are shared by several servers
/// and by bcrypt checks (one per authenticated etcdctl run).
const COMMAND_TIMEOUT: &str = "20s";
/// etcdctl's own `--dial-timeout` (its default is 2 s).
const DIAL_TIMEOUT: &str = "20s";
/// Poll interval while waiting for a process state change, and how long a server gets to
/// exit after SIGTERM before it is SIGKILLed.
const TIMING: Timing = Timing {
    poll: Duration::from_millis(20),
    term_grace: Duration::from_secs(5),
};

/// True when both etcd and etcdctl are installed; tests skip themselves otherwise.
pub fn tools_present() -> bool {
    etcd_bin().is_file() && etcdctl_bin().is_file()
}

/// Returns early from a test (after saying why) when etcd/etcdctl are not installed.
macro_rules! require_tools {
    () => {
        if !$crate::harness::tools_present() {
            eprintln!(
                "skipped: etcd/etcdctl not installed (need /usr/bin/etcd and /usr/bin/etcdctl)"
            );
            return;
        }
    };
}

/// A fresh temp dir (a server's `data/` and `server.log`, snapshot files, ...).
pub fn new_temp_dir() -> tempfile::TempDir {
    temp_dir("kvd-snap-")
}

/// A running server process (etcd or kvd) with its own temp dir; killed on drop.
pub struct Server {
    dir: tempfile::TempDir,
    member: Member,
    process: LoggedProcess,
    user: String,
}

impl Server {
    /// Starts a single-member server from `bin` on a fresh data dir and waits until healthy.
    pub fn start(bin: &Path) -> Server {
        Server::start_prepared(new_temp_dir(), bin, Member::new("m1"), "kvd-snap", "")
    }

    /// Starts the process for one member of `initial_cluster` in `dir` (its data dir is
    /// `dir/data`, which may have been prepared by a restore) without waiting. `user`
    /// (`name:password`, or "") is who the readiness probe authenticates as.
    pub fn spawn_in(
        dir: tempfile::TempDir,
        bin: &Path,
        member: Member,
        initial_cluster: &str,
        token: &str,
        user: &str,
    ) -> Server {
        let args = member.flags(&dir.path().join("data"), initial_cluster, token);
        let log = dir.path().join("server.log");
        let process = LoggedProcess::new("server", bin, args, dir.path(), log);
        let mut s = Server {
            dir,
            member,
            process,
            user: user.to_string(),
        };
        s.process.launch();
        s
    }

    /// Stops the server (SIGTERM, SIGKILL after a grace period), starts it again with the same
    /// flags and data dir, and waits until healthy.
    pub fn restart(&mut self) {
        let _ = self.process.stop(TIMING);
        self.process.launch();
        self.wait_ready();
    }

    /// Starts a single member on a data dir (`dir/data`) prepared by a restore whose
    /// `--initial-cluster-token` was `token`, and waits until healthy (probing as `user`, which
    /// an auth-enabled store needs).
    pub fn start_prepared(
        dir: tempfile::TempDir,
        bin: &Path,
        member: Member,
        token: &str,
        user: &str,
    ) -> Server {
        let cluster = member.cluster_entry();
        let mut s = Server::spawn_in(dir, bin, member, &cluster, token, user);
        s.wait_ready();
        s
    }

    /// Polls `endpoint health` until it succeeds; panics (with the log tail) after
    /// [`READY_TIMEOUT`] or if the process exits.
    pub fn wait_ready(&mut self) {
        let endpoint = self.endpoint();
        let user = self.user.clone();
        readiness::wait_ready(&mut self.process, READY_TIMEOUT, || {
            Ctl::new(&endpoint)
                .user(&user)
                .args(&["endpoint", "health"])
                .command_timeout("3s")
                .dial_timeout("3s")
                .timeout(Duration::from_secs(10))
                .run()
        });
    }

    /// `127.0.0.1:PORT` of the client listener.
    pub fn endpoint(&self) -> String {
        self.member.endpoint()
    }

    /// This member's name and ports.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The last `n` lines the server wrote to stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log_tail(n)
    }

    /// An `etcdctl` invocation against this server.
    pub fn ctl(&self) -> Ctl {
        Ctl::new(&self.endpoint())
    }

    /// Runs `etcdctl args` as `user` (`name:password`, or "" for no user) and asserts exit 0.
    pub fn ok_as(&self, user: &str, args: &[&str]) -> String {
        self.ctl().user(user).args(args).run().ok().stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.stop(TIMING);
        if std::thread::panicking() {
            eprintln!(
                "---- last 50 log lines of {} ({}, in {}) ----\n{}\n---- end of log ----",
                self.process.bin().display(),
                self.endpoint(),
                self.dir.path().display(),
                self.log_tail(50)
            );
        }
    }
}

/// The checks only this suite makes on a finished `etcdctl` or `kvd` run.
impl Output {
    /// Asserts a non-zero exit code; returns the run for further checks.
    #[track_caller]
    pub fn fails(self) -> Output {
        assert_ne!(
            self.status, 0,
            "`{}` was expected to fail but exited 0:\nstdout: {}\nstderr: {}",
            self.cmd, self.stdout, self.stderr
        );
        assert_ne!(self.status, 124, "`{}` hung: {}", self.cmd, self.stderr);
        self
    }

    /// The user-facing result of a run: stdout when it succeeded, else the filtered stderr.
    pub fn shown(&self) -> String {
        if self.status == 0 {
            self.stdout.clone()
        } else {
            format!("exit {}: {}", self.status, self.err_lines().join("\n"))
        }
    }
}

/// Runs `kvd args` (e.g. `snapshot status FILE`) to completion.
pub fn kvd_cli(args: &[&str]) -> Output {
    let mut c = Command::new(kvd_bin());
    c.args(args);
    let shown = format!("kvd {}", args.join(" "));
    BoundedRun::new(c, shown, CTL_TIMEOUT, TIMING.poll)
        .note_timeout_in_stderr()
        .output()
}

/// Runs `etcdctl args` with no server involved (snapshot status/restore).
pub fn etcdctl_local(args: &[&str]) -> Output {
    Ctl::new("127.0.0.1:1").args(args).run()
}

/// Builder for one `etcdctl` invocation (ETCDCTL_API=3, `--endpoints`, `--command-timeout`).
pub struct Ctl {
    endpoints: String,
    user: Option<String>,
    args: Vec<String>,
    timeout: Duration,
    command_timeout: String,
    dial_timeout: String,
}

impl Ctl {
    /// An invocation against `endpoints` (comma-separated `host:port`).
    pub fn new(endpoints: &str) -> Ctl {
        Ctl {
            endpoints: endpoints.to_string(),
            user: None,
            args: Vec::new(),
            timeout: CTL_TIMEOUT,
            command_timeout: COMMAND_TIMEOUT.into(),
            dial_timeout: DIAL_TIMEOUT.into(),
        }
    }

    /// `--user=NAME:PASSWORD`; an empty string means no user.
    pub fn user(mut self, user: &str) -> Ctl {
        self.user = (!user.is_empty()).then(|| user.to_string());
        self
    }

    /// Appends arguments after the global flags.
    pub fn args(mut self, args: &[&str]) -> Ctl {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Harness bound on the whole run; etcdctl is SIGKILLed after it.
    pub fn timeout(mut self, d: Duration) -> Ctl {
        self.timeout = d;
        self
    }

    /// etcdctl's own `--command-timeout`.
    pub fn command_timeout(mut self, t: &str) -> Ctl {
        self.command_timeout = t.to_string();
        self
    }

    /// etcdctl's own `--dial-timeout`.
    pub fn dial_timeout(mut self, t: &str) -> Ctl {
        self.dial_timeout = t.to_string();
        self
    }

    /// Runs to completion (or the timeout) and collects the output.
    pub fn run(self) -> Output {
        let mut display = String::from("etcdctl");
        if let Some(u) = &self.user {
            display.push_str(&format!(" --user={u}"));
        }
        for a in &self.args {
            display.push(' ');
            if a.is_empty() || a.contains(char::is_whitespace) {
                display.push_str(&format!("{a:?}"));
            } else {
                display.push_str(a);
            }
        }
        let mut c = Command::new(etcdctl_bin());
        c.env("ETCDCTL_API", "3")
            .env_remove("ETCDCTL_ENDPOINTS")
            .arg(format!("--endpoints={}", self.endpoints))
            .arg(format!("--command-timeout={}", self.command_timeout))
            // With --user, etcdctl authenticates while dialling: a bcrypt check in a debug
            // build on a busy machine can take longer than etcdctl's default 2 s.
            .arg(format!("--dial-timeout={}", self.dial_timeout));
        if let Some(u) = &self.user {
            c.arg(format!("--user={u}"));
        }
        c.args(&self.args);
        let t0 = Instant::now();
        let o = BoundedRun::new(c, display, self.timeout, TIMING.poll)
            .note_timeout_in_stderr()
            .output();
        if std::env::var_os("SNAP_TRACE").is_some() {
            eprintln!("TRACE {:?} {}", t0.elapsed(), o.cmd);
        }
        o
    }
}

/// `header.cluster_id` of a `-w json` response.
pub fn header_cluster_id(v: &Value) -> u64 {
    v.get("header")
        .and_then(|h| h.get("cluster_id"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no header.cluster_id in {v}"))
}
