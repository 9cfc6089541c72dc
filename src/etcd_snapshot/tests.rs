//! Tests of etcd's layout and the snapshot file layer, without etcd (the differential tests
//! against real etcd live in tests/etcd_snapshot_format.rs).

use prost::Message;

use super::keys::bucket_names as names;
use super::*;
use crate::bbolt::{self, Db};
use crate::proto::authpb::{permission, Permission, UserAddOptions};

fn kv(key: &str, value: &str, create: i64, rev: i64, version: i64, lease: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        create_revision: create,
        mod_revision: rev,
        version,
        value: value.into(),
        lease,
    }
}

fn put(main: i64, sub: i64, kv: KeyValue) -> KeyRecord {
    KeyRecord {
        revision: Revision { main, sub },
        tombstone: false,
        kv,
    }
}

fn tombstone(main: i64, sub: i64, key: &str) -> KeyRecord {
    KeyRecord {
        revision: Revision { main, sub },
        tombstone: true,
        kv: KeyValue {
            key: key.into(),
            ..KeyValue::default()
        },
    }
}

/// A backend with something in every field.
fn sample() -> EtcdBackend {
    EtcdBackend {
        kvs: vec![
            put(2, 0, kv("a", "1", 2, 2, 1, 0)),
            put(3, 0, kv("a", "2", 2, 3, 2, 0)),
            put(4, 0, kv("b", "x", 4, 4, 1, 0)),
            tombstone(5, 0, "b"),
            put(6, 0, kv("c", "in txn", 6, 6, 1, 0)),
            put(6, 1, kv("l", "leased", 6, 6, 1, 0x694d_1234)),
        ],
        consistent_index: 42,
        term: Some(7),
        conf_state: Some(ConfState {
            voters: vec![0x8e9e_05c5_2164_694d],
            learners: vec![0x1234],
        }),
        scheduled_compact_rev: Some(3),
        finished_compact_rev: Some(3),
        leases: vec![Lease {
            id: 0x694d_1234,
            ttl: 60,
            remaining_ttl: 0,
        }],
        members: [(
            0x8e9e_05c5_2164_694d,
            member_json(
                0x8e9e_05c5_2164_694d,
                "n1",
                &["http://127.0.0.1:2380".into()],
                &["http://127.0.0.1:2379".into()],
                false,
            ),
        )]
        .into(),
        removed_members: [0xabc].into(),
        cluster_version: Some("3.4.0".into()),
        auth_enabled: Some(false),
        auth_revision: 7,
        users: vec![User {
            name: b"alice".to_vec(),
            password: b"$2a$10$hash".to_vec(),
            roles: vec!["reader".into()],
            options: Some(UserAddOptions { no_password: false }),
        }],
        roles: vec![Role {
            name: b"reader".to_vec(),
            key_permission: vec![Permission {
                perm_type: permission::Type::Read.into(),
                key: b"/app/".to_vec(),
                range_end: b"/app0".to_vec(),
            }],
        }],
        alarms: vec![AlarmMember {
            member_id: 0x8e9e_05c5_2164_694d,
            alarm: crate::proto::etcdserverpb::AlarmType::Nospace.into(),
        }],
    }
}

#[test]
fn revision_keys_are_etcds() {
    let r = Revision {
        main: 0x0102,
        sub: 3,
    };
    assert_eq!(
        r.to_key(),
        [0, 0, 0, 0, 0, 0, 1, 2, b'_', 0, 0, 0, 0, 0, 0, 0, 3]
    );
    assert_eq!(r.to_record_key(true).last(), Some(&b't'));
    assert_eq!(Revision::from_record_key(&r.to_key()), Ok((r, false)));
    assert_eq!(
        Revision::from_record_key(&r.to_record_key(true)),
        Ok((r, true))
    );
    // Byte order of keys is revision order.
    let a = Revision { main: 255, sub: 9 }.to_key();
    let b = Revision { main: 256, sub: 0 }.to_key();
    assert!(a < b);
    for bad in [&b"short"[..], &[0u8; 16], &[0u8; 17], &[0u8; 19]] {
        assert!(Revision::from_record_key(bad).is_err(), "{bad:?}");
    }
    let mut x = r.to_record_key(true);
    x[17] = b'x';
    assert!(Revision::from_record_key(&x).is_err());
}

