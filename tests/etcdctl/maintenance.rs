//! Maintenance scenarios: endpoint status/health/hashkv in every output format, defrag,
//! alarm list, snapshot save (and, separately, snapshot status/restore).

use std::os::unix::fs::PermissionsExt;

use crate::differential::{differential, Transcript};
use crate::harness::{header_revision, new_temp_dir, Ctl, Member, Server};

#[test]
fn endpoint_status_health_hashkv() {
    require_tools!();
    differential(endpoint_scenario);
}

fn endpoint_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "a", "1"]);
    t.ok(&["put", "b", "2"]);
    let st = t.ok(&["endpoint", "status"]).stdout;
    let f: Vec<&str> = st.trim_end().split(',').map(str::trim).collect();
    assert_eq!(f.len(), 10, "{st}");
    assert_eq!(f[0], s.endpoint());
    assert_eq!((f[4], f[5]), ("true", "false"), "leader, not learner: {st}");
    let j = t.ok(&["endpoint", "status", "-w", "json"]).json();
    let status = &j[0]["Status"];
    assert_eq!(j[0]["Endpoint"], s.endpoint());
    assert_eq!(header_revision(status), 3);
    assert_eq!(status["leader"], status["header"]["member_id"]);
    assert!(status["dbSize"].as_u64().unwrap_or(0) > 0, "{status}");
    assert!(status["raftIndex"].as_u64().unwrap_or(0) > 0, "{status}");
    assert!(
        status["version"].as_str().unwrap_or("").starts_with("3.4."),
        "{status}"
    );
    t.ok(&["endpoint", "status", "-w", "table"]);
    t.ok(&["endpoint", "status", "-w", "fields"]);
    t.ok(&["endpoint", "status", "--cluster"]);

    // health: the human line goes to stderr
    let h = t.ok(&["endpoint", "health"]);
    assert!(h.stdout.is_empty(), "{h:?}");
    let line = format!(
        "{} is healthy: successfully committed proposal: took = ",
        s.endpoint()
    );
    assert!(h.err_lines().iter().any(|l| l.starts_with(&line)), "{h:?}");
    let j = t.ok(&["endpoint", "health", "-w", "json"]).json();
    assert_eq!(j[0]["health"], true);
    assert_eq!(j[0]["endpoint"], s.endpoint());
    t.ok(&["endpoint", "health", "-w", "table"]);
    t.ok(&["endpoint", "health", "--cluster"]);

    // hashkv: stable without writes, changes with a write, and --rev selects history
    let h1 = t.ok(&["endpoint", "hashkv", "-w", "json"]).json();
    let h2 = t.ok(&["endpoint", "hashkv", "-w", "json"]).json();
    assert_eq!(h1[0]["HashKV"]["hash"], h2[0]["HashKV"]["hash"]);
    assert_eq!(header_revision(&h1[0]["HashKV"]), 3);
    assert_eq!(h1[0]["HashKV"]["compact_revision"], -1);
    let at3 = t
        .ok(&["endpoint", "hashkv", "--rev", "3", "-w", "json"])
        .json();
    assert_eq!(h1[0]["HashKV"]["hash"], at3[0]["HashKV"]["hash"]);
    t.ok(&["put", "c", "3"]);
    let h3 = t.ok(&["endpoint", "hashkv", "-w", "json"]).json();
    assert_ne!(h1[0]["HashKV"]["hash"], h3[0]["HashKV"]["hash"]);
    let again3 = t
        .ok(&["endpoint", "hashkv", "--rev", "3", "-w", "json"])
        .json();
    assert_eq!(
        h1[0]["HashKV"]["hash"], again3[0]["HashKV"]["hash"],
        "hash at a past revision must not change with later writes"
    );
    t.ok(&["endpoint", "hashkv"]);
    t.ok(&["endpoint", "hashkv", "-w", "table"]);
    t.run(&["endpoint", "hashkv", "--rev", "99"]).fails_with(
        1,
        "Error: etcdserver: mvcc: required revision is a future revision",
    );
    t.ok(&["compaction", "3"]);
    t.run(&["endpoint", "hashkv", "--rev", "2"]).fails_with(
        1,
        "Error: etcdserver: mvcc: required revision has been compacted",
    );
    t
}

#[test]
fn member_and_alarm_list() {
    require_tools!();
    differential(member_alarm_scenario);
}

