//! Transcripts and the differential runner.
//!
//! A [`Transcript`] records what a scenario did (each `etcdctl` command, its exit code,
//! stdout and user-facing stderr, plus free-form notes such as collected watch output).
//! [`differential`] runs one scenario on a fresh real etcd and on a fresh server under
//! test (concurrently, each with its own data dir and ports) and asserts that the
//! normalised transcripts are equal, printing a line diff otherwise. Scenarios also make
//! absolute assertions, so a behaviour both servers get wrong still fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{etcd_bin, kvd_bin, user_stderr, Ctl, Output, Server};
use crate::normalize::{normalize, Ids};

/// One recorded step.
#[derive(Clone, Debug)]
enum Step {
    Cmd {
        cmd: String,
        status: i32,
        stdout: String,
        stderr: Vec<String>,
        sort: bool,
    },
    Note {
        label: String,
        text: String,
    },
}

/// What a scenario did on one server, normalised when rendered.
pub struct Transcript {
    etcdctl: PathBuf,
    endpoint: String,
    dir: PathBuf,
    ids: Ids,
    steps: Vec<Step>,
}

impl Transcript {
    /// A transcript against `server`; registers its member and cluster ids as placeholders.
    pub fn new(server: &Server) -> Transcript {
        Transcript::with_etcdctl(server, &crate::harness::etcdctl_bin())
    }

    /// A transcript against `server` whose commands run `etcdctl` (e.g. etcd 3.5.1's).
    pub fn with_etcdctl(server: &Server, etcdctl: &Path) -> Transcript {
        let mut ids = Ids::default();
        // any response header names the member and the cluster; a range is the most basic
        let probe = server
            .ctl(&["get", "__transcript_probe__", "-w", "json"])
            .ok()
            .json();
        let header = &probe["header"];
        if let Some(m) = header["member_id"].as_u64() {
            ids.add(m, "member");
        }
        if let Some(c) = header["cluster_id"].as_u64() {
            ids.add(c, "cluster");
        }
        Transcript {
            etcdctl: etcdctl.to_path_buf(),
            endpoint: server.endpoint(),
            dir: server.dir().to_path_buf(),
            ids,
            steps: Vec::new(),
        }
    }

    /// Runs `etcdctl args` and records it.
    pub fn run(&mut self, args: &[&str]) -> Output {
        let out = self.ctl().args(args).run();
        self.record(out)
    }

    /// An `etcdctl` invocation (of this transcript's binary) against the server, not recorded.
    pub fn ctl(&self) -> Ctl {
        Ctl::new(&self.endpoint).bin(&self.etcdctl)
    }

    /// Runs `etcdctl args` with `stdin` and records it.
    pub fn run_stdin(&mut self, args: &[&str], stdin: &str) -> Output {
        let out = self.ctl().args(args).stdin(stdin.as_bytes()).run();
        let mut rec = out.clone();
        rec.cmd = if stdin.len() > 200 {
            format!("{} <<< <{} bytes>", out.cmd, stdin.len())
        } else {
            format!("{} <<< {stdin:?}", out.cmd)
        };
        self.record(rec);
        out
    }

    /// Runs and records, asserting exit 0.
    #[track_caller]
    pub fn ok(&mut self, args: &[&str]) -> Output {
        self.run(args).ok()
    }

    /// Records an already finished command.
    pub fn record(&mut self, out: Output) -> Output {
        self.push(out, false)
    }

    /// Runs `etcdctl args` and records it with its stdout lines sorted after
    /// normalisation (for output whose order etcd does not define, e.g. `lease list`).
    pub fn run_unordered(&mut self, args: &[&str]) -> Output {
        let out = self.ctl().args(args).run();
        self.push(out, true)
    }

    fn push(&mut self, out: Output, sort: bool) -> Output {
        self.learn_ids(&out.stdout);
        self.steps.push(Step::Cmd {
            cmd: out.cmd.clone(),
            status: out.status,
            stdout: out.stdout.clone(),
            stderr: user_stderr(&out.stderr),
            sort,
        });
        out
    }

    /// Records free text (e.g. lines a watcher printed).
    pub fn note(&mut self, label: &str, text: &str) {
        self.steps.push(Step::Note {
            label: label.to_string(),
            text: text.to_string(),
        });
    }

