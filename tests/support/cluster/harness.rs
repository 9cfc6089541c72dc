//! Process harness: members of a multi-member cluster as child processes.
//!
//! Owns the [`Node`] process guard (start, readiness, kill -9, restart, log tail, killed on
//! drop), and [`Cluster`] (start N members with or without peer proxies, add members at run
//! time, find the leader, wait for catch-up, compare `hashkv`). Every URL
//! and security flag comes from [`super::security`]; binary lookup, ports outside the
//! ephemeral range and the process guard under [`Node`] come from [`crate::support`].

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::cluster_client::ClusterClient;
use kvd::proto::etcdserverpb::{MemberAddRequest, MemberListRequest};
use tonic::transport::Channel;

use super::client;
use super::proxy::Net;
use super::security;
use crate::support::logged_process::{last_lines, LoggedProcess};
use crate::support::temp::temp_dir;

pub use crate::support::bins::{etcd_bin, kvd_bin};
pub use crate::support::ports::stable_port;

/// How long a member may take to become ready after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll interval of every wait loop.
pub const POLL: Duration = Duration::from_millis(50);

/// True when the server under test is kvd (not etcd through `KVD_BIN`): for checks of
/// kvd's own log lines.
pub fn testing_kvd() -> bool {
    kvd_bin() != etcd_bin()
}

/// One member's network identity.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `--name`.
    pub name: String,
    /// Client port on 127.0.0.1.
    pub client_port: u16,
    /// Port the member's peer listener binds.
    pub peer_port: u16,
    /// Port in the member's advertised peer URL (its proxy's, or `peer_port` without one).
    pub advertised_peer_port: u16,
    /// Scheme of the member's peer URLs (`http` or `https`).
    pub peer_scheme: &'static str,
}

impl Spec {
    /// `127.0.0.1:CLIENT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The client URL.
    pub fn client_url(&self) -> String {
        format!("{}://{}", security::client_scheme(), self.endpoint())
    }

    /// The peer URL other members use (`--initial-advertise-peer-urls`).
    pub fn peer_url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.peer_scheme, self.advertised_peer_port
        )
    }

    /// The peer URL the member listens on.
    pub fn listen_peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.peer_scheme, self.peer_port)
    }
}

/// A member announced with `member add` but not started yet.
pub struct Announced {
    /// Its name and ports.
    pub spec: Spec,
    /// Its `--initial-cluster`.
    pub initial: String,
    /// The member ID the cluster gave it.
    pub id: u64,
    /// Announced as a learner.
    pub learner: bool,
}

/// One member process with its own temp dir; SIGKILLed on drop.
pub struct Node {
    /// Name and ports.
    pub spec: Spec,
    /// Raft member ID (learned from `Status` once ready; 0 before).
    pub id: u64,
    /// Started as a learner (readiness then cannot use a linearizable read).
    pub learner: bool,
    index: usize,
    /// Holds the data dir and the log; kept only so that it is removed with the node.
    _dir: tempfile::TempDir,
    process: LoggedProcess,
    net: Option<Arc<Net>>,
    data_dir: PathBuf,
}

impl Node {
    /// Starts member `spec` of `initial_cluster` without waiting for it.
    pub fn spawn(
        index: usize,
        bin: &std::path::Path,
        spec: Spec,
        initial_cluster: &str,
        state: &str,
        extra: &[String],
        net: Option<Arc<Net>>,
    ) -> Node {
        Node::spawn_in(index, bin, spec, initial_cluster, state, extra, net, None)
    }

