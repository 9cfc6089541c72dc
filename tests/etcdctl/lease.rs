//! Lease scenarios: grant, timetolive (with keys), list, keep-alive (once and streaming),
//! revoke, expiry of attached keys, and the unknown-lease errors.

use std::time::Duration;

use crate::differential::{differential, Transcript};
use crate::harness::{eventually, kvs, lease_id, Bg, Server};

#[test]
fn lease_lifecycle() {
    require_tools!();
    differential(lease_lifecycle_scenario);
}

fn lease_lifecycle_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let a = lease_id(&t.ok(&["lease", "grant", "600"]).stdout);
    let g = t.ok(&["lease", "grant", "300", "-w", "json"]).json();
    assert_eq!(g["TTL"], 300);
    assert_eq!(g["Error"], "");
    let b = format!("{:016x}", g["ID"].as_u64().expect("lease ID"));
    assert_ne!(a, b);
    t.run(&["lease", "grant", "9000000001"]).fails_with(
        1,
        "Error: failed to grant lease (etcdserver: too large lease TTL)",
    );
    t.ok(&["lease", "grant", "9000000000"]);
    t.run(&["lease", "grant", "abc"]).fails_with(
        128,
        r#"Error: bad TTL (strconv.ParseInt: parsing "abc": invalid syntax)"#,
    );
    assert_eq!(
        s.revision(),
        1,
        "granting leases does not bump the revision"
    );

    t.ok(&["put", "k1", "v", "--lease", &a]);
    t.ok(&["put", "k2", "v", "--lease", &a]);
    t.ok(&["put", "k3", "v", "--lease", &b]);
    t.ok(&["put", "plain", "v"]);
    let ttl = t.ok(&["lease", "timetolive", &a, "--keys"]).stdout;
    assert!(
        ttl.starts_with(&format!("lease {a} granted with TTL(600s), remaining(")),
        "{ttl}"
    );
    assert!(ttl.contains("), attached keys(["), "{ttl}");
    t.ok(&["lease", "timetolive", &a]);
    let j = t
        .ok(&["lease", "timetolive", &b, "--keys", "-w", "json"])
        .json();
    assert_eq!(j["granted-ttl"], 300);
    let remaining = j["ttl"].as_i64().expect("ttl");
    assert!((1..=300).contains(&remaining), "{j}");
    assert_eq!(j["keys"], serde_json::json!(["azM="]));
    let l = t.run_unordered(&["lease", "list"]).ok().stdout;
    assert!(l.starts_with("found 3 leases\n"), "{l}");
    assert!(l.contains(&a) && l.contains(&b), "{l}");
    t.run_unordered(&["lease", "list", "-w", "json"]);

    t.ok(&["lease", "keep-alive", "--once", &a])
        .prints(&format!("lease {a} keepalived with TTL(600)\n"));
    let k = t
        .ok(&["lease", "keep-alive", "--once", &b, "-w", "json"])
        .json();
    assert_eq!(k["TTL"], 300);

    // revoking deletes the attached keys in one revision
    assert_eq!(s.revision(), 5);
    t.ok(&["lease", "revoke", &a])
        .prints(&format!("lease {a} revoked\n"));
    assert_eq!(s.revision(), 6);
    t.ok(&["get", "k", "--prefix", "--keys-only"])
        .prints("k3\n\n");
    let r = t.ok(&["get", "k3", "-w", "json"]).json();
    assert_eq!(format!("{:016x}", kvs(&r)[0].lease), b);
    t.ok(&["lease", "timetolive", &a])
        .prints(&format!("lease {a} already expired\n"));
    let j = t.ok(&["lease", "timetolive", &a, "-w", "json"]).json();
    assert_eq!(j["ttl"], -1);
    // unknown / revoked lease errors
    t.run(&["lease", "revoke", &a]).fails_with(
        1,
        "Error: failed to revoke lease (etcdserver: requested lease not found)",
    );
    t.run(&["lease", "keep-alive", "--once", &a])
        .fails_with(2, "Error: etcdserver: requested lease not found");
    t.run(&["put", "k9", "v", "--lease", &a])
        .fails_with(1, "Error: etcdserver: requested lease not found");
    t.run(&["put", "k9", "v", "--lease", "1234"])
        .fails_with(1, "Error: etcdserver: requested lease not found");
    t.ok(&["lease", "timetolive", "1234"])
        .prints("lease 0000000000001234 already expired\n");
    t.run(&["put", "k9", "v", "--lease", "xyz"]);
    t.run(&["lease", "revoke"]);
    assert_eq!(s.revision(), 6);
    t.ok(&["lease", "revoke", &b]);
    t.ok(&["get", "", "--prefix", "--keys-only"])
        .prints("plain\n\n");
    t
}