fn member_alarm_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let m = &s.member();
    let line = t.ok(&["member", "list"]).stdout;
    let f: Vec<&str> = line.trim_end().split(',').map(str::trim).collect();
    assert_eq!(
        f[1..],
        [
            "started",
            m.name.as_str(),
            m.peer_url().as_str(),
            &format!("http://{}", s.endpoint()),
            "false"
        ]
    );
    let j = t.ok(&["member", "list", "-w", "json"]).json();
    assert_eq!(j["members"][0]["name"], m.name);
    assert_eq!(j["members"][0]["ID"], j["header"]["member_id"]);
    assert!(
        j["header"].get("revision").is_none(),
        "member list header has no revision"
    );
    t.ok(&["member", "list", "-w", "table"]);
    t.ok(&["member", "list", "-w", "fields"]);
    t.ok(&["alarm", "list"]).prints("");
    t.ok(&["alarm", "list", "-w", "json"]);
    t.ok(&["alarm", "disarm"]).prints("");
    t
}

#[test]
fn defrag_keeps_data() {
    require_tools!();
    differential(defrag_scenario);
}

fn defrag_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    for i in 0..20 {
        t.ok(&["put", &format!("k{i:02}"), &"x".repeat(1000)]);
    }
    t.ok(&["del", "k", "--prefix"]);
    t.ok(&["put", "keep", "me"]);
    t.ok(&["compaction", "22"]);
    t.ok(&["defrag"]).prints(&format!(
        "Finished defragmenting etcd member[{}]\n",
        s.endpoint()
    ));
    t.ok(&["defrag", "--cluster"]);
    t.ok(&["get", "", "--prefix"]).prints("keep\nme\n");
    assert_eq!(s.revision(), 23);
    t.ok(&["get", "keep", "--rev", "23"]).prints("keep\nme\n");
    t
}

#[test]
fn snapshot_save() {
    require_tools!();
    differential(snapshot_save_scenario);
}

fn snapshot_save_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "a", "1"]);
    t.ok(&["put", "b", "2"]);
    let path = s.dir().join("backup.db");
    let p = path.display().to_string();
    let out = t.ok(&["snapshot", "save", &p]);
    assert_eq!(out.stdout, format!("Snapshot saved at {p}\n"));
    let meta = std::fs::metadata(&path).expect("snapshot file exists");
    assert!(meta.len() > 0);
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "snapshot file mode"
    );
    assert!(
        !s.dir().join("backup.db.part").exists(),
        "temporary .part file left behind"
    );
    // the server keeps serving
    t.ok(&["put", "c", "3"]);
    t.run(&["snapshot", "save"]);
    t
}

#[test]
fn snapshot_status_and_restore() {
    require_tools!();
    differential(snapshot_status_scenario);
}

/// `snapshot status` reads the saved file locally as a bbolt database, and `snapshot
/// restore` turns it into a data dir that the server must start from with the data intact.
fn snapshot_status_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        t.ok(&["put", k, v]);
    }
    t.ok(&["del", "b"]);
    let path = s.dir().join("backup.db");
    let p = path.display().to_string();
    t.ok(&["snapshot", "save", &p]);
    let st = t.ok(&["snapshot", "status", &p, "-w", "json"]).json();
    assert_eq!(
        st["revision"], 5,
        "snapshot status REVISION = current revision"
    );
    assert!(st["totalKey"].as_u64().unwrap_or(0) >= 4, "{st}");
    t.ok(&["snapshot", "status", &p, "-w", "table"]);

    // restore into a fresh data dir and start the same binary on it
    let dir = new_temp_dir();
    let member = Member::new("restored");
    let data = dir.path().join("data");
    let cluster = format!("{}={}", member.name, member.peer_url());
    let out = Ctl::new(&s.endpoint())
        .args(&[
            "snapshot",
            "restore",
            &p,
            "--data-dir",
            &data.display().to_string(),
            "--name",
            &member.name,
            "--initial-cluster",
            &cluster,
            "--initial-cluster-token",
            "kvd-e2e",
            "--initial-advertise-peer-urls",
            &member.peer_url(),
        ])
        .run()
        .ok();
    t.note("restore exit", &out.status.to_string());
    let r = Server::start_prepared(dir, s.bin(), member, &[]);
    let got = r.ctl(&["get", "", "--prefix", "-w", "json"]).ok().json();
    assert_eq!(crate::harness::pairs(&got), ["a=1", "c=3"]);
    assert_eq!(
        header_revision(&got),
        5,
        "restored store keeps the revision"
    );
    r.ctl(&["get", "b", "--rev", "3"]).prints("b\n2\n");
    r.ctl(&["put", "d", "4"]).ok();
    assert_eq!(r.revision(), 6);
    t.note("restored", "ok");
    t
}
