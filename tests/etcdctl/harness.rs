//! Process harness for the etcdctl end-to-end suite.
//!
//! Owns everything the tests need to drive a server binary with the real `etcdctl` 3.4:
//! binary lookup, free loopback ports, the [`Server`] process guard (start, readiness,
//! kill -9, restart, log tail on panic), one-shot `etcdctl` runs bounded by a timeout,
//! long-running `etcdctl` commands read line by line ([`Bg`]), `-w json` helpers, and a
//! global lock that lets the timing-sensitive tests run alone.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

/// How long a server may take to answer `endpoint health` after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound on one `etcdctl` invocation (its own `--command-timeout` is 5 s).
pub const CTL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server gets to exit after SIGTERM before it is SIGKILLed.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// Poll interval while waiting for a process state change.
const POLL: Duration = Duration::from_millis(20);

/// The reference server: the real etcd 3.4.
pub fn etcd_bin() -> PathBuf {
    PathBuf::from("/usr/bin/etcd")
}

/// The real etcdctl 3.4 (`ETCDCTL_BIN` overrides the path).
pub fn etcdctl_bin() -> PathBuf {
    std::env::var_os("ETCDCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcdctl"))
}

/// The server under test: `KVD_BIN` if set, else the `kvd` binary cargo built for this
/// package; a crate without a `kvd` binary (the scratch crate) falls back to etcd.
pub fn kvd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KVD_BIN") {
        return PathBuf::from(p);
    }
    match option_env!("CARGO_BIN_EXE_kvd") {
        Some(p) => PathBuf::from(p),
        None => etcd_bin(),
    }
}

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

/// Exit code of a finished process; a signal `n` maps to `128 + n` like a shell does.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Sends `signal` (e.g. "TERM") to `pid` with the `kill` utility.
fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits until `child` exits or `timeout` passes; returns its status if it exited.
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

/// SIGTERM, then SIGKILL if the process has not exited within the grace period.
fn terminate(child: &mut Child) -> ExitStatus {
    if let Ok(Some(st)) = child.try_wait() {
        return st;
    }
    send_signal(child.id(), "TERM");
    if let Some(st) = wait_timeout(child, TERM_GRACE) {
        return st;
    }
    let _ = child.kill();
    child.wait().expect("wait after SIGKILL")
}

/// One member's network identity: its name and client/peer ports.
#[derive(Clone, Debug)]
pub struct Member {
    /// `--name`.
    pub name: String,
    /// Client port on 127.0.0.1.
    pub client_port: u16,
    /// Peer port on 127.0.0.1.
    pub peer_port: u16,
}

impl Member {
    /// A member with fresh free ports.
    pub fn new(name: &str) -> Member {
        Member {
            name: name.to_string(),
            client_port: free_port(),
            peer_port: free_port(),
        }
    }

    /// `http://127.0.0.1:PEER`.
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// A fresh temp dir for one server (`data/` and `server.log` go inside).
pub fn new_temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kvd-e2e-")
        .tempdir()
        .expect("create temp dir")
}

