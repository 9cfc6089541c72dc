//! Differential tests of kvd's bbolt and etcd snapshot formats against real etcd 3.4 and etcdctl:
//! snapshots etcd writes must parse to what was written, and snapshots kvd writes must pass
//! `etcdctl snapshot status` and `snapshot restore`, with etcd then serving the same data.
//!
//! Skipped (with a message) where `/usr/bin/etcd` or `/usr/bin/etcdctl` is missing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kvd::bbolt::Db;
use kvd::etcd_snapshot::{
    encode_snapshot_file, member_json, parse_snapshot_file, parse_snapshot_file_with, status,
    EtcdBackend, KeyRecord, Lease, ParseOptions, Revision, SnapshotError, StatusFormat,
};
use kvd::proto::authpb::{permission, Permission, Role, User};
use kvd::proto::mvccpb::KeyValue;
use serde_json::Value;

const ETCD: &str = "/usr/bin/etcd";
const ETCDCTL: &str = "/usr/bin/etcdctl";
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

fn have_etcd() -> bool {
    let ok = Path::new(ETCD).exists() && Path::new(ETCDCTL).exists();
    if !ok {
        eprintln!("skipping: {ETCD} or {ETCDCTL} is not installed");
    }
    ok
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Runs a command to completion, killing it after [`CMD_TIMEOUT`].
fn run(program: &str, args: &[&str]) -> Output {
    run_with_input(program, args, b"")
}

/// Runs a command with `input` on its stdin, killing it after [`CMD_TIMEOUT`]. Output is drained
/// by reader threads, so a large output cannot stall the command.
fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // Written from a thread and closed at the end, so the command sees EOF.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "{program} {args:?} timed out; stderr: {}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Runs a command that must succeed, returning its stdout.
fn run_ok(program: &str, args: &[&str]) -> String {
    run_ok_with_input(program, args, b"")
}

/// Runs a command with `input` on stdin that must succeed, returning its stdout.
fn run_ok_with_input(program: &str, args: &[&str], input: &[u8]) -> String {
    let out = run_with_input(program, args, input);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A running etcd member, killed on drop.
struct Etcd {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl Etcd {
    /// Starts a one-member etcd on `data_dir` (new or restored) with the given name and peer port.
    fn start(data_dir: &Path, name: &str, peer_port: u16) -> Etcd {
        let client = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = data_dir.with_extension("log");
        let log_file = File::create(&log).expect("create etcd log");
        let child = Command::new(ETCD)
            .args([
                "--name",
                name,
                "--data-dir",
                data_dir.to_str().expect("utf-8 path"),
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster",
                &format!("{name}={peer}"),
                "--logger",
                "zap",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            child,
            endpoint: client,
            log,
        };
        etcd.wait_ready();
        etcd
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = run(
                ETCDCTL,
                &[
                    "--endpoints",
                    &self.endpoint,
                    "--command-timeout=2s",
                    "endpoint",
                    "health",
                ],
            );
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy in 30 s; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs etcdctl against this member; it must succeed.
    fn ctl(&self, args: &[&str]) -> String {
        let mut all = vec!["--endpoints", &self.endpoint];
        all.extend_from_slice(args);
        run_ok(ETCDCTL, &all)
    }

    /// Runs etcdctl against this member with `input` on stdin; it must succeed.
    fn ctl_input(&self, args: &[&str], input: &str) -> String {
        let mut all = vec!["--endpoints", &self.endpoint];
        all.extend_from_slice(args);
        run_ok_with_input(ETCDCTL, &all, input.as_bytes())
    }

    /// Runs etcdctl against this member and parses its JSON output.
    fn ctl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-w", "json"]);
        serde_json::from_str(&self.ctl(&all)).expect("etcdctl JSON")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or(""))
        .expect("base64")
}

fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// etcdctl's `snapshot status` in each format, compared with ours.
fn assert_status_matches_etcdctl(path: &Path, bytes: &[u8]) {
    let ours = status(bytes).expect("our status");
    let file = path.to_str().expect("utf-8 path");
    let theirs: Value = serde_json::from_str(&run_ok(
        ETCDCTL,
        &["snapshot", "status", file, "-w", "json"],
    ))
    .expect("status JSON");
    assert_eq!(theirs["hash"].as_u64(), Some(u64::from(ours.hash)), "hash");
    assert_eq!(theirs["revision"].as_i64(), Some(ours.revision), "revision");
    assert_eq!(
        theirs["totalKey"].as_u64(),
        Some(ours.total_key),
        "total keys"
    );
    assert_eq!(
        theirs["totalSize"].as_u64(),
        Some(ours.total_size),
        "total size"
    );
    for (flag, format) in [
        ("json", StatusFormat::Json),
        ("table", StatusFormat::Table),
        ("simple", StatusFormat::Simple),
        ("fields", StatusFormat::Fields),
    ] {
        assert_eq!(
            run_ok(ETCDCTL, &["snapshot", "status", file, "-w", flag]),
            ours.render(format),
            "-w {flag}"
        );
    }
}

#[test]
fn etcd_snapshots_parse_to_what_was_written() {
    if !have_etcd() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let peer_port = free_port();
    let etcd = Etcd::start(&dir.path().join("member.etcd"), "real", peer_port);

    etcd.ctl(&["put", "a", "1"]); // rev 2
    etcd.ctl(&["put", "a", "2"]); // rev 3
    etcd.ctl(&["put", "b", "x"]); // rev 4
    etcd.ctl(&["del", "b"]); // rev 5
    etcd.ctl(&["put", "c", "y"]); // rev 6
    etcd.ctl(&["compaction", "--physical", "4"]);
    let lease_hex = etcd
        .ctl(&["lease", "grant", "600"])
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_owned();
    let lease_id = i64::from_str_radix(&lease_hex, 16).expect("hex lease id");
    etcd.ctl(&["put", "--lease", &lease_hex, "l", "leased"]); // rev 7
                                                              // Enough history for branch pages: 20 transactions of 128 puts (revisions 8..=27, subs
                                                              // 0..=127), then a value spanning overflow pages (revision 28).
    for t in 0..20 {
        let mut ops = String::from("\n");
        for i in 0..128 {
            ops.push_str(&format!(
                "put /bulk/{t:02}/{i:03} value-{t}-{i}-{}\n",
                "x".repeat(60)
            ));
        }
        ops.push_str("\n\n");
        assert_eq!(
            etcd.ctl_input(&["txn"], &ops).lines().next(),
            Some("SUCCESS")
        );
    }
    etcd.ctl_input(&["put", "big"], &"B".repeat(200_000)); // the value comes from stdin
    etcd.ctl(&["role", "add", "root"]);
    etcd.ctl(&["user", "add", "root:rootpw"]);
    etcd.ctl(&["user", "grant-role", "root", "root"]);
    etcd.ctl(&["role", "add", "reader"]);
    etcd.ctl(&[
        "role",
        "grant-permission",
        "reader",
        "read",
        "/app/",
        "/app0",
    ]);
    etcd.ctl(&["user", "add", "alice:alicepw"]);
    etcd.ctl(&["user", "grant-role", "alice", "reader"]);
    etcd.ctl(&["auth", "enable"]);

    let members = etcd.ctl_json(&["--user", "root:rootpw", "member", "list"]);
    let member = &members["members"][0];
    let member_id = member["ID"].as_u64().expect("member id");

    let snap = dir.path().join("real.snap");
    let snap_str = snap.to_str().expect("utf-8 path");
    etcd.ctl(&["--user", "root:rootpw", "snapshot", "save", snap_str]);
    let bytes = std::fs::read(&snap).expect("read snapshot");
    let b = parse_snapshot_file(&bytes).expect("parse etcd's snapshot");

    // MVCC history: every revision from 2 (compacted at 4: "a"@2 is gone, "a"@3 kept).
    let by_rev: BTreeMap<Revision, &KeyRecord> = b.kvs.iter().map(|r| (r.revision, r)).collect();
    let rec = |main| by_rev.get(&Revision { main, sub: 0 }).copied();
    assert!(rec(2).is_none(), "compacted away");
    let a = rec(3).expect("a@3");
    assert_eq!(
        (
            a.kv.key.as_slice(),
            a.kv.value.as_slice(),
            a.kv.create_revision,
            a.kv.version
        ),
        (&b"a"[..], &b"2"[..], 2, 2)
    );
    let del = rec(5).expect("tombstone of b");
    assert!(del.tombstone);
    assert_eq!(del.kv.key, b"b");
    let l = rec(7).expect("leased key");
    assert_eq!(
        (l.kv.lease, l.kv.value.as_slice()),
        (lease_id, &b"leased"[..])
    );
    for r in b.kvs.iter().filter(|r| !r.tombstone) {
        assert_eq!(r.kv.mod_revision, r.revision.main, "{r:?}");
    }
    for t in 0..20i64 {
        for i in 0..128i64 {
            let r = by_rev
                .get(&Revision {
                    main: 8 + t,
                    sub: i,
                })
                .expect("bulk record");
            assert_eq!(r.kv.key, format!("/bulk/{t:02}/{i:03}").into_bytes());
        }
    }
    assert_eq!(rec(28).map(|r| r.kv.value.len()), Some(200_000));
    assert_eq!(b.revision(), 28);
    assert_eq!(b.finished_compact_rev, Some(4));
    assert_eq!(b.scheduled_compact_rev, Some(4));
    assert!(b.consistent_index > 28, "{}", b.consistent_index);

    assert_eq!(
        b.leases,
        vec![Lease {
            id: lease_id,
            ttl: 600,
            remaining_ttl: 0
        }]
    );
    let names: Vec<&[u8]> = b.users.iter().map(|u| u.name.as_slice()).collect();
    assert_eq!(names, [&b"alice"[..], b"root"]);
    assert_eq!(b.users[0].roles, ["reader"]);
    assert!(b.users[0].password.starts_with(b"$2a$"), "bcrypt hash");
    let reader = b.roles.iter().find(|r| r.name == b"reader").expect("role");
    assert_eq!(
        reader.key_permission,
        [Permission {
            perm_type: permission::Type::Read.into(),
            key: b"/app/".to_vec(),
            range_end: b"/app0".to_vec(),
        }]
    );
    assert_eq!(b.auth_enabled, Some(true));
    assert!(b.auth_revision >= 7, "{}", b.auth_revision);
    assert_eq!(b.cluster_version.as_deref(), Some("3.4.0"));
    assert!(b.removed_members.is_empty() && b.alarms.is_empty());
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        b.members.get(&member_id).map(String::as_str),
        Some(
            member_json(
                member_id,
                member["name"].as_str().unwrap_or(""),
                &str_list(&member["peerURLs"]),
                &str_list(&member["clientURLs"]),
                false
            )
            .as_str()
        )
    );

    // Laying the parsed backend out again gives etcd's buckets byte for byte.
    let theirs = Db::read(&bytes[..bytes.len() - 32]).expect("bolt");
    assert_eq!(b.to_bolt().expect("to_bolt").buckets, theirs.buckets);

    assert_status_matches_etcdctl(&snap, &bytes);

    // etcd's live database file (no trailer, longer than its pages in use, two meta pages of
    // different transactions, no stored freelist) reads the same with the hash check skipped.
    drop(etcd);
    let live = std::fs::read(dir.path().join("member.etcd/member/snap/db")).expect("live db");
    assert!(matches!(
        parse_snapshot_file(&live),
        Err(SnapshotError::MissingHash { .. })
    ));
    let opts = ParseOptions {
        skip_hash_check: true,
    };
    let from_disk = parse_snapshot_file_with(&live, opts).expect("live db parses");
    assert_eq!(from_disk.kvs, b.kvs);
    assert_eq!(
        (from_disk.leases, from_disk.users, from_disk.roles),
        (b.leases, b.users, b.roles)
    );
}

/// Builds an MVCC history the way etcd would write it.
#[derive(Default)]
struct History {
    rev: i64,
    live: BTreeMap<Vec<u8>, KeyValue>,
    records: Vec<KeyRecord>,
}

enum Op<'a> {
    Put(&'a str, &'a str, i64),
    Del(&'a str),
}

impl History {
    fn new() -> Self {
        History {
            rev: 1, // a fresh etcd is at revision 1; the first write is 2
            ..History::default()
        }
    }

    /// One transaction: one main revision, one sub revision per change.
    fn txn(&mut self, ops: &[Op<'_>]) {
        self.rev += 1;
        for (sub, op) in ops.iter().enumerate() {
            let revision = Revision {
                main: self.rev,
                sub: i64::try_from(sub).expect("small"),
            };
            match *op {
                Op::Put(key, value, lease) => {
                    let prev = self.live.get(key.as_bytes());
                    let kv = KeyValue {
                        key: key.into(),
                        create_revision: prev.map_or(self.rev, |p| p.create_revision),
                        mod_revision: self.rev,
                        version: prev.map_or(1, |p| p.version + 1),
                        value: value.into(),
                        lease,
                    };
                    self.live.insert(key.into(), kv.clone());
                    self.records.push(KeyRecord {
                        revision,
                        tombstone: false,
                        kv,
                    });
                }
                Op::Del(key) => {
                    assert!(self.live.remove(key.as_bytes()).is_some(), "delete {key}");
                    self.records.push(KeyRecord {
                        revision,
                        tombstone: true,
                        kv: KeyValue {
                            key: key.into(),
                            ..KeyValue::default()
                        },
                    });
                }
            }
        }
    }
}

#[test]
fn kvd_snapshots_pass_etcdctl_status_and_restore() {
    if !have_etcd() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let lease_id = 0x694d_7a1e_0000_0001_i64;

    let mut h = History::new();
    h.txn(&[Op::Put("a", "1", 0)]); // 2
    h.txn(&[Op::Put("a", "2", 0)]); // 3
    h.txn(&[Op::Put("b", "x", 0), Op::Put("c", "y", 0)]); // 4
    h.txn(&[Op::Del("b")]); // 5
    h.txn(&[Op::Put("leased", "v", lease_id)]); // 6
    for i in 0..3000 {
        // Enough history for branch pages in the key bucket.
        let key = format!("/bulk/{i:05}");
        h.txn(&[Op::Put(&key, "some value of moderate length", 0)]);
    }
    let big = "B".repeat(200_000); // a value spanning overflow pages
    h.txn(&[Op::Put("big", &big, 0)]);
    h.txn(&[Op::Put("a", "3", 0), Op::Del("c")]); // last revision
    let last_rev = h.rev;

    let member_id = 0x1234_5678_9abc_def0_u64;
    let backend = EtcdBackend {
        kvs: h.records.clone(),
        consistent_index: 5000,
        term: None,
        conf_state: None,
        scheduled_compact_rev: Some(4),
        finished_compact_rev: Some(4),
        leases: vec![Lease {
            id: lease_id,
            ttl: 900,
            remaining_ttl: 0,
        }],
        members: [(
            member_id,
            member_json(
                member_id,
                "kvd1",
                &["http://127.0.0.1:1".into()],
                &[],
                false,
            ),
        )]
        .into(),
        removed_members: Default::default(),
        cluster_version: Some("3.4.0".into()),
        auth_enabled: Some(false),
        auth_revision: 3,
        users: vec![User {
            name: b"alice".to_vec(),
            password: b"$2a$10$abcdefghijklmnopqrstuuKq2GfD7x9Pl9Yy5r0dQqz7F8vS6o1Mi".to_vec(),
            roles: vec!["reader".into()],
            options: None,
        }],
        roles: vec![Role {
            name: b"reader".to_vec(),
            key_permission: vec![Permission {
                perm_type: permission::Type::Read.into(),
                key: b"/bulk/".to_vec(),
                range_end: b"/bulk0".to_vec(),
            }],
        }],
        alarms: Vec::new(),
    };
    let bytes = encode_snapshot_file(&backend).expect("encode");
    let snap = dir.path().join("kvd.snap");
    std::fs::write(&snap, &bytes).expect("write snapshot");
    let snap_str = snap.to_str().expect("utf-8 path");

    // etcdctl reads our file and agrees with our figures.
    assert_status_matches_etcdctl(&snap, &bytes);
    assert_eq!(status(&bytes).expect("status").revision, last_rev);

    // Restore (this verifies the sha256 trailer) and serve it.
    let data_dir = dir.path().join("restored.etcd");
    let peer_port = free_port();
    let peer = format!("http://127.0.0.1:{peer_port}");
    run_ok(
        ETCDCTL,
        &[
            "snapshot",
            "restore",
            snap_str,
            "--name",
            "restored",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
            "--initial-cluster",
            &format!("restored={peer}"),
            "--initial-advertise-peer-urls",
            &peer,
        ],
    );
    let etcd = Etcd::start(&data_dir, "restored", peer_port);

    let got = etcd.ctl_json(&["get", "", "--prefix"]);
    assert_eq!(num(&got["header"]["revision"]), last_rev);
    let kvs = got["kvs"].as_array().expect("kvs");
    assert_eq!(kvs.len(), h.live.len());
    for (kv, want) in kvs.iter().zip(h.live.values()) {
        assert_eq!(b64(&kv["key"]), want.key);
        assert_eq!(b64(&kv["value"]), want.value);
        assert_eq!(num(&kv["create_revision"]), want.create_revision);
        assert_eq!(num(&kv["mod_revision"]), want.mod_revision);
        assert_eq!(num(&kv["version"]), want.version);
        assert_eq!(num(&kv["lease"]), want.lease);
    }

    // History between the compaction and now is readable; before it is compacted.
    let old = etcd.ctl_json(&["get", "a", "--rev", "4"]);
    assert_eq!(b64(&old["kvs"][0]["value"]), b"2");
    assert_eq!(num(&old["kvs"][0]["version"]), 2);
    let b_at_4 = etcd.ctl_json(&["get", "b", "--rev", "4"]);
    assert_eq!(b64(&b_at_4["kvs"][0]["value"]), b"x");
    let compacted = run(
        ETCDCTL,
        &["--endpoints", &etcd.endpoint, "get", "a", "--rev", "3"],
    );
    assert!(!compacted.status.success());
    assert!(String::from_utf8_lossy(&compacted.stderr).contains("compacted"));

    // The lease came back with its key attached; users and roles too.
    let ttl = etcd.ctl_json(&["lease", "timetolive", &format!("{lease_id:x}"), "--keys"]);
    assert_eq!(num(&ttl["granted-ttl"]), 900, "{ttl}");
    let keys: Vec<Vec<u8>> = ttl["keys"]
        .as_array()
        .map(|a| a.iter().map(b64).collect())
        .unwrap_or_default();
    assert_eq!(keys, [b"leased".to_vec()]);
    assert_eq!(
        etcd.ctl(&["user", "get", "alice"]),
        "User: alice\nRoles: reader\n"
    );
    assert!(etcd
        .ctl(&["role", "get", "reader"])
        .contains("[/bulk/, /bulk0) (prefix /bulk/)"));
}

#[test]
fn corrupt_kvd_snapshots_are_refused_by_both() {
    if !have_etcd() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = History::new();
    h.txn(&[Op::Put("k", "v", 0)]);
    let backend = EtcdBackend {
        kvs: h.records,
        consistent_index: 2,
        ..EtcdBackend::default()
    };
    let mut bytes = encode_snapshot_file(&backend).expect("encode");
    bytes[3 * 4096 + 100] ^= 0x01;
    assert!(matches!(
        parse_snapshot_file(&bytes),
        Err(SnapshotError::HashMismatch { .. })
    ));
    let snap = dir.path().join("bad.snap");
    std::fs::write(&snap, &bytes).expect("write");
    let peer = format!("http://127.0.0.1:{}", free_port());
    let out = run(
        ETCDCTL,
        &[
            "snapshot",
            "restore",
            snap.to_str().expect("utf-8 path"),
            "--name",
            "x",
            "--data-dir",
            dir.path().join("x.etcd").to_str().expect("utf-8 path"),
            "--initial-cluster",
            &format!("x={peer}"),
            "--initial-advertise-peer-urls",
            &peer,
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected sha256"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bbolt_files_of_any_page_size_pass_etcdctl_status() {
    if !have_etcd() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // Nested buckets (inline and paged), large values and many keys, through real bbolt's
    // open and consistency check.
    let mut db = Db::new();
    let key = db.bucket_mut(b"key");
    for i in 0..2000i64 {
        key.put(
            Revision {
                main: i + 2,
                sub: 0,
            }
            .to_key()
            .to_vec(),
            vec![b'v'; 50],
        );
    }
    let other = db.bucket_mut(b"other");
    let mut inner = kvd::bbolt::Bucket::new();
    inner.put("x", "1");
    let mut paged = kvd::bbolt::Bucket::new();
    for i in 0..500 {
        paged.put(format!("p{i:04}"), vec![b'p'; 30]);
    }
    paged.put_bucket("deeper", inner.clone());
    other.put_bucket("inline", inner);
    other.put_bucket("paged", paged);
    other.put("large", vec![b'L'; 300_000]);
    db.bucket_mut(b"zempty");
    for page_size in [1024, 4096, 16_384, 65_536] {
        let bytes = kvd::bbolt::write(&db, page_size).expect("write");
        let path = dir.path().join(format!("db-{page_size}"));
        std::fs::write(&path, &bytes).expect("write file");
        assert_status_matches_etcdctl(&path, &bytes);
        let ours = status(&bytes).expect("status");
        assert_eq!(ours.revision, 2001);
        // key: 2000; other: inline, large, paged; zempty: none.
        assert_eq!(ours.total_key, 2003);
    }
}
