//! Process harness for the snapshot suite.
//!
//! Owns what the tests need to run real etcd 3.4, kvd, `etcdctl` and `kvd snapshot`: binary
//! lookup, free loopback ports, the [`Server`] process guard (start on a fresh or prepared data
//! dir, readiness, SIGTERM/SIGKILL on drop, log tail on panic), the [`Cluster`] guard, one-shot
//! `etcdctl`/`kvd` runs bounded by a timeout ([`Ctl`], [`kvd_cli`]) and `-w json` helpers.

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

/// How long a server may take to answer `endpoint health` after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound on one `etcdctl` or `kvd snapshot` invocation.
pub const CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// etcdctl's own `--command-timeout`: generous, as two cores are shared by several servers
/// and by bcrypt checks (one per authenticated etcdctl run).
const COMMAND_TIMEOUT: &str = "20s";
/// etcdctl's own `--dial-timeout` (its default is 2 s).
const DIAL_TIMEOUT: &str = "20s";
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

/// The server under test: `KVD_BIN` if set, else the `kvd` binary cargo built for this package.
pub fn kvd_bin() -> PathBuf {
    std::env::var_os("KVD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kvd")))
}

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
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
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
fn terminate(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if wait_timeout(child, TERM_GRACE).is_some() {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
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

    /// `NAME=http://127.0.0.1:PEER`, one entry of `--initial-cluster`.
    pub fn cluster_entry(&self) -> String {
        format!("{}={}", self.name, self.peer_url())
    }
}

/// `--initial-cluster` for `members`.
pub fn initial_cluster(members: &[Member]) -> String {
    members
        .iter()
        .map(Member::cluster_entry)
        .collect::<Vec<_>>()
        .join(",")
}

/// A fresh temp dir (a server's `data/` and `server.log`, snapshot files, ...).
pub fn new_temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kvd-snap-")
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
    user: String,
}

impl Server {
    /// Starts a single-member server from `bin` on a fresh data dir and waits until healthy.
    pub fn start(bin: &Path) -> Server {
        let member = Member::new("m1");
        let cluster = member.cluster_entry();
        let mut s = Server::spawn_in(new_temp_dir(), bin, member, &cluster, "kvd-snap", "");
        s.wait_ready();
        s
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
        let data_dir = dir.path().join("data");
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = member.peer_url();
        let args: Vec<String> = vec![
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
        let log = dir.path().join("server.log");
        let mut s = Server {
            bin: bin.to_path_buf(),
            dir,
            member,
            args,
            child: None,
            log,
            user: user.to_string(),
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(&self.bin)
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// Stops the server (SIGTERM, SIGKILL after a grace period), starts it again with the same
    /// flags and data dir, and waits until healthy.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
        self.launch();
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
                .user(&self.user)
                .args(&["endpoint", "health"])
                .command_timeout("3s")
                .dial_timeout("3s")
                .timeout(Duration::from_secs(10))
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

    /// The last `n` lines the server wrote to stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
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
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
        if thread::panicking() {
            eprintln!(
                "---- last 50 log lines of {} ({}, in {}) ----\n{}\n---- end of log ----",
                self.bin.display(),
                self.endpoint(),
                self.dir.path().display(),
                self.log_tail(50)
            );
        }
    }
}

/// What one finished `etcdctl` or `kvd` run produced.
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

    /// stderr without etcdctl's JSON (zap) log lines and blank lines.
    pub fn err_lines(&self) -> Vec<String> {
        self.stderr
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('{'))
            .map(str::to_string)
            .collect()
    }

    /// The user-facing result of a run: stdout when it succeeded, else the filtered stderr.
    pub fn shown(&self) -> String {
        if self.status == 0 {
            self.stdout.clone()
        } else {
            format!("exit {}: {}", self.status, self.err_lines().join("\n"))
        }
    }

    /// Parses stdout as JSON (panics with the text if it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("`{}`: stdout is not JSON ({e}): {}", self.cmd, self.stdout))
    }
}

/// Runs `program args` to completion (or `timeout`, then SIGKILL and status 124).
fn run_process(mut cmd: Command, display: String, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{display}`: {e}"));
    let out_r = read_all(child.stdout.take().expect("piped stdout"));
    let err_r = read_all(child.stderr.take().expect("piped stderr"));
    let status = match wait_timeout(&mut child, timeout) {
        Some(st) => exit_code(st),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            124
        }
    };
    let stdout = out_r.join().unwrap_or_default();
    let mut stderr = err_r.join().unwrap_or_default();
    if status == 124 {
        stderr.push_str(&format!("\n[harness: killed after {timeout:?}]"));
    }
    Output {
        status,
        stdout,
        stderr,
        cmd: display,
    }
}

fn read_all<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `kvd args` (e.g. `snapshot status FILE`) to completion.
pub fn kvd_cli(args: &[&str]) -> Output {
    let mut c = Command::new(kvd_bin());
    c.args(args);
    run_process(c, format!("kvd {}", args.join(" ")), CTL_TIMEOUT)
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
        let o = run_process(c, display, self.timeout);
        if std::env::var_os("SNAP_TRACE").is_some() {
            eprintln!("TRACE {:?} {}", t0.elapsed(), o.cmd);
        }
        o
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

/// `kvs` of a `get -w json` response.
pub fn kvs(v: &Value) -> Vec<Kv> {
    let arr = match v.get("kvs") {
        Some(Value::Array(a)) => a.clone(),
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

/// `header.revision` of a `-w json` response.
pub fn header_revision(v: &Value) -> i64 {
    v.get("header")
        .and_then(|h| h.get("revision"))
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no header.revision in {v}"))
}

/// `header.cluster_id` of a `-w json` response.
pub fn header_cluster_id(v: &Value) -> u64 {
    v.get("header")
        .and_then(|h| h.get("cluster_id"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no header.cluster_id in {v}"))
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
