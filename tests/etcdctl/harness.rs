//! Process harness for the etcdctl end-to-end suite.
//!
//! Owns everything the tests need to drive a server binary with the real `etcdctl` 3.4:
//! the [`Server`] process guard (start, readiness, kill -9, restart, log tail on panic), the
//! [`Cluster`] guard, one-shot `etcdctl` runs bounded by a timeout ([`Ctl`]), long-running
//! `etcdctl` commands read line by line ([`Bg`]), and a global lock that lets the
//! timing-sensitive tests run alone. Binary lookup, free ports, process handling and the
//! `-w json` helpers come from [`crate::support`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;

use crate::support::bounded_run::BoundedRun;
use crate::support::logged_process::LoggedProcess;
use crate::support::member::initial_cluster;
use crate::support::process::{exit_code, Timing};
use crate::support::readiness;
use crate::support::temp::temp_dir;

pub use crate::support::background::Bg;
pub use crate::support::bins::{
    etcd35_bin, etcd_bin, etcdctl35_bin, etcdctl_bin, etcdutl35_bin, kvd_bin,
};
pub use crate::support::etcdctl_json::{b64, header_revision, kvs, kvs_in, lease_id, Kv};
pub use crate::support::member::Member;
pub use crate::support::output::{user_stderr, Output};
pub use crate::support::poll::eventually;

/// How long a server may take to answer `endpoint health` after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound on one `etcdctl` invocation (its own `--command-timeout` is 5 s).
pub const CTL_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll interval while waiting for a process state change, and how long a process gets to
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
            eprintln!("skipped: etcdctl not installed (need /usr/bin/etcd and /usr/bin/etcdctl)");
            return;
        }
    };
}

static HEAVY: RwLock<()> = RwLock::new(());

/// Shared guard: ordinary tests hold it so a [`exclusive`] test runs alone.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    HEAVY.read().unwrap_or_else(|e| e.into_inner())
}

/// Exclusive guard for timing-sensitive tests (check perf, kill -9 under load).
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    HEAVY.write().unwrap_or_else(|e| e.into_inner())
}

/// A fresh temp dir for one server (`data/` and `server.log` go inside).
pub fn new_temp_dir() -> tempfile::TempDir {
    temp_dir("kvd-e2e-")
}

/// A running server process (etcd or kvd) with its own temp dir; killed on drop.
pub struct Server {
    dir: tempfile::TempDir,
    member: Member,
    process: LoggedProcess,
}

impl Server {
    /// Starts a single-member server from `bin` with `extra` flags and waits until healthy.
    pub fn start(bin: &Path, extra: &[&str]) -> Server {
        Server::start_prepared(new_temp_dir(), bin, Member::new("m1"), extra)
    }

    /// Starts the server under test.
    pub fn kvd(extra: &[&str]) -> Server {
        Server::start(&kvd_bin(), extra)
    }

    /// Starts the process for one member of the cluster `initial_cluster` without waiting.
    pub fn spawn(
        bin: &Path,
        member: Member,
        initial_cluster: &str,
        token: &str,
        extra: &[&str],
    ) -> Server {
        Server::spawn_in(new_temp_dir(), bin, member, initial_cluster, token, extra)
    }

    /// Starts a single member whose data dir (`dir/data`) was prepared beforehand (e.g. by
    /// `etcdctl snapshot restore`), and waits until healthy.
    pub fn start_prepared(
        dir: tempfile::TempDir,
        bin: &Path,
        member: Member,
        extra: &[&str],
    ) -> Server {
        let cluster = member.cluster_entry();
        let mut s = Server::spawn_in(dir, bin, member, &cluster, "kvd-e2e", extra);
        s.wait_ready();
        s
    }