    /// [`Node::spawn`] with the data dir at `data_dir` instead of inside the member's temp
    /// dir (e.g. on a small file system).
    #[allow(clippy::too_many_arguments)]
    pub fn spawn_in(
        index: usize,
        bin: &std::path::Path,
        spec: Spec,
        initial_cluster: &str,
        state: &str,
        extra: &[String],
        net: Option<Arc<Net>>,
        data_dir: Option<PathBuf>,
    ) -> Node {
        let dir = temp_dir("kvd-cluster-");
        let data_dir = data_dir.unwrap_or_else(|| dir.path().join("data"));
        let mut args: Vec<String> = vec![
            "--name".into(),
            spec.name.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen-client-urls".into(),
            spec.client_url(),
            "--advertise-client-urls".into(),
            spec.client_url(),
            "--listen-peer-urls".into(),
            spec.listen_peer_url(),
            "--initial-advertise-peer-urls".into(),
            spec.peer_url(),
            "--initial-cluster".into(),
            initial_cluster.into(),
            "--initial-cluster-state".into(),
            state.into(),
        ];
        args.extend(extra.iter().cloned());
        args.extend(security::member_flags(dir.path(), &spec.name));
        let log = dir.path().join("server.log");
        // crash points are armed per start (`Node::launch_armed`), never inherited
        let process =
            LoggedProcess::new(&spec.name, bin, args, dir.path(), log).without_env("FAILPOINTS");
        let mut n = Node {
            spec,
            id: 0,
            learner: false,
            index,
            _dir: dir,
            process,
            net,
            data_dir,
        };
        n.launch();
        n
    }

    /// Starts the process again (same flags and data dir) without waiting for readiness.
    pub fn launch(&mut self) {
        self.launch_with(&[]);
    }

    fn launch_with(&mut self, extra: &[&str]) {
        self.launch_env(extra, &[]);
    }

    fn launch_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        let pid = self.process.launch_with_env(extra, env);
        if let Some(net) = &self.net {
            net.register(pid, self.index);
        }
    }

    /// Starts the process again with the crash points `failpoints` (the `FAILPOINTS` syntax
    /// of src/failpoints.rs) armed for this run only, without waiting: it may die at one of
    /// them before it is ready.
    pub fn launch_armed(&mut self, failpoints: &str) {
        self.launch_env(&[], &[("FAILPOINTS", failpoints)]);
    }

    /// The data dir (`--data-dir`).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The pid of the running process, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// True while a started process has not been seen to exit or been stopped.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// The exit status if the process exited by itself since the last look (it then no
    /// longer counts as running).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let pid = self.process.pid();
        let st = self.process.exited();
        if let (Some(pid), Some(_), Some(net)) = (pid, &st, &self.net) {
            net.unregister(pid);
        }
        st
    }

    fn signal(&self, sig: i32) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.spec.name));
        let pid = i32::try_from(pid).expect("pid fits i32");
        // SAFETY: kill only sends a signal to our own child process.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) for {}", self.spec.name);
    }

    /// SIGSTOP: the process freezes (its sockets stay open, nothing answers).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGTERM (a clean shutdown), SIGKILL if it has not exited after `grace`; the exit
    /// status, if a process ran.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let pid = self.pid();
        let st = self.process.stop(crate::support::process::Timing {
            poll: POLL,
            term_grace: grace,
        });
        if let (Some(pid), Some(net)) = (pid, &self.net) {
            net.unregister(pid);
        }
        st.and_then(Result::ok)
    }

    /// `127.0.0.1:CLIENT`.
    pub fn endpoint(&self) -> String {
        self.spec.endpoint()
    }

    /// A lazily connecting gRPC channel to this member's client listener.
    pub fn channel(&self) -> Channel {
        security::endpoint(&self.endpoint()).connect_lazy()
    }

    /// SIGKILL (no clean shutdown) and reap.
    pub fn kill9(&mut self) {
        if let Some(pid) = self.process.kill() {
            if let Some(net) = &self.net {
                net.unregister(pid);
            }
        }
    }

    /// Waits until the process exits by itself; its status, or `None` after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.process.is_running() {
                return None;
            }
            if let Some(st) = self.process.exited() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts the same binary again with the same flags and data dir and waits until ready.
    pub async fn restart(&mut self) {
        self.launch();
        self.wait_ready(READY_TIMEOUT).await;
    }

    /// Changes the value given to `flag` for the following starts (panics if the member was
    /// not started with it).
    pub fn set_flag(&mut self, flag: &str, value: &str) {
        let args = self.process.args_mut();
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{} was started without {flag}", self.spec.name));
        args[at + 1] = value.to_string();
    }

    /// [`Node::restart`] with `extra` flags for this run only.
    pub async fn restart_with(&mut self, extra: &[&str]) {
        self.launch_with(extra);
        self.wait_ready(READY_TIMEOUT).await;
    }

    /// Waits until the member answers like `etcdctl endpoint health` expects (a linearizable
    /// read; a learner, which refuses those, only needs to answer `Status`); panics with the
    /// log tail after `timeout` or if the process exits.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let ch = self.channel();
        let mut last;
        loop {
            if let Some(st) = self.process.exited() {
                panic!(
                    "{} exited during startup ({st}); log tail:\n{}",
                    self.spec.name,
                    self.log_tail(40)
                );
            }
            let ready = if self.learner {
                client::status(&ch).await.map(|_| ())
            } else {
                client::get(&ch, "health", false).await.map(|_| ())
            };
            match ready {
                Ok(()) => break,
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} not ready within {timeout:?} (last error: {last}); log tail:\n{}",
                    self.spec.name,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(POLL).await;
        }
        if let Ok(st) = client::status(&ch).await {
            self.id = st.header.map_or(0, |h| h.member_id);
        }
    }

    /// The whole log the member wrote so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// The last `n` lines of the member's log, without backtrace frames (so a panic message
    /// stays in view when `RUST_BACKTRACE` is set).
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines = text.lines().filter(|l| {
            let t = l.trim_start();
            let frame = t
                .split_once(": ")
                .is_some_and(|(num, _)| !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()));
            !(l.starts_with(' ') && (frame || t.starts_with("at ")))
        });
        last_lines(lines, n)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOpts {
    /// Server binary (kvd or etcd).
    pub bin: PathBuf,
    /// Number of members.
    pub size: usize,
    /// Put a [`Net`] proxy in front of every peer listener.
    pub proxied: bool,
    /// Flags every member gets (timing, snapshot count, ...).
    pub flags: Vec<String>,
    /// Scheme of the peer URLs ([`security::peer_scheme`] unless a test overrides it).
    pub peer_scheme: &'static str,
    /// Where the members' data dirs go (`ROOT/NAME`); `None`: in each member's temp dir.
    pub data_root: Option<PathBuf>,
}

