//! Keys, counts, transactions, history and leases with etcdctl 3.5.

use super::{differential35, transcript};
use crate::differential::Transcript;
use crate::harness::{lease_id, Server};

#[test]
fn keys_counts_txn_history_and_leases() {
    require_tools!();
    require_etcd35!();
    differential35(kv_scenario);
}

fn kv_scenario(s: &Server) -> Transcript {
    let mut t = transcript(s);
    t.ok(&["put", "a", "1"]); // 2
    t.ok(&["put", "b", "2"]); // 3
    t.ok(&["put", "b/c", "3"]); // 4
    let one = t.ok(&["get", "a", "--count-only", "-w", "fields"]);
    assert!(one.lines().contains(&"\"Count\" : 1"), "{one:?}");
    let all = t.ok(&["get", "", "--prefix", "--count-only", "-w", "fields"]);
    assert!(all.lines().contains(&"\"Count\" : 3"), "{all:?}");
    let refused = t.run(&["get", "a", "--count-only"]);
    assert_ne!(refused.status, 0, "{refused:?}");
    assert!(
        refused
            .err_lines()
            .contains(&"Error: --count-only is only for `--write-out=fields`".to_string()),
        "{refused:?}"
    );
    t.ok(&["get", "b", "--prefix", "--keys-only"]);
    t.ok(&["get", "b", "--prefix", "-w", "json"]);
    t.ok(&[
        "get",
        "",
        "--from-key",
        "--limit",
        "2",
        "--order",
        "DESCEND",
    ]);
    t.run_stdin(&["txn"], "value(\"a\") = \"1\"\n\nput a 10\n\nput a 99\n\n");
    t.ok(&["get", "a"]);
    t.ok(&["del", "b", "--prefix", "--prev-kv"]);
    t.ok(&["get", "a", "--rev", "2"]);
    t.ok(&["compaction", "3", "--physical"]);
    let compacted = t.run(&["get", "a", "--rev", "2"]);
    assert!(
        compacted
            .err_lines()
            .contains(&"Error: etcdserver: mvcc: required revision has been compacted".to_string()),
        "{compacted:?}"
    );
    let grant = t.ok(&["lease", "grant", "300"]);
    let id = lease_id(&grant.stdout);
    t.ok(&["put", "leased", "x", "--lease", &id]);
    t.ok(&["lease", "timetolive", &id, "--keys", "-w", "json"]);
    t.ok(&["lease", "list"]);
    t.ok(&["lease", "keep-alive", "--once", &id]);
    t.ok(&["lease", "revoke", &id]);
    t.ok(&["get", "leased"]);
    t
}
