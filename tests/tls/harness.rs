//! Process harness for the TLS suite: which binaries run, free loopback ports, the [`Proc`]
//! guard around one server process (kvd or the real etcd 3.4) with its log file, bounded
//! runs of `etcdctl`, `curl` and `openssl`, and long-running `etcdctl watch` readers.
//!
//! Every process started here is killed when its guard is dropped (also on panic), every
//! wait has a deadline, and every port comes from binding 127.0.0.1:0. Ports, process
//! handling and bounded runs come from [`crate::support`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::bounded_run::BoundedRun;
use crate::support::logged_process::LoggedProcess;
use crate::support::process::{exit_code, Timing};
use crate::support::temp;

pub use crate::support::background::Bg;
pub use crate::support::output::Output;
pub use crate::support::poll::eventually;
pub use crate::support::ports::free_port;

/// How long a member may take to become healthy (the machine is shared and slow).
pub const READY: Duration = Duration::from_secs(40);
/// Bound on one helper command (etcdctl, curl, openssl).
pub const CMD: Duration = Duration::from_secs(30);
/// Poll interval for process state, and how long a server gets after SIGTERM before SIGKILL.
const TIMING: Timing = Timing {
    poll: Duration::from_millis(50),
    term_grace: Duration::from_secs(8),
};

/// The two servers every comparison runs: kvd (under test) and the real etcd 3.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// The `kvd` binary cargo built for this package.
    Kvd,
    /// `/usr/bin/etcd` (3.4.23).
    Etcd,
}

impl Impl {
    /// Both servers, kvd first.
    pub const BOTH: [Impl; 2] = [Impl::Kvd, Impl::Etcd];

    /// The server binary.
    pub fn bin(self) -> PathBuf {
        match self {
            Impl::Kvd => PathBuf::from(env!("CARGO_BIN_EXE_kvd")),
            Impl::Etcd => PathBuf::from("/usr/bin/etcd"),
        }
    }

    /// `"kvd"` or `"etcd"`, for messages and file names.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Kvd => "kvd",
            Impl::Etcd => "etcd",
        }
    }
}

/// True when etcd, etcdctl, openssl, curl and cfssl are all installed.
pub fn tools_present() -> bool {
    [
        "/usr/bin/etcd",
        "/usr/bin/etcdctl",
        "/usr/bin/openssl",
        "/usr/bin/curl",
        "/usr/bin/cfssl",
        "/usr/bin/cfssljson",
    ]
    .iter()
    .all(|p| Path::new(p).is_file())
}

/// Returns early from a test (saying why) when a needed tool is missing.
macro_rules! require_tools {
    () => {
        if !$crate::harness::tools_present() {
            eprintln!(
                "skipped: needs etcd, etcdctl, openssl, curl, cfssl and cfssljson in /usr/bin"
            );
            return;
        }
    };
}

/// A fresh temp dir (removed on drop).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    temp::temp_dir(&format!("kvd-tls-{prefix}-"))
}

/// One server process (kvd or etcd) writing stdout and stderr to a log file; SIGKILLed on
/// drop, and its log tail printed when the test is panicking.
pub struct Proc {
    label: String,
    process: LoggedProcess,
}

impl Proc {
    /// Starts `imp` with `args` in `cwd`, logging to `cwd/<label>.log`. `ETCD_*` variables
    /// of the test environment are removed so that only `args` configure the server.
    pub fn spawn(imp: Impl, cwd: &Path, label: &str, args: &[String]) -> Proc {
        let full_label = format!("{} {label}", imp.name());
        let log = cwd.join(format!("{}-{label}.log", imp.name()));
        let process = LoggedProcess::new(&full_label, &imp.bin(), args.to_vec(), cwd, log)
            .without_env_prefix("ETCD");
        let mut p = Proc {
            label: full_label,
            process,
        };
        p.process.launch();
        p
    }