    /// Learns lease ids from grant output (text or JSON).
    fn learn_ids(&mut self, stdout: &str) {
        for line in stdout.lines() {
            if let Some(rest) = line.strip_prefix("lease ") {
                if let Some((hex, tail)) = rest.split_once(' ') {
                    if tail.starts_with("granted with TTL(") {
                        if let Ok(id) = u64::from_str_radix(hex, 16) {
                            self.ids.add(id, "lease");
                        }
                    }
                }
            }
            if line.starts_with('{') {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    if v.get("TTL").is_some() && v.get("Error").is_some() {
                        if let Some(id) = v["ID"].as_u64() {
                            self.ids.add(id, "lease");
                        }
                    }
                }
            }
        }
    }

    /// The normalised text compared between servers.
    pub fn render(&self) -> String {
        let dir = self.dir.display().to_string();
        let mut s = String::new();
        for step in &self.steps {
            match step {
                Step::Cmd {
                    cmd,
                    status,
                    stdout,
                    stderr,
                    sort,
                } => {
                    let cmd = cmd.replace(&dir, "<dir>");
                    let _ = writeln!(s, "$ {}", normalize(&cmd, &self.ids));
                    let mut out = normalize(&stdout.replace(&dir, "<dir>"), &self.ids);
                    if *sort {
                        let mut lines: Vec<&str> = out.lines().collect();
                        lines.sort_unstable();
                        out = lines.join("\n");
                    }
                    if !out.is_empty() {
                        let _ = writeln!(s, "{out}");
                    }
                    for l in stderr {
                        let l = normalize(&l.replace(&dir, "<dir>"), &self.ids);
                        let _ = writeln!(s, "stderr: {l}");
                    }
                    let _ = writeln!(s, "exit {status}");
                }
                Step::Note { label, text } => {
                    let _ = writeln!(s, "# {label}");
                    let t = normalize(&text.replace(&dir, "<dir>"), &self.ids);
                    if !t.is_empty() {
                        let _ = writeln!(s, "{t}");
                    }
                }
            }
        }
        s
    }
}

/// Runs `scenario` on real etcd and on the server under test, both with default flags.
/// With `KVD_E2E_SHOW=1` the normalised reference transcript is printed.
pub fn differential(scenario: fn(&Server) -> Transcript) {
    differential_with(&[], scenario);
}

/// Like [`differential`], starting both servers with `extra` flags.
pub fn differential_with(extra: &[&str], scenario: fn(&Server) -> Transcript) {
    differential_against(&etcd_bin(), extra, scenario);
}

/// Like [`differential_with`], with `reference` (e.g. etcd 3.5.1) as the real etcd.
pub fn differential_against(reference: &Path, extra: &[&str], scenario: fn(&Server) -> Transcript) {
    let _g = crate::harness::shared();
    let (reference, tested) = thread::scope(|sc| {
        let side = |name: &str, bin: PathBuf| {
            thread::Builder::new()
                .name(name.to_string())
                .spawn_scoped(sc, move || {
                    let server = Server::start(&bin, extra);
                    scenario(&server).render()
                })
                .expect("spawn scenario thread")
        };
        let a = side("etcd-reference", reference.to_path_buf());
        // Stagger the second start a little so both servers do not fsync their first
        // entries at the very same moment on a 2-core machine; not a synchronisation.
        thread::sleep(Duration::from_millis(200));
        let b = side("server-under-test", kvd_bin());
        (a.join(), b.join())
    });
    let reference =
        reference.unwrap_or_else(|_| panic!("scenario failed on real etcd (see above)"));
    let tested =
        tested.unwrap_or_else(|_| panic!("scenario failed on the server under test (see above)"));
    if std::env::var_os("KVD_E2E_SHOW").is_some() {
        eprintln!("---- normalised transcript (real etcd) ----\n{reference}---- end ----");
    }
    if reference != tested {
        panic!(
            "transcripts differ (- real etcd, + server under test):\n{}",
            line_diff(&reference, &tested)
        );
    }
}

/// A unified-style line diff (LCS), with context lines prefixed by two spaces.
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        }
    }
    out
}
