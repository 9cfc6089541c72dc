//! Refusals: `kvd snapshot restore` and `kvd snapshot status` on a truncated file, a file with a
//! flipped byte, random bytes, a text file and a sound bbolt file without etcd's buckets exit
//! non-zero, say why (naming the file), and create nothing; a restore into an existing data dir
//! is refused and leaves that dir as it was.
//!
//! KNOWN KVD DIVERGENCE (test `status_refuses_sound_bbolt_files_that_are_not_good_snapshots`):
//! `kvd snapshot status` does not check the sha256 trailer nor etcd's buckets, so on a file with a
//! flipped data byte it prints a status (exit 0) and on a bbolt file without etcd's buckets it
//! prints `"revision":0` (exit 0), exactly as `etcdctl snapshot status` 3.4 does. The issue asks
//! for both to be refused; the test asserts the refusal.

use std::path::Path;

use crate::harness::{etcd_bin, etcdctl_local, kvd_cli, new_temp_dir, Member, Output, Server};
use crate::snapfile::{
    db_part, flip_byte_in, random_bytes, restore, save, with_foreign_buckets, write_file, Restorer,
};

/// A value stored in the good snapshot, whose first byte the flipped-byte file changes.
const MARKER: &str = "flip-me-0123456789abcdef";

/// A good etcd snapshot (a few keys, one holding [`MARKER`]) saved into `dir`.
fn good_snapshot(dir: &Path) -> Vec<u8> {
    let etcd = Server::start(&etcd_bin());
    for (k, v) in [("a", "1"), ("b", "2"), ("marker", MARKER)] {
        etcd.ok_as("", &["put", k, v]);
    }
    let path = dir.join("good.db");
    save(&etcd, "", &path);
    std::fs::read(&path).expect("read saved snapshot")
}

/// One damaged or foreign file, with the words the refusal must contain.
struct Bad {
    name: &'static str,
    bytes: Vec<u8>,
    /// Expected in `kvd snapshot restore`'s error.
    restore_reason: &'static str,
    /// Expected in the error of `restore --skip-hash-check` (the content checks alone).
    unchecked_reason: &'static str,
}

fn bad_files(good: &[u8]) -> Vec<Bad> {
    let db = db_part(good);
    let page = 4096;
    assert!(db.len() >= 4 * page, "good snapshot has at least 4 pages");
    // Cut at a page boundary and keep 32 bytes after it, so the size still looks like a
    // database plus a trailer.
    let mut cut_at_page = db[..2 * page].to_vec();
    cut_at_page.extend_from_slice(&db[2 * page..2 * page + 32]);
    let (foreign, names) = with_foreign_buckets(good);
    assert!(
        names.iter().any(|n| n == "key") && names.iter().any(|n| n == "meta"),
        "renamed etcd's buckets: {names:?}"
    );
    vec![
        Bad {
            name: "truncated.db",
            bytes: good[..good.len() / 2].to_vec(),
            restore_reason: "no sha256 trailer",
            unchecked_reason: "truncated",
        },
        Bad {
            name: "truncated-at-page.db",
            bytes: cut_at_page,
            restore_reason: "sha256",
            unchecked_reason: "truncated",
        },
        Bad {
            name: "flipped.db",
            bytes: flip_byte_in(good, MARKER.as_bytes()),
            restore_reason: "sha256",
            unchecked_reason: "",
        },
        Bad {
            name: "random.db",
            bytes: random_bytes(64 * 1024 + 32),
            restore_reason: "sha256",
            unchecked_reason: "not a bbolt database",
        },
        Bad {
            name: "text.db",
            bytes: b"this is a text file, not an etcd snapshot\n".to_vec(),
            restore_reason: "sha256",
            unchecked_reason: "not a bbolt database",
        },
        Bad {
            name: "foreign-buckets.db",
            bytes: foreign,
            restore_reason: "not an etcd backend",
            unchecked_reason: "not an etcd backend",
        },
    ]
}

/// Asserts `out` failed and its stderr names `file` and contains `reason`.
#[track_caller]
fn assert_refused(out: Output, file: &str, reason: &str) {
    let out = out.fails();
    let err = out.err_lines().join("\n");
    assert!(
        err.contains(file),
        "`{}`: error does not name the file: {err}",
        out.cmd
    );
    assert!(
        err.to_lowercase().contains(&reason.to_lowercase()),
        "`{}`: error does not say {reason:?}: {err}",
        out.cmd
    );
    assert!(
        out.stdout.is_empty(),
        "`{}` printed: {}",
        out.cmd,
        out.stdout
    );
}