    /// `"kvd m1"`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.process.log_text()
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log_tail(n)
    }

    /// Log lines containing every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
            .collect()
    }

    /// Waits until a log line contains every one of `needles`; returns it. Panics with the
    /// log tail after `timeout`.
    #[track_caller]
    pub fn wait_log(&self, needles: &[&str], timeout: Duration) -> String {
        match eventually(timeout, || self.log_lines(needles).into_iter().next()) {
            Some(l) => l,
            None => panic!(
                "{}: no log line with {needles:?} within {timeout:?}; log tail:\n{}",
                self.label,
                self.log_tail(40)
            ),
        }
    }

    /// Waits for the process to exit by itself; its exit code, or `None` after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.process.wait_exit(timeout, TIMING.poll).map(exit_code)
    }

    /// Panics (with the log tail) if the process has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if !self.process.is_running() {
            panic!("{} is not running", self.label);
        }
        if let Some(st) = self.process.exited() {
            panic!(
                "{} exited ({st}); log tail:\n{}",
                self.label,
                self.log_tail(40)
            );
        }
    }

    /// Polls `ctl endpoint health` until it succeeds; panics with the log tail if the process
    /// exits or [`READY`] passes.
    #[track_caller]
    pub fn wait_healthy(&mut self, ctl: &Ctl) {
        let deadline = Instant::now() + READY;
        loop {
            self.assert_running();
            let out = ctl
                .clone()
                .command_timeout("1s")
                .run(&["endpoint", "health"]);
            if out.status == 0 {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} not healthy within {READY:?} (last `{}`: {}); log tail:\n{}",
                    self.label,
                    out.cmd,
                    out.stderr.trim(),
                    self.log_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, SIGKILL after a grace period; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.process.stop(TIMING)?.ok().map(exit_code)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the same binary again with `args` (same working dir and log file).
    pub fn restart_with(&mut self, args: &[String]) {
        self.kill();
        *self.process.args_mut() = args.to_vec();
        self.process.launch();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "---- last 40 log lines of {} ----\n{}\n---- end ----",
                self.label,
                self.log_tail(40)
            );
        }
    }
}

/// The check only this suite makes on a finished helper command.
impl Output {
    /// Asserts what etcdctl does on every TLS failure: exit 1 and the single user-facing
    /// line `Error: context deadline exceeded`.
    #[track_caller]
    pub fn deadline_exceeded(self) -> Output {
        assert_eq!(
            (self.status, self.err_lines()),
            (1, vec!["Error: context deadline exceeded".to_string()]),
            "`{}`: expected exit 1 and `Error: context deadline exceeded`; stdout: {}",
            self.cmd,
            self.stdout
        );
        self
    }
}

/// The command line of `cmd` as run, for messages.
fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion (SIGKILL after `timeout`) and collects its output.
pub fn run(cmd: Command, timeout: Duration) -> Output {
    let shown = display(&cmd);
    BoundedRun::new(cmd, shown, timeout, TIMING.poll).output()
}

/// Runs a bash script in `dir` (the guides' shell steps); panics with its output on failure.
#[track_caller]
pub fn sh(dir: &Path, script: &str) -> Output {
    let mut c = Command::new("bash");
    c.arg("-euo").arg("pipefail").arg("-c").arg(script);
    c.current_dir(dir);
    let out = run(c, Duration::from_secs(120));
    assert_eq!(
        out.status, 0,
        "script failed (exit {}):\n{script}\nstdout: {}\nstderr: {}",
        out.status, out.stdout, out.stderr
    );
    out
}

/// `curl -sS --max-time 10 ARGS`.
pub fn curl(args: &[&str]) -> Output {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10"]).args(args);
    run(c, CMD)
}

/// One `etcdctl` (API v3) configuration: endpoints, TLS flags and command timeout.
#[derive(Clone, Debug)]
pub struct Ctl {
    endpoints: String,
    flags: Vec<String>,
    command_timeout: String,
}

impl Ctl {
    /// etcdctl against `endpoints` (comma-separated URLs or `host:port`), no TLS flags,
    /// `--command-timeout=5s`.
    pub fn new(endpoints: &str) -> Ctl {
        Ctl {
            endpoints: endpoints.to_string(),
            flags: Vec::new(),
            command_timeout: "5s".into(),
        }
    }

    /// Adds global flags (`--cacert=...`, `--insecure-skip-tls-verify`, ...).
    pub fn flags(mut self, flags: &[&str]) -> Ctl {
        self.flags.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// `--cacert`.
    pub fn cacert(self, ca: &Path) -> Ctl {
        let f = format!("--cacert={}", ca.display());
        self.flags(&[&f])
    }

    /// `--cert` and `--key`.
    pub fn cert(self, cert: &Path, key: &Path) -> Ctl {
        let c = format!("--cert={}", cert.display());
        let k = format!("--key={}", key.display());
        self.flags(&[&c, &k])
    }

    /// etcdctl's own `--command-timeout`.
    pub fn command_timeout(mut self, t: &str) -> Ctl {
        self.command_timeout = t.to_string();
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/usr/bin/etcdctl");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCDCTL") {
                c.env_remove(&k);
            }
        }
        c.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints))
            .arg(format!("--command-timeout={}", self.command_timeout))
            .args(&self.flags)
            .args(args);
        c
    }

    /// Runs `etcdctl ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        run(self.command(args), CMD)
    }

    /// Runs `etcdctl ARGS` and asserts exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).ok().stdout
    }

    /// Starts a long-running `etcdctl ARGS` (watch) whose stdout is read line by line.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        let cmd = self.command(args);
        let shown = display(&cmd);
        Bg::spawn(cmd, shown, TIMING)
    }
}