    /// Like [`Server::spawn`], in an existing temp dir.
    pub fn spawn_in(
        dir: tempfile::TempDir,
        bin: &Path,
        member: Member,
        initial_cluster: &str,
        token: &str,
        extra: &[&str],
    ) -> Server {
        let mut args = member.flags(&dir.path().join("data"), initial_cluster, token);
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = dir.path().join("server.log");
        let process = LoggedProcess::new("server", bin, args, dir.path(), log);
        let mut s = Server {
            dir,
            member,
            process,
        };
        s.process.launch();
        s
    }

    /// Polls `endpoint health` until it succeeds; panics (with the log tail) after
    /// [`READY_TIMEOUT`] or if the process exits.
    pub fn wait_ready(&mut self) {
        let endpoint = self.endpoint();
        readiness::wait_ready(&mut self.process, READY_TIMEOUT, || {
            Ctl::new(&endpoint)
                .args(&["endpoint", "health"])
                .command_timeout("1s")
                .timeout(Duration::from_secs(5))
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

    /// The temp dir holding the data dir and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Path of the binary this server runs.
    pub fn bin(&self) -> &Path {
        self.process.bin()
    }

    /// SIGKILLs the process (no clean shutdown) and reaps it.
    pub fn kill9(&mut self) {
        self.process.kill();
    }

    /// SIGTERM (then SIGKILL after a grace period); returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.process
            .stop(TIMING)
            .map(|st| exit_code(st.expect("wait after SIGKILL")))
    }

    /// Starts the same binary again with the same flags and data dir and waits until healthy.
    pub fn restart(&mut self) {
        self.process.launch();
        self.wait_ready();
    }

    /// The last `n` lines the server wrote to stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log_tail(n)
    }

    /// Runs `etcdctl` against this server.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Ctl::new(&self.endpoint()).args(args).run()
    }

    /// Runs `etcdctl` against this server, feeding `stdin`.
    pub fn ctl_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        Ctl::new(&self.endpoint()).args(args).stdin(stdin).run()
    }

    /// Runs `etcdctl` and asserts exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ctl(args).ok().stdout
    }

    /// `get/put -w json` header revision of a cheap read (`get` of a key nobody uses).
    pub fn revision(&self) -> i64 {
        let v = self
            .ctl(&["get", "__rev_probe__", "-w", "json"])
            .ok()
            .json();
        header_revision(&v)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(st) = self.process.stop(TIMING) {
            st.expect("wait after SIGKILL");
        }
        if std::thread::panicking() {
            eprintln!(
                "---- last 50 log lines of {} ({}) ----\n{}\n---- end of log ----",
                self.bin().display(),
                self.endpoint(),
                self.log_tail(50)
            );
        }
    }
}

/// Several members forming one cluster; all are killed on drop.
pub struct Cluster {
    /// The members, in start order.
    pub servers: Vec<Server>,
}

impl Cluster {
    /// Starts `n` members of `bin` with `extra` flags and waits until each is healthy.
    pub fn start(bin: &Path, n: usize, extra: &[&str]) -> Cluster {
        let members: Vec<Member> = (1..=n).map(|i| Member::new(&format!("m{i}"))).collect();
        let initial = initial_cluster(&members);
        let token = format!("kvd-e2e-cluster-{}", members[0].peer_port);
        let mut servers: Vec<Server> = members
            .into_iter()
            .map(|m| Server::spawn(bin, m, &initial, &token, extra))
            .collect();
        for s in &mut servers {
            s.wait_ready();
        }
        Cluster { servers }
    }