#[test]
fn backend_round_trips_through_bolt_and_file() {
    let b = sample();
    let db = b.to_bolt().expect("to_bolt");
    assert_eq!(db.buckets.len(), 10, "every etcd bucket is created");
    assert_eq!(EtcdBackend::from_bolt(&db).expect("from_bolt"), b);

    let file = encode_snapshot_file(&b).expect("encode");
    assert_eq!(file.len() % 512, 32, "etcd recognises the trailer by size");
    assert_eq!(parse_snapshot_file(&file).expect("parse"), b);
    assert_eq!(b.revision(), 6);
}

#[test]
fn layout_bytes_are_etcds() {
    let db = sample().to_bolt().expect("to_bolt");
    let get = |bucket: &[u8], key: &[u8]| {
        db.bucket(bucket)
            .and_then(|b| b.get(key))
            .map(<[u8]>::to_vec)
    };
    assert_eq!(
        get(names::META, b"consistent_index"),
        Some(42u64.to_be_bytes().to_vec())
    );
    assert_eq!(
        get(names::META, b"finishedCompactRev"),
        Some(Revision { main: 3, sub: 0 }.to_key().to_vec())
    );
    assert_eq!(get(names::AUTH, b"authEnabled"), Some(vec![0]));
    assert_eq!(
        get(names::AUTH, b"authRevision"),
        Some(7u64.to_be_bytes().to_vec())
    );
    assert_eq!(
        get(names::CLUSTER, b"clusterVersion"),
        Some(b"3.4.0".to_vec())
    );
    assert_eq!(
        get(names::MEMBERS_REMOVED, b"abc"),
        Some(b"removed".to_vec())
    );
    assert!(get(names::MEMBERS, b"8e9e05c52164694d").is_some());
    assert_eq!(
        get(names::LEASE, &0x694d_1234i64.to_be_bytes()).map(|v| Lease::decode(&v[..])),
        Some(Ok(Lease {
            id: 0x694d_1234,
            ttl: 60,
            remaining_ttl: 0
        }))
    );
    // A tombstone's value is a KeyValue with only the key.
    let t = get(
        names::KEY,
        &Revision { main: 5, sub: 0 }.to_record_key(true),
    )
    .expect("tomb");
    assert_eq!(t, vec![0x0a, 0x01, b'b']);
    // leasepb.Lease encodes as etcd's gogo-generated code does.
    assert_eq!(
        Lease {
            id: 1,
            ttl: 100,
            remaining_ttl: 0
        }
        .encode_to_vec(),
        vec![0x08, 0x01, 0x10, 100]
    );
}

#[test]
fn optional_keys_stay_absent() {
    let b = EtcdBackend::default();
    let db = b.to_bolt().expect("to_bolt");
    let meta = db.bucket(names::META).expect("meta");
    assert_eq!(meta.len(), 1, "only consistent_index");
    assert!(db
        .bucket(names::AUTH)
        .and_then(|a| a.get(b"authEnabled"))
        .is_none());
    assert!(db.bucket(names::CLUSTER).is_some_and(|c| c.is_empty()));
    assert_eq!(EtcdBackend::from_bolt(&db).expect("from_bolt"), b);
}

