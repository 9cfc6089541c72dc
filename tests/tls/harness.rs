//! Process harness for the TLS suite: which binaries run, free loopback ports, the [`Proc`]
//! guard around one server process (kvd or the real etcd 3.4) with its log file, bounded
//! runs of `etcdctl`, `curl` and `openssl`, and long-running `etcdctl watch` readers.
//!
//! Every process started here is killed when its guard is dropped (also on panic), every
//! wait has a deadline, and every port comes from binding 127.0.0.1:0.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a member may take to become healthy (the machine is shared and slow).
pub const READY: Duration = Duration::from_secs(40);
/// Bound on one helper command (etcdctl, curl, openssl).
pub const CMD: Duration = Duration::from_secs(30);
/// How long a server gets after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(8);
/// Poll interval for process state and log files.
const POLL: Duration = Duration::from_millis(50);

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

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port that was free a moment ago and that this process never handed out before.
pub fn free_port() -> u16 {
    let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(HashSet::new);
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        if seen.insert(port) {
            return port;
        }
    }
}

/// A fresh temp dir (removed on drop).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("kvd-tls-{prefix}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Exit code of a finished process; a signal `n` maps to `128 + n` like a shell does.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Polls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// One server process (kvd or etcd) writing stdout and stderr to a log file; SIGKILLed on
/// drop, and its log tail printed when the test is panicking.
pub struct Proc {
    label: String,
    bin: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `imp` with `args` in `cwd`, logging to `cwd/<label>.log`. `ETCD_*` variables
    /// of the test environment are removed so that only `args` configure the server.
    pub fn spawn(imp: Impl, cwd: &Path, label: &str, args: &[String]) -> Proc {
        let mut p = Proc {
            label: format!("{} {label}", imp.name()),
            bin: imp.bin(),
            args: args.to_vec(),
            cwd: cwd.to_path_buf(),
            log: cwd.join(format!("{}-{label}.log", imp.name())),
            child: None,
        };
        p.launch();
        p
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.label);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        let log2 = log.try_clone().expect("clone log handle");
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD") {
                cmd.env_remove(&k);
            }
        }
        let child = cmd
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// `"kvd m1"`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
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
        let child = self.child.as_mut()?;
        let st = wait_timeout(child, timeout)?;
        self.child = None;
        Some(exit_code(st))
    }

    /// Panics (with the log tail) if the process has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                panic!(
                    "{} exited ({st}); log tail:\n{}",
                    self.label,
                    self.log_tail(40)
                );
            }
        } else {
            panic!("{} is not running", self.label);
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
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(st) = wait_timeout(&mut c, TERM_GRACE) {
            return Some(exit_code(st));
        }
        let _ = c.kill();
        c.wait().ok().map(exit_code)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same binary again with `args` (same working dir and log file).
    pub fn restart_with(&mut self, args: &[String]) {
        self.kill();
        self.args = args.to_vec();
        self.launch();
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

/// What one finished helper command produced.
#[derive(Clone, Debug)]
pub struct Out {
    /// Exit code (128 + signal; 124 when the harness killed it after its timeout).
    pub status: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// The command line, for messages.
    pub cmd: String,
}

impl Out {
    /// Asserts exit 0.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(
            self.status, 0,
            "`{}` failed (exit {}):\nstdout: {}\nstderr: {}",
            self.cmd, self.status, self.stdout, self.stderr
        );
        self
    }

    /// Asserts what etcdctl does on every TLS failure: exit 1 and the single user-facing
    /// line `Error: context deadline exceeded`.
    #[track_caller]
    pub fn deadline_exceeded(self) -> Out {
        assert_eq!(
            (self.status, self.user_stderr()),
            (1, vec!["Error: context deadline exceeded".to_string()]),
            "`{}`: expected exit 1 and `Error: context deadline exceeded`; stdout: {}",
            self.cmd,
            self.stdout
        );
        self
    }

    /// stderr without JSON (zap) log lines and blank lines.
    pub fn user_stderr(&self) -> Vec<String> {
        self.stderr
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('{'))
            .map(str::to_string)
            .collect()
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("`{}`: stdout is not JSON ({e}): {}", self.cmd, self.stdout))
    }
}

fn read_all<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion (SIGKILL after `timeout`) and collects its output.
pub fn run(mut cmd: Command, timeout: Duration) -> Out {
    let shown = display(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}"));
    let out = read_all(child.stdout.take().expect("piped stdout"));
    let err = read_all(child.stderr.take().expect("piped stderr"));
    let status = match wait_timeout(&mut child, timeout) {
        Some(st) => exit_code(st),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            124
        }
    };
    Out {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        cmd: shown,
    }
}

/// Runs a bash script in `dir` (the guides' shell steps); panics with its output on failure.
#[track_caller]
pub fn sh(dir: &Path, script: &str) -> Out {
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
pub fn curl(args: &[&str]) -> Out {
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
    pub fn run(&self, args: &[&str]) -> Out {
        run(self.command(args), CMD)
    }

    /// Runs `etcdctl ARGS` and asserts exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).ok().stdout
    }

    /// Starts a long-running `etcdctl ARGS` (watch) whose stdout is read line by line.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        let mut cmd = self.command(args);
        let shown = display(&cmd);
        let mut child = cmd
            .stdin(Stdio::null())
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
        Bg {
            child,
            lines: rx,
            stderr: err,
            cmd: shown,
        }
    }
}

/// A long-running `etcdctl` (watch); killed on drop.
pub struct Bg {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    cmd: String,
}

impl Bg {
    /// Exactly the next `n` stdout lines; panics (with stderr) if they do not all arrive
    /// within `timeout`.
    #[track_caller]
    pub fn lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => out.push(l),
                Err(_) => panic!(
                    "`{}`: got {} of {n} lines within {timeout:?}: {out:?}\nstderr: {}",
                    self.cmd,
                    out.len(),
                    self.stderr.lock().unwrap_or_else(|e| e.into_inner())
                ),
            }
        }
        out
    }

    /// The process's open sockets (`socket:[INODE]` links under /proc/PID/fd): the same
    /// inode later means the same connection is still open.
    pub fn sockets(&self) -> std::collections::BTreeSet<String> {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()));
        fds.into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|l| l.display().to_string())
            .filter(|l| l.starts_with("socket:"))
            .collect()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
