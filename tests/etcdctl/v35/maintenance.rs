//! Maintenance with etcdctl 3.5: endpoint status/health/hashkv, defrag, alarms, locks with a
//! session TTL, and `check datascale`, which reads the member's memory from `/metrics`.

use super::{differential35, transcript};
use crate::differential::Transcript;
use crate::harness::{etcd35_bin, etcdctl35_bin, etcdctl_bin, kvd_bin, Ctl, Server};

#[test]
fn endpoint_status_hashkv_defrag_alarms_and_locks() {
    require_tools!();
    require_etcd35!();
    differential35(maintenance_scenario);
}

fn maintenance_scenario(s: &Server) -> Transcript {
    let mut t = transcript(s);
    t.ok(&["put", "a", "1"]);
    t.ok(&["put", "b", "2"]);
    t.ok(&["endpoint", "status"]);
    t.ok(&["endpoint", "status", "-w", "table"]);
    t.ok(&["endpoint", "status", "-w", "fields"]);
    let j = t.ok(&["endpoint", "status", "-w", "json"]).json();
    let status = &j[0]["Status"];
    assert_eq!(status["leader"], status["header"]["member_id"], "{status}");
    assert!(
        status["raftAppliedIndex"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    t.ok(&["endpoint", "health", "-w", "json"]);
    let hash = t.ok(&["endpoint", "hashkv", "-w", "json"]).json();
    // The hash covers only keys and values: etcd and kvd agree on it.
    t.note(
        "hashkv",
        &format!("hash {}", hash[0]["HashKV"]["hash"].as_u64().unwrap_or(0)),
    );
    t.ok(&["endpoint", "hashkv", "-w", "table"]);
    t.ok(&["defrag"]);
    t.ok(&["alarm", "list"]);
    t.ok(&["member", "list", "-w", "table"]);
    t.ok(&["member", "list", "-w", "json"]);
    // Cluster responses carry no revision in their header, as etcd's. (Not recorded: members
    // are listed by ID, and a new member's ID differs from server to server.)
    let added = t
        .ctl()
        .args(&[
            "member",
            "add",
            "spare",
            "--peer-urls=http://127.0.0.1:9",
            "--learner",
            "-w",
            "json",
        ])
        .run()
        .ok()
        .json();
    assert!(added["header"].get("revision").is_none(), "{added}");
    assert!(added["header"]["raft_term"].as_u64().is_some(), "{added}");
    let id = format!(
        "{:x}",
        added["member"]["ID"].as_u64().expect("new member id")
    );
    let removed = t.ctl().args(&["member", "remove", &id]).run().ok();
    assert!(
        removed
            .stdout
            .starts_with(&format!("Member {id:>16} removed from cluster ")),
        "{removed:?}"
    );
    let locked = t.ok(&["lock", "--ttl", "5", "the-lock", "--", "echo", "locked"]);
    assert_eq!(locked.stdout, "locked\n");
    t.ok(&[
        "get",
        "the-lock",
        "--prefix",
        "--count-only",
        "-w",
        "fields",
    ]);
    t
}

/// `check datascale` of etcdctl 3.5 and 3.4 passes on kvd as on etcd 3.5.1 (it fails when
/// `/metrics` has no `process_resident_memory_bytes`). 10 000 puts each, so it runs alone.
#[test]
fn check_datascale_passes() {
    require_tools!();
    require_etcd35!();
    let _alone = crate::harness::exclusive();
    for (bin, etcdctl) in [
        (etcd35_bin(), etcdctl35_bin()),
        (kvd_bin(), etcdctl35_bin()),
        (kvd_bin(), etcdctl_bin()),
    ] {
        let s = Server::start(&bin, &[]);
        let out = Ctl::new(&s.endpoint())
            .bin(&etcdctl)
            .args(&[
                "check",
                "datascale",
                "--load",
                "s",
                "--auto-compact",
                "--auto-defrag",
            ])
            .timeout(std::time::Duration::from_secs(300))
            .command_timeout("30s")
            .run()
            .ok();
        let last = out.lines().last().copied().unwrap_or_default();
        assert!(
            last.starts_with("PASS: Approximate system memory used : "),
            "{}: {out:?}",
            bin.display()
        );
        assert_eq!(
            Ctl::new(&s.endpoint())
                .bin(&etcdctl35_bin())
                .args(&[
                    "get",
                    "/etcdctl-check-datascale/",
                    "--prefix",
                    "--count-only",
                    "-w",
                    "fields"
                ])
                .run()
                .ok()
                .lines()
                .iter()
                .find(|l| l.starts_with("\"Count\""))
                .copied(),
            Some("\"Count\" : 0"),
            "{}: the check deletes its keys",
            bin.display()
        );
    }
}