impl ClusterOpts {
    /// `size` kvd members with etcd's default timing (heartbeat 100 ms, election 1 s).
    pub fn kvd(size: usize) -> ClusterOpts {
        ClusterOpts {
            bin: kvd_bin(),
            size,
            proxied: false,
            flags: timing_flags(),
            peer_scheme: security::peer_scheme(),
            data_root: None,
        }
    }

    /// Adds member flags.
    pub fn flags(mut self, flags: &[&str]) -> ClusterOpts {
        self.flags.extend(flags.iter().map(|s| s.to_string()));
        self
    }
}

/// Heartbeat interval in milliseconds.
pub const HEARTBEAT_MS: u64 = 100;
/// Election timeout in milliseconds.
pub const ELECTION_MS: u64 = 1000;

fn timing_flags() -> Vec<String> {
    vec![
        "--heartbeat-interval".into(),
        HEARTBEAT_MS.to_string(),
        "--election-timeout".into(),
        ELECTION_MS.to_string(),
    ]
}

/// A running cluster; every member is killed on drop (and the proxies closed after them).
pub struct Cluster {
    /// Members in start order (`m1`, `m2`, ...), then members added later.
    pub nodes: Vec<Node>,
    /// The proxies, when started with `proxied`.
    pub net: Option<Arc<Net>>,
    opts: ClusterOpts,
    token: String,
}

impl Cluster {
    /// Starts `opts.size` members and waits until every one is ready.
    pub async fn start(opts: ClusterOpts) -> Cluster {
        let net = opts.proxied.then(|| Arc::new(Net::new()));
        let specs: Vec<Spec> = (0..opts.size)
            .map(|i| {
                let peer_port = stable_port();
                let advertised_peer_port = match &net {
                    Some(n) => n.add_proxy(i, peer_port),
                    None => peer_port,
                };
                Spec {
                    name: format!("m{}", i + 1),
                    client_port: stable_port(),
                    peer_port,
                    advertised_peer_port,
                    peer_scheme: opts.peer_scheme,
                }
            })
            .collect();
        let initial = specs
            .iter()
            .map(|s| format!("{}={}", s.name, s.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("kvd-cluster-{}", stable_port());
        let mut flags = opts.flags.clone();
        flags.extend(["--initial-cluster-token".to_string(), token.clone()]);
        let mut nodes: Vec<Node> = specs
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let data = opts.data_root.as_ref().map(|r| r.join(&s.name));
                Node::spawn_in(i, &opts.bin, s, &initial, "new", &flags, net.clone(), data)
            })
            .collect();
        for n in &mut nodes {
            n.wait_ready(READY_TIMEOUT).await;
        }
        Cluster {
            nodes,
            net,
            opts,
            token,
        }
    }