#[test]
fn missing_or_bad_trailer_is_refused() {
    let file = encode_snapshot_file(&sample()).expect("encode");
    let bare = &file[..file.len() - 32];

    let err = parse_snapshot_file(bare).expect_err("no trailer");
    assert_eq!(err, SnapshotError::MissingHash { size: bare.len() });
    assert!(err.to_string().contains("--skip-hash-check"));
    let opts = ParseOptions {
        skip_hash_check: true,
    };
    assert_eq!(
        parse_snapshot_file_with(bare, opts).expect("skip"),
        sample()
    );

    let mut flipped = file.clone();
    flipped[5000] ^= 0x40;
    let err = parse_snapshot_file(&flipped).expect_err("bad hash");
    assert!(matches!(err, SnapshotError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("sha256"));

    let mut bad_trailer = file.clone();
    let n = bad_trailer.len();
    bad_trailer[n - 1] ^= 1;
    assert!(matches!(
        parse_snapshot_file(&bad_trailer),
        Err(SnapshotError::HashMismatch { .. })
    ));
    // Skipping the check reads past a wrong trailer.
    assert!(parse_snapshot_file_with(&bad_trailer, opts).is_ok());
}

#[test]
fn truncated_snapshots_are_refused() {
    let file = encode_snapshot_file(&sample()).expect("encode");
    // Cut to a size that still looks like it has a trailer: the hash no longer matches.
    let cut = &file[..file.len() - 4096];
    assert!(matches!(
        parse_snapshot_file(cut),
        Err(SnapshotError::HashMismatch { .. })
    ));
    // With the check skipped, bbolt itself notices the missing pages.
    let err = parse_snapshot_file_with(
        cut,
        ParseOptions {
            skip_hash_check: true,
        },
    )
    .expect_err("truncated");
    assert!(
        matches!(err, SnapshotError::Bolt(bbolt::BoltError::Truncated { .. })),
        "{err}"
    );
    // Any other cut loses the trailer shape.
    assert!(matches!(
        parse_snapshot_file(&file[..file.len() - 1]),
        Err(SnapshotError::MissingHash { .. })
    ));
}

/// A snapshot file around any bbolt database.
fn snapshot_of(db: &Db) -> Vec<u8> {
    use sha2::Digest;
    let mut f = bbolt::write(db, 4096).expect("write");
    let d = sha2::Sha256::digest(&f);
    f.extend_from_slice(&d);
    f
}

#[test]
fn foreign_files_are_refused() {
    let err = parse_snapshot_file(&[0u8; 512 + 32]).expect_err("zeros");
    assert!(matches!(err, SnapshotError::HashMismatch { .. }));

    let mut junk = vec![7u8; 4096 * 3];
    let d = <sha2::Sha256 as sha2::Digest>::digest(&junk);
    junk.extend_from_slice(&d);
    let err = parse_snapshot_file(&junk).expect_err("junk with a valid trailer");
    assert!(
        matches!(err, SnapshotError::Bolt(bbolt::BoltError::NotBolt(_))),
        "{err}"
    );
    assert!(err.to_string().contains("not a bbolt database"));

    // A bbolt file, but not etcd's.
    let mut other = Db::new();
    other.bucket_mut(b"widgets").put("w", "1");
    let err = parse_snapshot_file(&snapshot_of(&other)).expect_err("no key bucket");
    assert_eq!(err, SnapshotError::MissingBucket("key".into()));
    assert_eq!(
        err.to_string(),
        "snapshot is not an etcd backend: it has no \"key\" bucket"
    );
    other.bucket_mut(b"key");
    assert_eq!(
        parse_snapshot_file(&snapshot_of(&other)),
        Err(SnapshotError::MissingBucket("meta".into()))
    );
}

#[test]
fn bad_records_are_refused() {
    let base = sample().to_bolt().expect("to_bolt");
    /// Bucket, key, value, and a phrase the error must contain.
    type Case<'a> = (&'a [u8], Vec<u8>, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (names::KEY, b"not-a-revision".to_vec(), vec![], "17 or 18"),
        (
            names::KEY,
            Revision { main: 9, sub: 0 }.to_key().to_vec(),
            vec![0xff, 0xff],
            "mvccpb.KeyValue",
        ),
        (
            names::META,
            b"consistent_index".to_vec(),
            vec![1, 2],
            "expected 8",
        ),
        (
            names::META,
            b"finishedCompactRev".to_vec(),
            vec![0; 8],
            "17-byte",
        ),
        (
            names::LEASE,
            5i64.to_be_bytes().to_vec(),
            Lease {
                id: 6,
                ttl: 1,
                remaining_ttl: 0,
            }
            .encode_to_vec(),
            "value is lease",
        ),
        (names::MEMBERS, b"xyz".to_vec(), b"{}".to_vec(), "hex id"),
        (
            names::AUTH_USERS,
            b"bob".to_vec(),
            User::default().encode_to_vec(),
            "value is user",
        ),
    ];
    for (bucket, key, value, want) in cases {
        let mut db = base.clone();
        db.bucket_mut(bucket).put(key, value);
        let err = EtcdBackend::from_bolt(&db).expect_err(want);
        assert!(matches!(err, SnapshotError::BadRecord { .. }), "{err}");
        assert!(err.to_string().contains(want), "{err} lacks {want}");
    }
}

