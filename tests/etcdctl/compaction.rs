//! Compaction scenarios: `compaction N` (and `--physical`), reads below/at/above the
//! compaction point, future revisions, compaction inside txn reads, hashkv's
//! compact_revision, and periodic auto-compaction.

use std::time::Duration;

use crate::differential::{differential, Transcript};
use crate::harness::{eventually, header_revision, kvs, Server};

const COMPACTED: &str = "Error: etcdserver: mvcc: required revision has been compacted";
const FUTURE: &str = "Error: etcdserver: mvcc: required revision is a future revision";

#[test]
fn compaction_and_history() {
    require_tools!();
    differential(compaction_scenario);
}

fn compaction_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    for v in ["1", "2", "3", "4", "5"] {
        t.ok(&["put", "k", v]); // revisions 2..=6
    }
    t.ok(&["put", "gone", "x"]); // 7
    t.ok(&["del", "gone"]); // 8
                            // future revisions
    t.run(&["get", "k", "--rev", "9"]).fails_with(1, FUTURE);
    t.run(&["compaction", "9"]).fails_with(1, FUTURE);
    t.ok(&["get", "k", "--rev", "8"]).prints("k\n5\n");
    // compaction at 4: revisions below 4 are gone, 4 itself stays readable
    t.ok(&["compaction", "4"]).prints("compacted revision 4\n");
    t.run(&["get", "k", "--rev", "3"]).fails_with(1, COMPACTED);
    t.run(&["get", "k", "--rev", "2", "-w", "json"])
        .fails_with(1, COMPACTED);
    t.ok(&["get", "k", "--rev", "4"]).prints("k\n3\n");
    let r = t.ok(&["get", "k", "--rev", "5", "-w", "json"]).json();
    assert_eq!(header_revision(&r), 8);
    assert_eq!(kvs(&r)[0].create, 2, "create revision survives compaction");
    assert_eq!(kvs(&r)[0].version, 4);
    t.ok(&["get", "gone", "--rev", "7"]).prints("gone\nx\n");
    // compacting the same or an older revision again is an error
    t.run(&["compaction", "4"]).fails_with(1, COMPACTED);
    t.run(&["compaction", "3"]).fails_with(1, COMPACTED);
    // --physical waits until the compaction is applied to the backend
    t.ok(&["compaction", "8", "--physical"])
        .prints("compacted revision 8\n");
    t.run(&["get", "gone", "--rev", "7"])
        .fails_with(1, COMPACTED);
    t.ok(&["get", "k", "--rev", "8"]).prints("k\n5\n");
    t.ok(&["get", "gone", "--rev", "8"]).prints("");
    // compaction does not bump the revision; writes continue from there
    assert_eq!(s.revision(), 8);
    t.ok(&["put", "k", "6"]);
    let r = t.ok(&["get", "k", "-w", "json"]).json();
    assert_eq!((kvs(&r)[0].modified, kvs(&r)[0].version), (9, 6));
    // a compacted revision inside a txn read
    t.run_stdin(&["txn"], "\nget k --rev 3\n\n\n")
        .fails_with(1, COMPACTED);
    let h = t.ok(&["endpoint", "hashkv", "-w", "json"]).json();
    assert_eq!(h[0]["HashKV"]["compact_revision"], 8);
    t.run(&["compaction"]);
    t.run(&["compaction", "x"]);
    t
}

#[test]
fn compaction_zero_and_fresh_store() {
    require_tools!();
    differential(compaction_zero_scenario);
}

fn compaction_zero_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let h = t.ok(&["endpoint", "hashkv", "-w", "json"]).json();
    assert_eq!(h[0]["HashKV"]["compact_revision"], -1, "never compacted");
    t.run(&["compaction", "0"]);
    t.ok(&["compaction", "1"]).prints("compacted revision 1\n");
    t.run(&["compaction", "1"]).fails_with(1, COMPACTED);
    t.run(&["compaction", "2"]).fails_with(1, FUTURE);
    t.ok(&["put", "a", "1"]);
    t.ok(&["compaction", "2"]).prints("compacted revision 2\n");
    t.ok(&["get", "a"]).prints("a\n1\n");
    t
}

#[test]
fn periodic_auto_compaction() {
    require_tools!();
    let _g = crate::harness::shared();
    // periodic mode with a 1 s retention compacts within a few seconds
    let s = Server::kvd(&[
        "--auto-compaction-mode",
        "periodic",
        "--auto-compaction-retention",
        "1s",
    ]);
    for v in ["1", "2", "3"] {
        s.ok(&["put", "k", v]);
    }
    let done = eventually(Duration::from_secs(20), || {
        let out = s.ctl(&["get", "k", "--rev", "2"]);
        (out.status != 0).then_some(out)
    });
    let out = done.expect("revision 2 still readable 20 s after writes with 1 s retention");
    assert!(out.err_lines().iter().any(|l| l == COMPACTED), "{out:?}");
    s.ok(&["get", "k"]);
}