    /// The options the cluster was started with.
    pub fn opts(&self) -> &ClusterOpts {
        &self.opts
    }

    /// Announces a new member through member `via` (`member add [--learner]`), starts it with
    /// `--initial-cluster-state existing` and waits until it is ready; returns its index.
    pub async fn add_member(&mut self, name: &str, learner: bool, via: usize) -> usize {
        let announced = self.announce_member(name, learner, via).await;
        self.start_announced(announced).await
    }

    /// `member add [--learner]` through member `via`, without starting the member. Behind
    /// proxies, its proxy is started now (it is the next member index: start it before
    /// announcing another one).
    pub async fn announce_member(&mut self, name: &str, learner: bool, via: usize) -> Announced {
        let index = self.nodes.len();
        let peer_port = stable_port();
        let advertised_peer_port = match &self.net {
            Some(n) => n.add_proxy(index, peer_port),
            None => peer_port,
        };
        let spec = Spec {
            name: name.to_string(),
            client_port: stable_port(),
            peer_port,
            advertised_peer_port,
            peer_scheme: self.opts.peer_scheme,
        };
        let mut cc = ClusterClient::new(self.nodes[via].channel());
        // etcd refuses with "unhealthy cluster" until every member has been connected for
        // 5 s (its strict reconfiguration check); retry that within the deadline
        let deadline = Instant::now() + READY_TIMEOUT;
        let resp = loop {
            let r = client::within(
                client::OP_TIMEOUT,
                cc.member_add(MemberAddRequest {
                    peer_ur_ls: vec![spec.peer_url()],
                    is_learner: learner,
                }),
            )
            .await;
            match r {
                Ok(r) => break r.into_inner(),
                Err(e)
                    if e.message() == "etcdserver: unhealthy cluster"
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("member add {name}: {e}"),
            }
        };
        let added = resp.member.expect("member add returns the member");
        let initial = resp
            .members
            .iter()
            .map(|m| {
                let n = if m.id == added.id { name } else { &m.name };
                format!("{n}={}", m.peer_ur_ls.join(&format!(",{n}=")))
            })
            .collect::<Vec<_>>()
            .join(",");
        Announced {
            spec,
            initial,
            id: added.id,
            learner,
        }
    }

    /// Starts an announced member and waits until it is ready; returns its index.
    pub async fn start_announced(&mut self, announced: Announced) -> usize {
        let index = self.nodes.len();
        let mut flags = self.opts.flags.clone();
        flags.extend(["--initial-cluster-token".to_string(), self.token.clone()]);
        let data = self
            .opts
            .data_root
            .as_ref()
            .map(|r| r.join(&announced.spec.name));
        let mut node = Node::spawn_in(
            index,
            &self.opts.bin,
            announced.spec,
            &announced.initial,
            "existing",
            &flags,
            self.net.clone(),
            data,
        );
        node.learner = announced.learner;
        node.wait_ready(READY_TIMEOUT).await;
        assert_eq!(
            node.id, announced.id,
            "the new member runs under the announced ID"
        );
        self.nodes.push(node);
        index
    }

    /// Removes member `index` from the cluster through member `via` (`member remove`), then
    /// kills its process; it stays in [`Cluster::nodes`] (indices do not move) but is down.
    /// etcd's "unhealthy cluster" refusal (a member recently unreachable) is retried.
    pub async fn remove_member(&mut self, index: usize, via: usize) {
        let id = self.nodes[index].id;
        assert_ne!(
            id, 0,
            "{} has no known member ID",
            self.nodes[index].spec.name
        );
        let mut cc = ClusterClient::new(self.nodes[via].channel());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let r = client::within(
                client::OP_TIMEOUT,
                cc.member_remove(kvd::proto::etcdserverpb::MemberRemoveRequest { id }),
            )
            .await;
            match r {
                Ok(_) => break,
                // an earlier attempt that timed out was applied after all
                Err(e) if e.message() == "etcdserver: member not found" => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!(
                        "member remove {} via {}: {e}; retrying",
                        self.nodes[index].spec.name, self.nodes[via].spec.name
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("member remove {}: {e}", self.nodes[index].spec.name),
            }
        }
        self.nodes[index].kill9();
    }

