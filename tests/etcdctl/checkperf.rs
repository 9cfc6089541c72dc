//! `etcdctl check perf`: the 60-second small load must PASS against the server under
//! test (throughput >= 150 writes/s, slowest request and stddev within etcdctl's limits),
//! and the pre-check refuses a prefix that already has keys.

use std::time::Duration;

use crate::differential::{differential, Transcript};
use crate::harness::{Ctl, Server};

/// One `check perf --load=s` run: exit code and the verdict lines (stdout also carries
/// the progress bar).
fn check_perf(s: &Server) -> (i32, Vec<String>, Vec<String>) {
    let out = Ctl::new(&s.endpoint())
        .args(&["check", "perf", "--load=s"])
        .timeout(Duration::from_secs(180))
        .run();
    let lines: Vec<String> = out
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL") || l.contains("too"))
        .map(str::to_string)
        .collect();
    eprintln!("check perf: {}", lines.join(" | "));
    (out.status, lines, out.err_lines())
}

#[test]
fn check_perf_small_load_passes() {
    require_tools!();
    // alone in this suite: it measures the server, other tests would skew it
    let _g = crate::harness::exclusive();
    let s = Server::kvd(&[]);
    let (mut code, mut lines, mut err) = check_perf(&s);
    // A latency-only failure (slowest request > 0.5 s, stddev > 0.1 s, throughput) can
    // come from other processes on a shared 2-core machine; real etcd shows it there too.
    // Retry that once. Request errors ("FAIL: too many errors") are never retried.
    let latency_only = code != 0 && !lines.iter().any(|l| l.starts_with("FAIL: too many errors"));
    if latency_only {
        eprintln!("check perf: retrying once after a latency-only failure");
        (code, lines, err) = check_perf(&s);
    }
    assert_eq!(
        code,
        0,
        "check perf failed: {}\n{}",
        lines.join("\n"),
        err.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.starts_with("PASS: Throughput is ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PASS: Slowest request took ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("PASS: Stddev is ")),
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("PASS"), "{lines:?}");
    // check perf deletes its keys afterwards
    s.ctl(&["get", "/etcdctl-check-perf/", "--prefix", "--keys-only"])
        .prints("");
    assert!(
        s.revision() > 135 * 60,
        "check perf wrote fewer than 135 keys/s"
    );
}

#[test]
fn check_perf_refuses_prefix_with_keys() {
    require_tools!();
    differential(dirty_prefix_scenario);
}

fn dirty_prefix_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "/etcdctl-check-perf/x", "1"]);
    t.run(&["check", "perf", "--load=s"]).fails_with(
        3,
        "Error: prefix \"/etcdctl-check-perf/\" has keys. Delete with etcdctl del --prefix /etcdctl-check-perf/ first",
    );
    t.run(&["check", "perf", "--load=nope"]);
    assert_eq!(s.revision(), 2);
    t
}
