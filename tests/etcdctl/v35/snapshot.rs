//! Snapshots with etcd 3.5's tools: `etcdctl snapshot save`, then `etcdutl snapshot status`
//! (the same revision and key count as etcd's own snapshot of the same data: etcd 3.5 keeps
//! `term` and `confState` in its meta bucket and so does kvd) and `etcdutl snapshot restore`,
//! after which etcd 3.5.1 starts on the restored data dir and serves the keys.

use super::{differential35, etcdutl, transcript};
use crate::differential::Transcript;
use crate::harness::{etcd35_bin, new_temp_dir, Member, Server};

#[test]
fn snapshot_save_status_and_restore_with_etcdutl() {
    require_tools!();
    require_etcd35!();
    differential35(snapshot_scenario);
}

fn snapshot_scenario(s: &Server) -> Transcript {
    let mut t = transcript(s);
    t.ok(&["put", "a", "1"]);
    t.ok(&["put", "b", "2"]);
    t.ok(&["user", "add", "alice", "--new-user-password=pw"]);
    t.ok(&["role", "add", "reader"]);
    t.ok(&["lease", "grant", "600"]);
    let file = s.dir().join("backup.db");
    let file = file.to_str().expect("utf-8 path");
    t.ok(&["snapshot", "save", file]);
    let status = t.record(etcdutl(&["snapshot", "status", file, "-w", "json"]).ok());
    let st = status.json();
    assert_eq!(st["revision"], 3, "{st}");
    // key 2 + meta 3 (consistent_index, term, confState) + members 1 + cluster 1
    // + auth 1 (authRevision) + authUsers 1 + authRoles 1 + lease 1.
    assert_eq!(st["totalKey"], 11, "{st}");
    t.record(etcdutl(&["snapshot", "status", file, "-w", "table"]).ok());

    // Restore as a new one-member cluster and serve it with etcd 3.5.1.
    let member = Member::new("restored");
    let dir = new_temp_dir();
    let data = dir.path().join("data");
    let restore = etcdutl(&[
        "snapshot",
        "restore",
        file,
        "--name",
        &member.name,
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--initial-cluster",
        &member.cluster_entry(),
        "--initial-cluster-token",
        "kvd-e2e",
        "--initial-advertise-peer-urls",
        &member.peer_url(),
    ]);
    t.note(
        "etcdutl snapshot restore",
        &format!("exit {}", restore.ok().status),
    );
    let etcd = Server::start_prepared(dir, &etcd35_bin(), member, &[]);
    let mut r = transcript(&etcd);
    r.ok(&["get", "", "--prefix", "-w", "json"]);
    r.ok(&["user", "list"]);
    r.ok(&["role", "list"]);
    t.note("restored etcd 3.5.1", &r.render());
    t
}