#[test]
fn invalid_backends_are_not_written() {
    let mut b = sample();
    b.kvs.push(tombstone(6, 1, "l"));
    let err = b.to_bolt().expect_err("duplicate revision");
    assert!(err.to_string().contains("revision 6_1"), "{err}");

    let mut b = sample();
    b.users.push(b.users[0].clone());
    assert!(b
        .to_bolt()
        .expect_err("dup user")
        .to_string()
        .contains("alice"));

    let mut b = sample();
    b.roles.push(Role::default());
    assert!(b
        .to_bolt()
        .expect_err("empty role")
        .to_string()
        .contains("empty role"));
}

#[test]
fn etcd_35s_term_and_conf_state_are_written_as_etcd_writes_them() {
    let db = sample().to_bolt().expect("bolt");
    let meta = db.bucket(names::META).expect("meta");
    assert_eq!(meta.get(b"term"), Some(&7u64.to_be_bytes()[..]));
    assert_eq!(
        meta.get(b"confState"),
        Some(&br#"{"voters":[10276657743932975437],"learners":[4660],"auto_leave":false}"#[..])
    );
    let back = EtcdBackend::from_bolt(&db).expect("read back");
    assert_eq!(back, sample());
    // etcd 3.5.1's own value for a one-member cluster reads back.
    let one = ConfState::from_json(br#"{"voters":[5662688015068518467],"auto_leave":false}"#);
    assert_eq!(
        one,
        Some(ConfState {
            voters: vec![5662688015068518467],
            learners: vec![],
        })
    );
}

#[test]
fn status_counts_every_entry() {
    let b = sample();
    let file = encode_snapshot_file(&b).expect("encode");
    let s = status(&file).expect("status");
    assert_eq!(s.revision, 6);
    // key 6 + meta 5 (with etcd 3.5's term and confState) + lease 1 + members 1 + removed 1
    // + cluster 1 + auth 2 + users 1 + roles 1 + alarm 1.
    assert_eq!(s.total_key, 20);
    assert_eq!(s.total_size, (file.len() - 32) as u64);
    // The same file without its trailer has the same status.
    assert_eq!(status(&file[..file.len() - 32]).expect("bare"), s);
    // Changing any value changes the hash.
    let mut other = b.clone();
    other.consistent_index += 1;
    let s2 = status(&encode_snapshot_file(&other).expect("encode")).expect("status");
    assert_ne!(s2.hash, s.hash);
    assert_eq!(
        SnapshotStatus::of(&EtcdBackend::default().to_bolt().expect("db"))
            .expect("status")
            .revision,
        0
    );
}

#[test]
fn large_histories_round_trip() {
    let mut b = EtcdBackend::default();
    for i in 0..20_000i64 {
        let key = format!("/registry/pods/ns-{}/pod-{i}", i % 17);
        b.kvs.push(put(
            i + 2,
            0,
            kv(&key, &"v".repeat(100), i + 2, i + 2, 1, 0),
        ));
    }
    b.consistent_index = 20_010;
    let file = encode_snapshot_file(&b).expect("encode");
    assert!(file.len() > 2_000_000);
    assert_eq!(parse_snapshot_file(&file).expect("parse"), b);
    assert_eq!(status(&file).expect("status").revision, 20_001);
}