/// What only this suite asks of a long-running `etcdctl` (watch).
impl Bg {
    /// The process's open sockets (`socket:[INODE]` links under /proc/PID/fd): the same
    /// inode later means the same connection is still open.
    pub fn sockets(&self) -> std::collections::BTreeSet<String> {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid()));
        fds.into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|l| l.display().to_string())
            .filter(|l| l.starts_with("socket:"))
            .collect()
    }
}

/// Joins a scoped thread, re-raising its panic with the original message.
pub fn join<T>(h: thread::ScopedJoinHandle<'_, T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// The flags every single-scheme member needs: name, data dir, one listen/advertise client
/// URL list, one listen/advertise peer URL, the initial cluster and its token.
pub fn member_flags(
    name: &str,
    data_dir: &Path,
    client_urls: &str,
    peer_url: &str,
    initial_cluster: &str,
) -> Vec<String> {
    let advertise = client_urls.split(',').next().unwrap_or_default();
    vec![
        format!("--name={name}"),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={client_urls}"),
        format!("--advertise-client-urls={advertise}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster={initial_cluster}"),
        "--initial-cluster-token=kvd-tls-suite".to_string(),
        "--initial-cluster-state=new".to_string(),
    ]
}

/// `--flag=path` for each pair.
pub fn path_flags(pairs: &[(&str, &Path)]) -> Vec<String> {
    pairs
        .iter()
        .map(|(f, p)| format!("--{f}={}", p.display()))
        .collect()
}

/// Runs `f` for kvd and etcd at the same time (one thread each); results in [`Impl::BOTH`]
/// order. A panic in either is re-raised.
pub fn for_both<T: Send>(f: impl Fn(Impl) -> T + Sync) -> Vec<T> {
    let f = &f;
    thread::scope(|s| {
        let hs: Vec<_> = Impl::BOTH
            .iter()
            .map(|imp| s.spawn(move || f(*imp)))
            .collect();
        hs.into_iter().map(join).collect()
    })
}

/// One member's name and free loopback ports.
#[derive(Clone, Debug)]
pub struct Node {
    /// `--name`.
    pub name: String,
    /// Client port.
    pub client: u16,
    /// Peer port.
    pub peer: u16,
}

impl Node {
    /// `n` members named `{prefix}1..{prefix}n` with fresh ports.
    pub fn several(prefix: &str, n: usize) -> Vec<Node> {
        (1..=n)
            .map(|i| Node {
                name: format!("{prefix}{i}"),
                client: free_port(),
                peer: free_port(),
            })
            .collect()
    }

    /// `SCHEME://127.0.0.1:CLIENT`.
    pub fn client_url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.client)
    }

    /// `SCHEME://127.0.0.1:PEER`.
    pub fn peer_url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.peer)
    }
}

/// `name=SCHEME://127.0.0.1:PEER,...` for `nodes`.
pub fn initial_cluster(nodes: &[Node], scheme: &str) -> String {
    nodes
        .iter()
        .map(|n| format!("{}={}", n.name, n.peer_url(scheme)))
        .collect::<Vec<_>>()
        .join(",")
}

/// `etcdctl member list` (simple format) as sorted rows of
/// `[STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER]` (the ID dropped).
pub fn member_rows(out: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(", ").skip(1).map(str::to_string).collect())
        .collect();
    rows.sort_by(|a, b| a.get(1).cmp(&b.get(1)));
    rows
}

/// Starts `nodes.len()` members of `imp` in `dir` (member `i` gets `args(i)`), then waits
/// until each is healthy according to `ctl(i)`.
pub fn start_cluster(
    imp: Impl,
    dir: &Path,
    nodes: &[Node],
    args: impl Fn(usize) -> Vec<String>,
    ctl: impl Fn(usize) -> Ctl,
) -> Vec<Proc> {
    let mut procs: Vec<Proc> = (0..nodes.len())
        .map(|i| Proc::spawn(imp, dir, &nodes[i].name, &args(i)))
        .collect();
    for (i, p) in procs.iter_mut().enumerate() {
        p.wait_healthy(&ctl(i));
    }
    procs
}
