//! Process harness for the operator suite: a server process ([`Node`]) with its stdout and
//! stderr in separate files, started with any flags or a configuration file, ready once an
//! HTTP endpoint answers; HTTP through the real `curl` ([`http`]); etcdctl runs ([`ctl`]).
//! Every process is killed (by its pid) when its guard is dropped, also on panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::output::Output;
use crate::support::process::{exit_code, kill_and_reap, terminate, wait_timeout, Timing};
use crate::support::temp::temp_dir;

pub use crate::support::bins::{etcd35_bin, etcdctl35_bin, etcdctl_bin, etcdutl35_bin, kvd_bin};
pub use crate::support::ports::free_port;

/// How long a server may take to answer after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll interval of every wait loop.
pub const POLL: Duration = Duration::from_millis(50);
const TIMING: Timing = Timing {
    poll: Duration::from_millis(20),
    term_grace: Duration::from_secs(5),
};

/// Returns early from a test when a tool it drives is not installed.
macro_rules! require_tool {
    ($path:expr) => {
        if !std::path::Path::new($path).is_file() {
            eprintln!("skipped: {} not installed", $path);
            return;
        }
    };
}

/// A server process with its own temp dir; stdout and stderr go to `stdout.log` and
/// `stderr.log` there. Killed on drop.
pub struct Node {
    bin: PathBuf,
    args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Node {
    /// A node of `bin` with `args` (not started); its temp dir exists already.
    pub fn new(bin: &Path, args: Vec<String>) -> Node {
        Node {
            bin: bin.to_path_buf(),
            args,
            dir: temp_dir("kvd-operator-"),
            child: None,
        }
    }

    /// The node's temp dir (for data dirs, configuration files, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The flags for the next start.
    pub fn args_mut(&mut self) -> &mut Vec<String> {
        &mut self.args
    }

    /// Starts the process (appending to its logs).
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(name))
                .expect("open log")
        };
        let child = Command::new(&self.bin)
            .args(&self.args)
            .current_dir(self.dir.path())
            .env_remove("ETCD_NAME")
            .stdin(Stdio::null())
            .stdout(open("stdout.log"))
            .stderr(open("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// Waits until `probe` succeeds; panics with the log if the process exits or the time is up.
    pub fn wait_until(&mut self, what: &str, mut probe: impl FnMut() -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "{} exited ({st}) while waiting for {what}:\n{}",
                    self.bin.display(),
                    self.stderr()
                );
            }
            if probe() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {what} within {READY_TIMEOUT:?}:\n{}",
                self.bin.display(),
                self.stderr()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the process to exit by itself; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let st = wait_timeout(child, timeout, TIMING.poll)?;
        self.child = None;
        Some(exit_code(st))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
    }

    /// SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = terminate(&mut c, TIMING);
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let err = self.stderr();
            let tail: Vec<&str> = err.lines().rev().take(40).collect();
            eprintln!(
                "---- last stderr lines of {} ----\n{}\n---- end ----",
                self.bin.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// One plain-http member on loopback: the flags of a one-member cluster (or of one member
/// of `cluster`, `name=peer,...`).
#[derive(Debug, Clone)]
pub struct Ports {
    /// `--name`.
    pub name: String,
    /// Client port.
    pub client: u16,
    /// Peer port.
    pub peer: u16,
}

impl Ports {
    /// Fresh ports for member `name`.
    pub fn new(name: &str) -> Ports {
        Ports {
            name: name.to_string(),
            client: free_port(),
            peer: free_port(),
        }
    }

    /// `127.0.0.1:CLIENT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client)
    }

    /// `http://127.0.0.1:CLIENT`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    /// `name=http://127.0.0.1:PEER`.
    pub fn cluster_entry(&self) -> String {
        format!("{}=http://127.0.0.1:{}", self.name, self.peer)
    }

    /// The flags of this member in `cluster` (its own entry when empty), data in `data`.
    pub fn flags(&self, data: &Path, cluster: &str) -> Vec<String> {
        let cluster = if cluster.is_empty() {
            self.cluster_entry()
        } else {
            cluster.to_string()
        };
        let peer = format!("http://127.0.0.1:{}", self.peer);
        [
            "--name",
            &self.name,
            "--data-dir",
            &data.display().to_string(),
            "--listen-client-urls",
            &self.client_url(),
            "--advertise-client-urls",
            &self.client_url(),
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &cluster,
            "--initial-cluster-token",
            "kvd-operator",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// Starts a one-member server of `bin` with `extra` flags and waits until `/health` answers
/// on its client URL (or on `ready_url` when given).
pub fn start(bin: &Path, extra: &[&str]) -> (Node, Ports) {
    let ports = Ports::new("m1");
    let mut node = Node::new(bin, Vec::new());
    let mut args = ports.flags(&node.dir().join("data"), "");
    args.extend(extra.iter().map(|s| s.to_string()));
    *node.args_mut() = args;
    node.launch();
    let url = format!("{}/health", ports.client_url());
    node.wait_until("a healthy /health", || http(&url, &[]).status == 200);
    (node, ports)
}

/// What an HTTP request answered.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code (0 when no HTTP answer came).
    pub status: u16,
    /// Response headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// curl's stderr (why no answer came).
    pub error: String,
}

impl Reply {
    /// A response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `curl` of `url` with `extra` arguments (method, TLS files, ...), bounded by 30 s.
pub fn http(url: &str, extra: &[&str]) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "25"])
        .args(extra)
        .arg(url);
    let out = crate::support::bounded_run::BoundedRun::new(
        cmd,
        format!("curl {url}"),
        Duration::from_secs(30),
        Duration::from_millis(20),
    )
    .output();
    parse_reply(&out)
}

fn parse_reply(out: &Output) -> Reply {
    let text = out.stdout.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
        error: out.stderr.clone(),
    }
}

/// Runs `bin` (an etcdctl) with `args` against `endpoints`, bounded by `timeout`.
pub fn ctl(bin: &Path, endpoints: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.env("ETCDCTL_API", "3")
        .env_remove("ETCDCTL_ENDPOINTS")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=10s")
        .args(args);
    crate::support::bounded_run::BoundedRun::new(
        cmd,
        format!("etcdctl {}", args.join(" ")),
        Duration::from_secs(60),
        Duration::from_millis(20),
    )
    .output()
}

/// Polls `f` every [`POLL`] until it returns `Some`, at most `timeout`.
pub fn eventually<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    crate::support::poll::eventually(timeout, f)
}
