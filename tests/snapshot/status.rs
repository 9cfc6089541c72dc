//! `snapshot status` across implementations: `kvd snapshot status` on an etcd snapshot and
//! `etcdctl snapshot status` on a kvd snapshot print what the other tool prints for the same file.

use std::path::Path;

use crate::harness::{etcd_bin, etcdctl_local, kvd_bin, kvd_cli, new_temp_dir, Server};
use crate::observe::{write_history, LAST, ROOT};
use crate::snapfile::save;

/// Asserts both tools print the same status of `file` in every format; checks the JSON figures
/// against the file itself.
fn assert_status_agrees(file: &Path, origin: &str) {
    let f = file.display().to_string();
    for format in ["json", "simple", "table", "fields"] {
        let by_etcdctl = etcdctl_local(&["snapshot", "status", &f, "-w", format]).ok();
        let by_kvd = kvd_cli(&["snapshot", "status", &f, "-w", format]).ok();
        assert_eq!(
            by_kvd.stdout, by_etcdctl.stdout,
            "{origin} snapshot, -w {format}: kvd (left) and etcdctl (right) disagree"
        );
    }
    let v = kvd_cli(&["snapshot", "status", &f, "-w", "json"])
        .ok()
        .json();
    assert_eq!(v["revision"], LAST, "{origin}: {v}");
    assert!(v["hash"].as_u64().unwrap_or(0) > 0, "{origin}: {v}");
    // Every bucket entry counts: 5 live keys plus history, leases, users, roles, members, meta.
    assert!(v["totalKey"].as_u64().unwrap_or(0) > 15, "{origin}: {v}");
    let size = std::fs::metadata(file).expect("snapshot file").len();
    assert_eq!(
        v["totalSize"].as_u64(),
        Some(size - 32),
        "{origin}: TOTAL SIZE is the database, the file adds the 32-byte sha256 trailer"
    );
}

#[test]
fn status_agrees_on_etcd_and_kvd_snapshots() {
    require_tools!();
    let files = new_temp_dir();
    for (bin, origin) in [(etcd_bin(), "etcd"), (kvd_bin(), "kvd")] {
        let s = Server::start(&bin);
        write_history(&s, true);
        let file = files.path().join(format!("{origin}.db"));
        save(&s, ROOT, &file);
        drop(s);
        assert_status_agrees(&file, origin);
    }
}
