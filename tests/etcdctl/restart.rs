//! Durability: SIGKILL during a write load, and a clean SIGTERM restart. Runs against the
//! server under test only: every write etcdctl saw acknowledged must survive, and the
//! revision must never go back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{header_revision, kvs, Ctl, Server};

/// One acknowledged put: key, value, and the revision the server reported for it.
#[derive(Clone, Debug)]
struct Ack {
    key: String,
    value: String,
    revision: i64,
}

/// Reads every `w/` key in one request: key -> (value, mod_revision).
fn read_all(s: &Server) -> (i64, BTreeMap<String, (String, i64)>) {
    let v = s.ctl(&["get", "w/", "--prefix", "-w", "json"]).ok().json();
    let map = kvs(&v)
        .into_iter()
        .map(|kv| (kv.key, (kv.value, kv.modified)))
        .collect();
    (header_revision(&v), map)
}

#[track_caller]
fn check_acks(s: &Server, acks: &[Ack], floor: i64) -> i64 {
    let (rev, map) = read_all(s);
    assert!(
        rev >= floor,
        "revision went back: {rev} after restart, {floor} acknowledged before"
    );
    for a in acks {
        match map.get(&a.key) {
            Some((v, m)) => {
                assert_eq!(v, &a.value, "value of acknowledged key {}", a.key);
                assert_eq!(*m, a.revision, "mod_revision of acknowledged key {}", a.key);
            }
            None => panic!(
                "acknowledged write {} (revision {}) lost after kill -9; {} keys present",
                a.key,
                a.revision,
                map.len()
            ),
        }
    }
    rev
}

#[test]
fn kill9_during_writes_loses_no_acknowledged_write() {
    require_tools!();
    let _g = crate::harness::exclusive();
    let mut s = Server::kvd(&[]);
    let endpoint = s.endpoint();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (stop, acked, acks, endpoint) = (
                Arc::clone(&stop),
                Arc::clone(&acked),
                Arc::clone(&acks),
                endpoint.clone(),
            );
            thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::SeqCst) && i < 5000 {
                    let key = format!("w/{w}/{i:05}");
                    let value = format!("value-{w}-{i}");
                    let out = Ctl::new(&endpoint)
                        .args(&["put", &key, &value, "-w", "json"])
                        .command_timeout("2s")
                        .dial_timeout("1s")
                        .timeout(Duration::from_secs(10))
                        .run();
                    if out.status == 0 {
                        let revision = header_revision(&out.json());
                        acks.lock().unwrap_or_else(|e| e.into_inner()).push(Ack {
                            key,
                            value,
                            revision,
                        });
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    // let the load run, then SIGKILL the server in the middle of it
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < 150 {
        assert!(Instant::now() < deadline, "writers made no progress");
        thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    assert!(s.data_dir().is_dir(), "data dir missing after kill -9");
    let killed_at = acked.load(Ordering::SeqCst);
    // keep the writers failing against the dead server for a moment, then stop them
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("writer thread");
    }
    let acks = acks.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(acks.len() >= killed_at);
    let floor = acks.iter().map(|a| a.revision).max().unwrap_or(1);
    eprintln!(
        "kill -9 after {} acknowledged puts (max revision {floor})",
        acks.len()
    );

    s.restart();
    let rev = check_acks(&s, &acks, floor);
    // the restarted server keeps numbering from where it was
    let p = s
        .ctl(&["put", "after", "restart", "-w", "json"])
        .ok()
        .json();
    assert_eq!(header_revision(&p), rev + 1);
    // history before the crash is readable
    let first = &acks[0];
    s.ctl(&["get", &first.key, "--rev", &first.revision.to_string()])
        .prints(&format!("{}\n{}\n", first.key, first.value));

    // a second crash right after the restart loses nothing either
    s.kill9();
    s.restart();
    let rev2 = check_acks(&s, &acks, rev + 1);
    assert_eq!(rev2, rev + 1);
    s.ctl(&["get", "after"]).prints("after\nrestart\n");
}

#[test]
fn graceful_restart_keeps_state() {
    require_tools!();
    let _g = crate::harness::shared();
    let mut s = Server::kvd(&[]);
    for v in ["1", "2", "3"] {
        s.ok(&["put", "k", v]); // 2..=4
    }
    let lease = crate::harness::lease_id(&s.ok(&["lease", "grant", "600"]));
    s.ok(&["put", "leased", "x", "--lease", &lease]); // 5
    s.ok(&["del", "k"]); // 6
    s.ok(&["compaction", "3"]);
    let hash =
        s.ctl(&["endpoint", "hashkv", "-w", "json"]).ok().json()[0]["HashKV"]["hash"].clone();
    // etcd re-raises SIGTERM after its cleanup (exit status 143); 0 is fine too
    let code = s.stop();
    assert!(
        matches!(code, Some(0) | Some(143)),
        "unclean exit on SIGTERM: {code:?}"
    );
    s.restart();
    assert_eq!(s.revision(), 6);
    s.ctl(&["get", "k", "--rev", "4"]).prints("k\n3\n");
    s.ctl(&["get", "k", "--rev", "2"]).fails_with(
        1,
        "Error: etcdserver: mvcc: required revision has been compacted",
    );
    s.ctl(&["get", "", "--prefix"]).prints("leased\nx\n");
    let ttl = s.ok(&["lease", "timetolive", &lease, "--keys"]);
    assert!(
        ttl.starts_with(&format!("lease {lease} granted with TTL(600s), remaining("))
            && ttl.ends_with("attached keys([leased])\n"),
        "lease lost on restart: {ttl}"
    );
    let h = s.ctl(&["endpoint", "hashkv", "-w", "json"]).ok().json();
    assert_eq!(h[0]["HashKV"]["hash"], hash, "hash changed across restart");
    assert_eq!(h[0]["HashKV"]["compact_revision"], 3);
    s.ok(&["put", "k", "new"]);
    let r = s.ctl(&["get", "k", "-w", "json"]).ok().json();
    assert_eq!(kvs(&r)[0].create, 7);
    assert_eq!(kvs(&r)[0].version, 1);
}