#[test]
fn restore_refuses_damaged_and_foreign_files_and_writes_nothing() {
    require_tools!();
    let files = new_temp_dir();
    let good = good_snapshot(files.path());
    let member = Member::new("r1");
    let cluster = member.cluster_entry();
    let target = new_temp_dir();
    for bad in bad_files(&good) {
        let file = write_file(files.path(), bad.name, &bad.bytes);
        let data = target.path().join(format!("data-{}", bad.name));
        let out = restore(
            Restorer::Kvd,
            Path::new(&file),
            &data,
            &member,
            &cluster,
            &[],
        );
        assert_refused(out, &file, bad.restore_reason);
        assert!(
            !data.exists(),
            "refused restore of {} created {}",
            bad.name,
            data.display()
        );
        if !bad.unchecked_reason.is_empty() {
            let skip = ["--skip-hash-check"];
            let out = restore(
                Restorer::Kvd,
                Path::new(&file),
                &data,
                &member,
                &cluster,
                &skip,
            );
            assert_refused(out, &file, bad.unchecked_reason);
            assert!(
                !data.exists(),
                "refused restore of {} created {}",
                bad.name,
                data.display()
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(target.path())
            .expect("list target")
            .count(),
        0,
        "refused restores left something behind"
    );

    // A missing snapshot file.
    let missing = files.path().join("missing.db").display().to_string();
    let data = target.path().join("data-missing");
    let out = restore(
        Restorer::Kvd,
        Path::new(&missing),
        &data,
        &member,
        &cluster,
        &[],
    );
    assert_refused(out, &missing, "cannot read snapshot");
    assert!(!data.exists());

    // An existing data dir, empty or not, is refused and left as it was.
    let good_file = files.path().join("good.db");
    let empty = target.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = restore(Restorer::Kvd, &good_file, &empty, &member, &cluster, &[]);
    assert_refused(out, &empty.display().to_string(), "exists");
    assert_eq!(
        std::fs::read_dir(&empty).expect("list").count(),
        0,
        "empty dir written to"
    );
    let used = target.path().join("used");
    std::fs::create_dir(&used).expect("mkdir");
    std::fs::write(used.join("keep.txt"), b"mine").expect("write");
    let out = restore(Restorer::Kvd, &good_file, &used, &member, &cluster, &[]);
    assert_refused(out, &used.display().to_string(), "exists");
    let entries: Vec<_> = std::fs::read_dir(&used)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries, ["keep.txt"], "existing data dir was changed");
    assert_eq!(std::fs::read(used.join("keep.txt")).expect("read"), b"mine");

    // The good file itself restores (the refusals above are about the damage).
    let data = target.path().join("data-good");
    restore(Restorer::Kvd, &good_file, &data, &member, &cluster, &[]).ok();
    assert!(data.is_dir());
}

#[test]
fn status_refuses_unreadable_files() {
    require_tools!();
    let files = new_temp_dir();
    let good = good_snapshot(files.path());
    let good_file = files.path().join("good.db").display().to_string();
    // The good file: kvd and etcdctl print the same status.
    let kvd = kvd_cli(&["snapshot", "status", &good_file, "-w", "json"]).ok();
    let etcdctl = etcdctl_local(&["snapshot", "status", &good_file, "-w", "json"]).ok();
    assert_eq!(kvd.stdout, etcdctl.stdout);
    for bad in bad_files(&good) {
        let reason = match bad.name {
            "truncated.db" | "truncated-at-page.db" => "truncated",
            "random.db" | "text.db" => "not a bbolt database",
            _ => continue,
        };
        let file = write_file(files.path(), bad.name, &bad.bytes);
        for format in ["simple", "json"] {
            let out = kvd_cli(&["snapshot", "status", &file, "-w", format]);
            assert_refused(out, &file, reason);
        }
    }
    let missing = files.path().join("missing.db").display().to_string();
    assert_refused(
        kvd_cli(&["snapshot", "status", &missing]),
        &missing,
        "cannot read",
    );
    let left: Vec<_> = std::fs::read_dir(files.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".db"))
        .collect();
    assert!(left.is_empty(), "status wrote files: {left:?}");
}

/// See the KNOWN KVD DIVERGENCE note at the top of this module.
#[test]
fn status_refuses_sound_bbolt_files_that_are_not_good_snapshots() {
    require_tools!();
    let files = new_temp_dir();
    let good = good_snapshot(files.path());
    let mut wrong = Vec::new();
    for bad in bad_files(&good) {
        let reason = match bad.name {
            "flipped.db" => "sha256",
            "foreign-buckets.db" => "not an etcd backend",
            _ => continue,
        };
        let file = write_file(files.path(), bad.name, &bad.bytes);
        // etcdctl 3.4 reads both as sound bbolt files and prints a status.
        let etcdctl = etcdctl_local(&["snapshot", "status", &file, "-w", "json"]).ok();
        let out = kvd_cli(&["snapshot", "status", &file, "-w", "json"]);
        let err = out.err_lines().join("\n");
        if out.status == 0 || !err.contains(&file) || !err.contains(reason) {
            wrong.push(format!(
                "`{}`: exit {}, stdout {:?}, stderr {:?} (wanted a refusal saying {reason:?}; \
                 etcdctl prints {:?})",
                out.cmd,
                out.status,
                out.stdout.trim(),
                err,
                etcdctl.stdout.trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "kvd snapshot status accepted:\n{}",
        wrong.join("\n")
    );
}