    /// The member list as member `via` reports it.
    pub async fn member_list(&self, via: usize) -> Vec<kvd::proto::etcdserverpb::Member> {
        let mut cc = ClusterClient::new(self.nodes[via].channel());
        client::within(client::OP_TIMEOUT, cc.member_list(MemberListRequest {}))
            .await
            .unwrap_or_else(|e| panic!("member list via {}: {e}", self.nodes[via].spec.name))
            .into_inner()
            .members
    }

    /// Panics (with the log tail) if a member at `idx` exited by itself.
    pub fn assert_alive(&mut self, idx: &[usize]) {
        for &i in idx {
            let n = &mut self.nodes[i];
            if let Some(st) = n.process.exited() {
                panic!(
                    "{} exited by itself ({st}); log tail:\n{}",
                    n.spec.name,
                    n.log_tail(20)
                );
            }
        }
    }

    /// Index of the member with raft ID `id`.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// Waits until the members at `among` agree on one leader that is one of them, and no
    /// member still believes in `not`; returns the leader's index.
    pub async fn wait_leader(&self, among: &[usize], not: Option<u64>, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let channels: Vec<Channel> = among.iter().map(|&i| self.nodes[i].channel()).collect();
        loop {
            let mut seen = Vec::new();
            for ch in &channels {
                seen.push(client::status(ch).await.map(|s| s.leader));
            }
            if let Some(Ok(l)) = seen.first() {
                let agreed = seen.iter().all(|s| s.as_ref().ok() == Some(l));
                if agreed && *l != 0 && Some(*l) != not {
                    if let Some(i) = self.index_of(*l) {
                        if among.contains(&i) {
                            return i;
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                panic!("no agreed leader among {among:?} within {timeout:?}; saw {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until member `i` has applied revision `rev` (serializable reads show it).
    pub async fn wait_revision(&self, i: usize, rev: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let ch = self.nodes[i].channel();
        let mut last;
        loop {
            match client::get(&ch, "__probe__", true).await {
                Ok(r) if r.revision >= rev => return,
                Ok(r) => last = format!("at revision {}", r.revision),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not reach revision {rev} within {timeout:?} ({last}); log tail:\n{}",
                    self.nodes[i].spec.name,
                    self.nodes[i].log_tail(30)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Current revision as member `i` serves it linearizably.
    pub async fn revision(&self, i: usize) -> i64 {
        client::get(&self.nodes[i].channel(), "__probe__", false)
            .await
            .unwrap_or_else(|e| panic!("read on {}: {e}", self.nodes[i].spec.name))
            .revision
    }

    /// Waits until every member at `members` has applied the current revision, then asserts
    /// that `hashkv` at that revision is equal on all of them; returns (revision, hash).
    pub async fn assert_hashes_agree(&self, members: &[usize], timeout: Duration) -> (i64, u32) {
        let rev = self.revision(members[0]).await;
        for &i in members {
            self.wait_revision(i, rev, timeout).await;
        }
        let mut hashes = Vec::new();
        for &i in members {
            let h = client::hash_kv(&self.nodes[i].channel(), rev)
                .await
                .unwrap_or_else(|e| panic!("hashkv on {}: {e}", self.nodes[i].spec.name));
            hashes.push((self.nodes[i].spec.name.clone(), h.hash, h.compact_revision));
        }
        assert!(
            hashes
                .iter()
                .all(|h| (h.1, h.2) == (hashes[0].1, hashes[0].2)),
            "hashkv at revision {rev} differs: {hashes:?}"
        );
        (rev, hashes[0].1)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for n in &mut self.nodes {
            let state = match n.process.try_wait() {
                Some(Ok(None)) => "running".to_string(),
                Some(Ok(Some(st))) => format!("exited: {st}"),
                Some(Err(e)) => format!("unknown: {e}"),
                None => "not running".to_string(),
            };
            eprintln!(
                "---- {} ({state}), last log lines:\n{}",
                n.spec.name,
                n.log_tail(25)
            );
        }
    }
}