#[test]
fn lease_expiry_deletes_keys() {
    require_tools!();
    differential(lease_expiry_scenario);
}

/// A TTL-2 lease that nobody keeps alive expires; its keys vanish in one revision.
fn lease_expiry_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    // the minimum TTL with the default 1000 ms election timeout is 2 s
    let l = lease_id(&t.ok(&["lease", "grant", "1"]).stdout);
    let m = t.ok(&["lease", "timetolive", &l]).stdout;
    assert!(m.contains(" granted with TTL(2s), remaining("), "{m}");
    let m = t.ok(&["lease", "grant", "0"]).stdout;
    assert!(m.ends_with(" granted with TTL(2s)\n"), "{m}");
    t.ok(&["put", "e1", "x", "--lease", &l]);
    t.ok(&["put", "e2", "y", "--lease", &l]);
    t.ok(&["put", "stay", "z"]);
    assert_eq!(s.revision(), 4);
    let gone = eventually(Duration::from_secs(15), || {
        let out = s.ctl(&["get", "e", "--prefix", "--keys-only"]).ok();
        out.stdout.is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "keys of an expired lease still there after 15 s"
    );
    t.note("expired", "");
    t.ok(&["get", "", "--prefix"]).prints("stay\nz\n");
    assert_eq!(s.revision(), 5, "expiry deletes both keys at one revision");
    t.ok(&["get", "e1", "--rev", "4"]).prints("e1\nx\n");
    t.ok(&["lease", "timetolive", &l])
        .prints(&format!("lease {l} already expired\n"));
    t.run(&["lease", "keep-alive", "--once", &l])
        .fails_with(2, "Error: etcdserver: requested lease not found");
    t.run(&["lease", "revoke", &l]);
    t
}

#[test]
fn lease_keep_alive_stream() {
    require_tools!();
    differential(lease_keep_alive_scenario);
}

/// `lease keep-alive` prints one line per response (every TTL/3) and keeps the key alive
/// beyond its TTL; after the client stops, the lease expires.
fn lease_keep_alive_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let l = lease_id(&t.ok(&["lease", "grant", "3"]).stdout);
    t.ok(&["put", "ka", "v", "--lease", &l]);
    let mut ka = Bg::start(s, &["lease", "keep-alive", &l]);
    // 4 responses at TTL/3 = 1 s intervals take about 3 s, longer than the TTL
    let lines = ka.lines(4, Duration::from_secs(20));
    let want = format!("lease {l} keepalived with TTL(3)");
    assert!(lines.iter().all(|x| *x == want), "{lines:?}");
    t.note("keep-alive output", &lines.join("\n"));
    t.ok(&["get", "ka"]).prints("ka\nv\n");
    let ttl = t.ok(&["lease", "timetolive", &l, "-w", "json"]).json();
    assert!(ttl["ttl"].as_i64().unwrap_or(0) > 0, "{ttl}");
    ka.terminate();
    let gone = eventually(Duration::from_secs(15), || {
        s.ctl(&["get", "ka"]).ok().stdout.is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "lease not expired 15 s after keep-alive stopped"
    );
    t.note("expired after keep-alive stopped", "");
    t.ok(&["lease", "timetolive", &l])
        .prints(&format!("lease {l} already expired\n"));
    t
}
