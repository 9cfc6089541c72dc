//! Error scenarios: empty keys, requests over `--max-request-bytes`, and the backend quota
//! (`--quota-backend-bytes`): NOSPACE alarm, what still works under it, and recovery by
//! compaction + defrag + alarm disarm. Txn op limits and duplicate keys live in txn.rs.

use crate::differential::{differential, differential_with, Transcript};
use crate::harness::Server;

const NOSPACE: &str = "Error: etcdserver: mvcc: database space exceeded";

#[test]
fn empty_key() {
    require_tools!();
    differential(empty_key_scenario);
}

fn empty_key_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let e = "Error: etcdserver: key is not provided";
    t.run(&["put", "", "x"]).fails_with(1, e);
    t.run(&["get", ""]).fails_with(1, e);
    t.run(&["del", ""]).fails_with(1, e);
    t.run(&["put", "", "--ignore-value"]).fails_with(1, e);
    // an empty key with --prefix/--from-key means "all keys"
    t.ok(&["put", "a", "1"]);
    t.ok(&["get", "", "--prefix"]).prints("a\n1\n");
    t.ok(&["get", "", "--from-key"]).prints("a\n1\n");
    assert_eq!(s.revision(), 2);
    t
}

#[test]
fn request_too_large() {
    require_tools!();
    differential_with(&["--max-request-bytes", "1024"], request_too_large_scenario);
}

fn request_too_large_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "small", &"v".repeat(900)]);
    t.run(&["put", "big", &"v".repeat(2000)])
        .fails_with(1, "Error: etcdserver: request is too large");
    t.run_stdin(&["put", "big2"], &"w".repeat(100_000))
        .fails_with(1, "Error: etcdserver: request is too large");
    // a txn whose ops add up to more than the limit
    let mut input = String::from("\n");
    for i in 0..3 {
        input.push_str(&format!("put t{i} {}\n", "x".repeat(500)));
    }
    input.push_str("\n\n");
    t.run_stdin(&["txn"], &input)
        .fails_with(1, "Error: etcdserver: request is too large");
    assert_eq!(s.revision(), 2);
    t.ok(&["get", "small", "--keys-only"]).prints("small\n\n");
    t
}

#[test]
fn grpc_message_over_limit() {
    require_tools!();
    differential_with(&["--max-request-bytes", "1024"], grpc_limit_scenario);
}

/// etcd's gRPC server accepts messages up to max-request-bytes + 512 KiB; beyond that
/// grpc-go itself rejects the message (ResourceExhausted) with its own text.
fn grpc_limit_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let out = t.run_stdin(&["put", "huge"], &"h".repeat(600_000));
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(
        out.err_lines(),
        ["Error: rpc error: code = ResourceExhausted desc = grpc: received message larger than max (600010 vs. 525312)"]
    );
    assert_eq!(s.revision(), 1);
    t
}

#[test]
fn quota_nospace_alarm_and_recovery() {
    require_tools!();
    differential_with(&["--quota-backend-bytes", "1048576"], quota_scenario);
}

/// Fills a 1 MiB backend with 100 kB values until a put fails. How many puts fit depends
/// on the storage engine, so the fill loop is not recorded; everything after it is.
fn quota_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let value = "q".repeat(100_000);
    let mut failed = None;
    for i in 0..60 {
        let out = s.ctl_stdin(&["put", &format!("fill/{i:02}")], value.as_bytes());
        if out.status != 0 {
            failed = Some(out);
            break;
        }
    }
    let out = failed.expect("60 puts of 100 kB fit in a 1 MiB quota");
    assert_eq!(out.err_lines(), [NOSPACE], "{out:?}");
    t.note("filled until", &out.err_lines().join("\n"));
    let rev = s.revision();
    // under the alarm: writes that grow the store fail, reads and deletes work
    t.run(&["put", "small", "x"]).fails_with(1, NOSPACE);
    t.run_stdin(&["txn"], "\nput small x\n\n\n")
        .fails_with(1, NOSPACE);
    t.run(&["lease", "grant", "60"]);
    let alarm = t.ok(&["alarm", "list"]).stdout;
    assert!(
        alarm.starts_with("memberID:") && alarm.ends_with(" alarm:NOSPACE \n"),
        "{alarm:?}"
    );
    t.ok(&["alarm", "list", "-w", "json"]);
    let st = t.ok(&["endpoint", "status"]).stdout;
    assert!(st.trim_end().ends_with("alarm:NOSPACE"), "{st}");
    t.ok(&["get", "fill/00", "--keys-only"])
        .prints("fill/00\n\n");
    let deleted = s.ctl(&["del", "fill/", "--prefix"]).ok().stdout;
    assert!(deleted.trim().parse::<u32>().unwrap_or(0) >= 5, "{deleted}");
    assert_eq!(s.revision(), rev + 1, "delete works under NOSPACE");
    t.note("deleted all fill/ keys", "");
    t.run(&["put", "small", "x"]).fails_with(1, NOSPACE);
    // recovery: compact, defrag, disarm
    s.ctl(&["compaction", &(rev + 1).to_string(), "--physical"])
        .ok();
    t.note("compacted to the current revision", "");
    t.ok(&["defrag"]);
    let disarmed = t.ok(&["alarm", "disarm"]).stdout;
    assert_eq!(disarmed, alarm, "disarm prints the alarms it cleared");
    t.ok(&["alarm", "list"]).prints("");
    t.ok(&["put", "small", "x"]).prints("OK\n");
    t.ok(&["get", "small"]).prints("small\nx\n");
    t
}
