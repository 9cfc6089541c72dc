//! The raft log in the write-ahead log is what makes a write durable: the state backend is
//! flushed only in the background. Here the state backend loses everything written after an
//! earlier point (as a power loss can take whatever was not flushed), while the WAL keeps what
//! it synced: on start, kvd applies the WAL again from the state's applied index, and every
//! acknowledged write is back, at its revision.

use std::path::{Path, PathBuf};

use kvd::proto::etcdserverpb::{PutRequest, RangeRequest};

use crate::common::{within, Member};

fn state_dir(data: &Path) -> PathBuf {
    data.join("member").join("kvd")
}

/// Copies the state backend's files (everything but the WAL) from `from` to `to`.
fn copy_state(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read state dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == "wal" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("type").is_dir() {
            copy_state(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Removes the state backend's files (everything but the WAL) under `dir`.
fn remove_state(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read state dir") {
        let entry = entry.expect("entry");
        if entry.file_name() == "wal" {
            continue;
        }
        if entry.file_type().expect("type").is_dir() {
            std::fs::remove_dir_all(entry.path()).expect("rm dir");
        } else {
            std::fs::remove_file(entry.path()).expect("rm");
        }
    }
}

#[tokio::test]
async fn the_wal_alone_brings_back_writes_the_state_backend_lost() {
    let mut m = Member::start().await;
    let early = tempfile::tempdir().expect("tempdir");
    within(async {
        let mut kv = m.kv().await;
        kv.put(PutRequest {
            key: b"before".to_vec(),
            value: b"0".to_vec(),
            ..Default::default()
        })
        .await
        .expect("put");
        m.stop().await;
        // the state backend as a power loss could leave it: only what was flushed by now
        copy_state(&state_dir(m.dir.path()), early.path());
        m.start_again().await;
        let mut kv = m.kv().await;
        let mut revisions = Vec::new();
        for i in 0..200 {
            let r = kv
                .put(PutRequest {
                    key: format!("after/{i:03}").into_bytes(),
                    value: format!("v{i}").into_bytes(),
                    ..Default::default()
                })
                .await
                .expect("put")
                .into_inner();
            revisions.push(r.header.expect("header").revision);
        }
        m.stop().await;
        remove_state(&state_dir(m.dir.path()));
        copy_state(early.path(), &state_dir(m.dir.path()));
        m.start_again().await;
        let mut kv = m.kv().await;
        let got = kv
            .range(RangeRequest {
                key: b"after/".to_vec(),
                range_end: b"after0".to_vec(),
                ..Default::default()
            })
            .await
            .expect("range")
            .into_inner();
        assert_eq!(got.kvs.len(), 200, "every acknowledged write is back");
        for (i, kv) in got.kvs.iter().enumerate() {
            assert_eq!(kv.value, format!("v{i}").into_bytes());
            assert_eq!(kv.mod_revision, revisions[i], "at its revision");
        }
        assert_eq!(
            got.header.expect("header").revision,
            *revisions.last().expect("writes"),
            "and nothing else"
        );
    })
    .await;
}