    /// Comma-separated client endpoints of all members.
    pub fn endpoints(&self) -> String {
        self.servers
            .iter()
            .map(|s| s.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The checks only this suite makes on a finished `etcdctl` run.
impl Output {
    /// Asserts a non-zero exit code and that stderr has exactly the line `error`
    /// (e.g. `Error: etcdserver: key is not provided`).
    #[track_caller]
    pub fn fails_with(self, code: i32, error: &str) -> Output {
        assert_eq!(
            self.status, code,
            "`{}`: expected exit {code}, got {}:\nstdout: {}\nstderr: {}",
            self.cmd, self.status, self.stdout, self.stderr
        );
        assert!(
            self.err_lines().iter().any(|l| l == error),
            "`{}`: expected stderr line {error:?}, got:\n{}",
            self.cmd,
            self.stderr
        );
        self
    }

    /// Asserts exit 0 and exactly this stdout.
    #[track_caller]
    pub fn prints(self, stdout: &str) -> Output {
        let o = self.ok();
        assert_eq!(o.stdout, stdout, "`{}`: unexpected stdout", o.cmd);
        o
    }

    /// stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Builder for one `etcdctl` invocation (ETCDCTL_API=3, `--endpoints`, `--command-timeout`).
pub struct Ctl {
    bin: PathBuf,
    endpoints: String,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    command_timeout: String,
    dial_timeout: Option<String>,
}

impl Ctl {
    /// An invocation against `endpoints` (comma-separated `host:port`).
    pub fn new(endpoints: &str) -> Ctl {
        Ctl {
            bin: etcdctl_bin(),
            endpoints: endpoints.to_string(),
            args: Vec::new(),
            stdin: None,
            timeout: CTL_TIMEOUT,
            command_timeout: "5s".into(),
            dial_timeout: None,
        }
    }

    /// Runs another etcdctl binary (etcd 3.5.1's) instead of the 3.4 one.
    pub fn bin(mut self, bin: &Path) -> Ctl {
        self.bin = bin.to_path_buf();
        self
    }

    /// Appends arguments after the global flags.
    pub fn args(mut self, args: &[&str]) -> Ctl {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Feeds `data` on stdin (otherwise stdin is empty).
    pub fn stdin(mut self, data: &[u8]) -> Ctl {
        self.stdin = Some(data.to_vec());
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

    /// etcdctl's own `--dial-timeout` (default 2 s).
    pub fn dial_timeout(mut self, t: &str) -> Ctl {
        self.dial_timeout = Some(t.to_string());
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("ETCDCTL_API", "3")
            .env_remove("ETCDCTL_ENDPOINTS")
            .arg(format!("--endpoints={}", self.endpoints))
            .arg(format!("--command-timeout={}", self.command_timeout));
        if let Some(d) = &self.dial_timeout {
            c.arg(format!("--dial-timeout={d}"));
        }
        c.args(&self.args);
        c
    }

    /// The command line as a user would type it (without the global flags).
    pub fn display(&self) -> String {
        let mut s = String::from("etcdctl");
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                s.push_str(&format!("{a:?}"));
            } else {
                s.push_str(a);
            }
        }
        s
    }

    /// Runs to completion (or the timeout) and collects the output.
    pub fn run(self) -> Output {
        let stdin = self.stdin.clone().unwrap_or_default();
        BoundedRun::new(self.command(), self.display(), self.timeout, TIMING.poll)
            .stdin(stdin)
            .note_timeout_in_stderr()
            .output()
    }

    /// Starts a long-running command whose stdout is read line by line.
    pub fn spawn(self) -> Bg {
        Bg::spawn(self.command(), self.display(), TIMING)
    }

    /// Starts an interactive command (`watch -i`) that reads lines sent to its stdin.
    pub fn spawn_interactive(self) -> Bg {
        Bg::spawn_interactive(self.command(), self.display(), TIMING)
    }
}

/// Starting a long-running `etcdctl` (watch, lock, elect, keep-alive) against a [`Server`].
impl Bg {
    /// Starts `etcdctl args` against `server`.
    pub fn start(server: &Server, args: &[&str]) -> Bg {
        Ctl::new(&server.endpoint()).args(args).spawn()
    }
}

/// `key=value` pairs of a `get -w json` response, for compact assertions.
pub fn pairs(v: &Value) -> Vec<String> {
    kvs(v)
        .into_iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect()
}