/// A running server process (etcd or kvd) with its own temp dir; killed on drop.
pub struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    member: Member,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// Starts a single-member server from `bin` with `extra` flags and waits until healthy.
    pub fn start(bin: &Path, extra: &[&str]) -> Server {
        let member = Member::new("m1");
        let cluster = format!("{}={}", member.name, member.peer_url());
        let mut s = Server::spawn(bin, member, &cluster, "kvd-e2e", extra);
        s.wait_ready();
        s
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
        let cluster = format!("{}={}", member.name, member.peer_url());
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
        let data_dir = dir.path().join("data");
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = member.peer_url();
        let mut args: Vec<String> = vec![
            "--name".into(),
            member.name.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen-client-urls".into(),
            client.clone(),
            "--advertise-client-urls".into(),
            client,
            "--listen-peer-urls".into(),
            peer.clone(),
            "--initial-advertise-peer-urls".into(),
            peer,
            "--initial-cluster".into(),
            initial_cluster.into(),
            "--initial-cluster-token".into(),
            token.into(),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = dir.path().join("server.log");
        let mut s = Server {
            bin: bin.to_path_buf(),
            dir,
            member,
            args,
            child: None,
            log,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        let log2 = log.try_clone().expect("clone log handle");
        let child = Command::new(&self.bin)
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// Polls `endpoint health` until it succeeds; panics (with the log tail) after
    /// [`READY_TIMEOUT`] or if the process exits.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "server {} exited during startup ({st}); log tail:\n{}",
                        self.bin.display(),
                        self.log_tail(50)
                    );
                }
            }
            let out = Ctl::new(&self.endpoint())
                .args(&["endpoint", "health"])
                .command_timeout("1s")
                .timeout(Duration::from_secs(5))
                .run();
            if out.status == 0 {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "server {} not healthy within {READY_TIMEOUT:?} (last etcdctl: {}); log tail:\n{}",
                    self.bin.display(),
                    out.stderr.trim(),
                    self.log_tail(50)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT` of the client listener.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.member.client_port)
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
        &self.bin
    }

    /// SIGKILLs the process (no clean shutdown) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (then SIGKILL after a grace period); returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.child.take().map(|mut c| exit_code(terminate(&mut c)))
    }

    /// Starts the same binary again with the same flags and data dir and waits until healthy.
    pub fn restart(&mut self) {
        self.launch();
        self.wait_ready();
    }

    /// The last `n` lines the server wrote to stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
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
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
        if thread::panicking() {
            eprintln!(
                "---- last 50 log lines of {} ({}) ----\n{}\n---- end of log ----",
                self.bin.display(),
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
        let initial = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
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

/// What one finished `etcdctl` run produced.
#[derive(Clone, Debug)]
pub struct Output {
    /// Exit code (128 + signal if killed; 124 if it hit the harness timeout).
    pub status: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// The command line, for messages.
    pub cmd: String,
}

impl Output {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(
            self.status, 0,
            "`{}` failed (exit {}):\nstdout: {}\nstderr: {}",
            self.cmd, self.status, self.stdout, self.stderr
        );
        self
    }

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

    /// stderr without etcdctl's JSON (zap) log lines and blank lines.
    pub fn err_lines(&self) -> Vec<String> {
        user_stderr(&self.stderr)
    }

    /// Parses stdout as JSON (panics with the text if it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("`{}`: stdout is not JSON ({e}): {}", self.cmd, self.stdout))
    }

    /// stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// stderr lines a user reads: drops zap JSON log lines and blank lines.
pub fn user_stderr(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty() && !l.starts_with('{'))
        .map(str::to_string)
        .collect()
}

/// Builder for one `etcdctl` invocation (ETCDCTL_API=3, `--endpoints`, `--command-timeout`).
pub struct Ctl {
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
            endpoints: endpoints.to_string(),
            args: Vec::new(),
            stdin: None,
            timeout: CTL_TIMEOUT,
            command_timeout: "5s".into(),
            dial_timeout: None,
        }
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
        let mut c = Command::new(etcdctl_bin());
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
        let cmd = self.display();
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", etcdctl_bin().display()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let data = self.stdin.clone().unwrap_or_default();
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out_r = read_all(child.stdout.take().expect("piped stdout"));
        let err_r = read_all(child.stderr.take().expect("piped stderr"));
        let status = match wait_timeout(&mut child, self.timeout) {
            Some(st) => exit_code(st),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                124
            }
        };
        let _ = writer.join();
        let stdout = out_r.join().unwrap_or_default();
        let mut stderr = err_r.join().unwrap_or_default();
        if status == 124 {
            stderr.push_str(&format!("\n[harness: killed after {:?}]", self.timeout));
        }
        Output {
            status,
            stdout,
            stderr,
            cmd,
        }
    }

    /// Starts a long-running command whose stdout is read line by line.
    pub fn spawn(self) -> Bg {
        let cmd = self.display();
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", etcdctl_bin().display()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
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
            cmd,
        }
    }
}

fn read_all<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A long-running `etcdctl` (watch, lock, elect, keep-alive); killed on drop.
pub struct Bg {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    cmd: String,
}

impl Bg {
    /// Starts `etcdctl args` against `server`.
    pub fn start(server: &Server, args: &[&str]) -> Bg {
        Ctl::new(&server.endpoint()).args(args).spawn()
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
        match wait_timeout(&mut self.child, timeout) {
            Some(st) => exit_code(st),
            None => panic!(
                "`{}` did not exit within {timeout:?}; stderr: {}",
                self.cmd,
                self.stderr()
            ),
        }
    }

    /// SIGTERM (etcdctl lock/elect release on it), SIGKILL after a grace period.
    pub fn terminate(&mut self) -> i32 {
        exit_code(terminate(&mut self.child))
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

/// Decodes etcdctl's base64 (keys/values in `-w json`) to a lossy UTF-8 string.
pub fn b64(v: &Value) -> String {
    let s = v.as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One key-value from `-w json` output; absent numeric fields are 0 as in etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    /// Decoded key.
    pub key: String,
    /// Decoded value.
    pub value: String,
    /// `create_revision`.
    pub create: i64,
    /// `mod_revision`.
    pub modified: i64,
    /// `version`.
    pub version: i64,
    /// `lease` (0 = none).
    pub lease: i64,
}

fn num(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

/// The `kvs` of a range response (or of a `prev_kvs`/`prev_kv` list when `field` says so).
pub fn kvs_in(v: &Value, field: &str) -> Vec<Kv> {
    let arr = match v.get(field) {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => Vec::new(),
    };
    arr.iter()
        .map(|kv| Kv {
            key: b64(kv.get("key").unwrap_or(&Value::Null)),
            value: kv.get("value").map(b64).unwrap_or_default(),
            create: num(kv, "create_revision"),
            modified: num(kv, "mod_revision"),
            version: num(kv, "version"),
            lease: num(kv, "lease"),
        })
        .collect()
}

/// `kvs` of a `get -w json` response.
pub fn kvs(v: &Value) -> Vec<Kv> {
    kvs_in(v, "kvs")
}

/// `header.revision` of a `-w json` response.
pub fn header_revision(v: &Value) -> i64 {
    v.get("header")
        .and_then(|h| h.get("revision"))
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no header.revision in {v}"))
}

/// `key=value` pairs of a `get -w json` response, for compact assertions.
pub fn pairs(v: &Value) -> Vec<String> {
    kvs(v)
        .into_iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect()
}

/// Parses the lease id out of `lease <hex> granted with TTL(Ns)`.
#[track_caller]
pub fn lease_id(grant_stdout: &str) -> String {
    let mut it = grant_stdout.split_whitespace();
    assert_eq!(
        it.next(),
        Some("lease"),
        "unexpected grant output {grant_stdout:?}"
    );
    let id = it.next().expect("lease id").to_string();
    assert!(
        id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "lease id not %016x: {grant_stdout:?}"
    );
    id
}

/// Polls `f` until it returns `Some` or `timeout` passes.
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
