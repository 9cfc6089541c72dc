//! KV scenarios: put/get/del with every etcdctl flag, and etcd's revision numbering.

use crate::differential::{differential, Transcript};
use crate::harness::{header_revision, kvs, kvs_in, pairs, Kv, Server};

fn kv(key: &str, value: &str, create: i64, modified: i64, version: i64) -> Kv {
    Kv {
        key: key.into(),
        value: value.into(),
        create,
        modified,
        version,
        lease: 0,
    }
}

#[test]
fn put_get_revisions() {
    require_tools!();
    differential(put_get_revisions_scenario);
}

/// A fresh store is at revision 1; each put bumps it by one; version counts puts since
/// creation; create_revision stays.
fn put_get_revisions_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let r = t.ok(&["get", "foo", "-w", "json"]).json();
    assert_eq!(header_revision(&r), 1, "fresh store must be at revision 1");
    assert!(kvs(&r).is_empty());
    t.ok(&["get", "foo"]).prints("");
    t.ok(&["put", "foo", "bar"]).prints("OK\n");
    t.ok(&["get", "foo"]).prints("foo\nbar\n");
    let r = t.ok(&["get", "foo", "-w", "json"]).json();
    assert_eq!(header_revision(&r), 2);
    assert_eq!(kvs(&r), vec![kv("foo", "bar", 2, 2, 1)]);
    assert_eq!(r["count"], 1);
    let p = t.ok(&["put", "foo", "baz", "-w", "json"]).json();
    assert_eq!(header_revision(&p), 3);
    assert!(p.get("prev_kv").is_none());
    t.ok(&["put", "foo", "qux", "--prev-kv"])
        .prints("OK\nfoo\nbaz\n");
    let p = t
        .ok(&["put", "foo", "quux", "--prev-kv", "-w", "json"])
        .json();
    assert_eq!(header_revision(&p), 5);
    assert_eq!(kvs_in(&p, "prev_kv"), vec![kv("foo", "qux", 2, 4, 3)]);
    // --prev-kv on a new key prints only OK
    t.ok(&["put", "new", "v", "--prev-kv"]).prints("OK\n");
    let r = t.ok(&["get", "foo", "-w", "json"]).json();
    assert_eq!(header_revision(&r), 6);
    assert_eq!(kvs(&r), vec![kv("foo", "quux", 2, 5, 4)]);
    t.ok(&["get", "foo", "-w", "fields"]);
    t.ok(&["get", "foo", "-w", "simple"]).prints("foo\nquux\n");
    // values with spaces, newlines and an empty value
    t.ok(&["put", "sp", "a b  c"]);
    t.ok(&["get", "sp"]).prints("sp\na b  c\n");
    t.ok(&["put", "nl", "line1\nline2"]);
    t.ok(&["get", "nl"]).prints("nl\nline1\nline2\n");
    t.ok(&["put", "empty", ""]);
    let r = t.ok(&["get", "empty", "-w", "json"]).json();
    assert_eq!(kvs(&r), vec![kv("empty", "", 9, 9, 1)]);
    t.ok(&["get", "empty"]).prints("empty\n\n");
    // value from stdin when only the key is given
    // the value read from stdin keeps its trailing newline
    t.run_stdin(&["put", "fromstdin"], "piped value\n")
        .prints("OK\n");
    t.ok(&["get", "fromstdin", "--print-value-only"])
        .prints("piped value\n\n");
    assert_eq!(s.revision(), 10);
    t
}

/// Keys a, ab, abc, b, c with distinct values, versions, create and mod revisions
/// (revisions 2..=16).
fn load_sort_fixture(t: &mut Transcript) {
    for (k, v) in [
        ("a", "v3"),
        ("ab", "v1"),
        ("abc", "v2"),
        ("b", "v5"),
        ("c", "v4"),
    ] {
        t.ok(&["put", k, v]);
    }
    for (k, v, n) in [
        ("ab", "v1", 1),
        ("abc", "v2", 2),
        ("b", "v5", 3),
        ("c", "v4", 4),
    ] {
        for _ in 0..n {
            t.ok(&["put", k, v]);
        }
    }
}

#[test]
fn get_range_flags() {
    require_tools!();
    differential(get_range_flags_scenario);
}

fn get_range_flags_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    load_sort_fixture(&mut t);
    let all = t.ok(&["get", "", "--prefix", "-w", "json"]).json();
    assert_eq!(header_revision(&all), 16);
    assert_eq!(
        kvs(&all),
        vec![
            kv("a", "v3", 2, 2, 1),
            kv("ab", "v1", 3, 7, 2),
            kv("abc", "v2", 4, 9, 3),
            kv("b", "v5", 5, 12, 4),
            kv("c", "v4", 6, 16, 5),
        ]
    );
    t.ok(&["get", "a", "--prefix"])
        .prints("a\nv3\nab\nv1\nabc\nv2\n");
    t.ok(&["get", "ab", "--prefix", "--keys-only"])
        .prints("ab\n\nabc\n\n");
    t.ok(&["get", "a", "--prefix", "--print-value-only"])
        .prints("v3\nv1\nv2\n");
    // range end as the second argument: [a, b)
    t.ok(&["get", "a", "b"]).prints("a\nv3\nab\nv1\nabc\nv2\n");
    t.ok(&["get", "ab", "c", "--keys-only"])
        .prints("ab\n\nabc\n\nb\n\n");
    t.ok(&["get", "b", "--from-key"]).prints("b\nv5\nc\nv4\n");
    t.ok(&["get", "", "--from-key", "--keys-only"])
        .prints("a\n\nab\n\nabc\n\nb\n\nc\n\n");
    // limit: more=true and count is the full count
    let l = t
        .ok(&["get", "a", "--prefix", "--limit", "2", "-w", "json"])
        .json();
    assert_eq!(pairs(&l), vec!["a=v3", "ab=v1"]);
    assert_eq!(l["more"], true);
    assert_eq!(l["count"], 3);
    t.ok(&["get", "a", "--prefix", "--limit", "2"])
        .prints("a\nv3\nab\nv1\n");
    let l = t
        .ok(&["get", "a", "--prefix", "--limit", "3", "-w", "json"])
        .json();
    assert!(l.get("more").is_none(), "more must be omitted (false): {l}");
    // sorting: every target, both orders, with and without limit
    let keys = |t: &mut Transcript, extra: &[&str]| -> String {
        let mut args = vec!["get", "", "--prefix", "--keys-only"];
        args.extend_from_slice(extra);
        t.ok(&args)
            .stdout
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(keys(&mut t, &["--order", "ASCEND"]), "a,ab,abc,b,c");
    assert_eq!(keys(&mut t, &["--order", "DESCEND"]), "c,b,abc,ab,a");
    assert_eq!(keys(&mut t, &["--order", "descend", "--limit", "2"]), "c,b");
    assert_eq!(
        keys(&mut t, &["--sort-by", "KEY", "--order", "DESCEND"]),
        "c,b,abc,ab,a"
    );
    assert_eq!(keys(&mut t, &["--sort-by", "VALUE"]), "ab,abc,a,c,b");
    assert_eq!(
        keys(&mut t, &["--sort-by", "VALUE", "--order", "DESCEND"]),
        "b,c,a,abc,ab"
    );
    assert_eq!(
        keys(&mut t, &["--sort-by", "VALUE", "--limit", "2"]),
        "ab,abc"
    );
    assert_eq!(
        keys(&mut t, &["--sort-by", "VERSION", "--order", "DESCEND"]),
        "c,b,abc,ab,a"
    );
    assert_eq!(
        keys(&mut t, &["--sort-by", "version", "--order", "ASCEND"]),
        "a,ab,abc,b,c"
    );
    assert_eq!(
        keys(&mut t, &["--sort-by", "CREATE", "--order", "DESCEND"]),
        "c,b,abc,ab,a"
    );
    assert_eq!(
        keys(
            &mut t,
            &["--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "3"]
        ),
        "c,b,abc"
    );
    assert_eq!(
        keys(&mut t, &["--sort-by", "MODIFY", "--order", "ASCEND"]),
        "a,ab,abc,b,c"
    );
    // etcdctl 3.4's get has no --min/max-mod/create-revision flags (3.5 added them), so
    // those RangeRequest fields cannot be driven from here.
    // historical reads
    t.ok(&["get", "a", "--prefix", "--rev", "3"])
        .prints("a\nv3\nab\nv1\n");
    let h = t.ok(&["get", "ab", "--rev", "6", "-w", "json"]).json();
    assert_eq!(
        header_revision(&h),
        16,
        "header revision is the current one"
    );
    assert_eq!(kvs(&h), vec![kv("ab", "v1", 3, 3, 1)]);
    t.ok(&["get", "c", "--rev", "5"]).prints("");
    t.ok(&["get", "", "--prefix", "--rev", "1"]).prints("");
    // serializable reads
    t.ok(&["get", "abc", "--consistency=s"]).prints("abc\nv2\n");
    t.ok(&["get", "a", "--prefix", "--consistency", "s", "--limit", "1"])
        .prints("a\nv3\n");
    // output formats
    t.ok(&["get", "ab", "-w", "fields"]);
    t.ok(&["get", "a", "--prefix", "--limit", "1", "-w", "fields"]);
    t.ok(&["get", "a", "--prefix", "--keys-only", "-w", "json"]);
    t.ok(&["get", "a", "--prefix", "--hex"])
        .prints("\\x61\n\\x76\\x33\n\\x61\\x62\n\\x76\\x31\n\\x61\\x62\\x63\n\\x76\\x32\n");
    t.run(&["get", "a", "-w", "table"])
        .fails_with(4, "Error: table not supported as output format");
    // client-side flag errors (exit codes included)
    t.run(&["get", "a", "--prefix", "--from-key"]);
    t.run(&["get", "a", "b", "--prefix"]);
    t.run(&["get", "a", "--consistency", "x"]);
    t.run(&["get", "a", "--order", "UP"]);
    t.run(&["get", "a", "--sort-by", "SIZE"]);
    t.run(&["get", "a", "--print-value-only", "-w", "json"]);
    t.run(&["get"]);
    t
}

#[test]
fn delete_variants() {
    require_tools!();
    differential(delete_variants_scenario);
}

fn delete_variants_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    for k in ["k1", "k2", "k3", "p/a", "p/b", "p/c", "q", "r", "s"] {
        t.ok(&["put", k, &format!("val-{k}")]);
    }
    assert_eq!(s.revision(), 10);
    // missing key: prints 0 and does not bump the revision
    t.ok(&["del", "nope"]).prints("0\n");
    assert_eq!(s.revision(), 10);
    t.ok(&["del", "k1"]).prints("1\n");
    assert_eq!(s.revision(), 11);
    t.ok(&["del", "k2", "--prev-kv"]).prints("1\nk2\nval-k2\n");
    let d = t.ok(&["del", "k3", "--prev-kv", "-w", "json"]).json();
    assert_eq!(header_revision(&d), 13);
    assert_eq!(d["deleted"], 1);
    assert_eq!(kvs_in(&d, "prev_kvs"), vec![kv("k3", "val-k3", 4, 4, 1)]);
    // a range delete is one revision
    t.ok(&["del", "p/", "--prefix", "--prev-kv"])
        .prints("3\np/a\nval-p/a\np/b\nval-p/b\np/c\nval-p/c\n");
    assert_eq!(s.revision(), 14);
    t.ok(&["del", "p/", "--prefix"]).prints("0\n");
    assert_eq!(s.revision(), 14);
    // explicit range [q, s)
    t.ok(&["del", "q", "s"]).prints("2\n");
    assert_eq!(s.revision(), 15);
    t.ok(&["get", "", "--prefix", "--keys-only"])
        .prints("s\n\n");
    t.ok(&["put", "t", "1"]);
    t.ok(&["del", "s", "--from-key"]).prints("2\n");
    t.ok(&["get", "", "--from-key"]).prints("");
    let d = t.ok(&["del", "zz", "-w", "json"]).json();
    assert_eq!(header_revision(&d), 17);
    assert!(d.get("deleted").is_none(), "deleted:0 is omitted: {d}");
    // history survives deletion
    t.ok(&["get", "k1", "--rev", "10"]).prints("k1\nval-k1\n");
    // re-creating a deleted key starts a new generation: version 1, new create revision
    t.ok(&["put", "k1", "again"]);
    let r = t.ok(&["get", "k1", "-w", "json"]).json();
    assert_eq!(kvs(&r), vec![kv("k1", "again", 18, 18, 1)]);
    t.run(&["del"]);
    t.run(&["del", "a", "b", "--prefix"]);
    t
}

#[test]
fn put_ignore_value_and_lease() {
    require_tools!();
    differential(put_ignore_scenario);
}

fn put_ignore_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let lease = crate::harness::lease_id(&t.ok(&["lease", "grant", "600"]).stdout);
    t.ok(&["put", "k", "v1", "--lease", &lease]).prints("OK\n");
    let r = t.ok(&["get", "k", "-w", "json"]).json();
    let k = &kvs(&r)[0];
    assert_eq!(format!("{:016x}", k.lease), lease);
    assert_eq!((k.create, k.modified, k.version), (2, 2, 1));
    // --ignore-value keeps the value (and bumps version/mod_revision); without
    // --lease the put detaches the lease
    t.ok(&["put", "k", "--ignore-value"]).prints("OK\n");
    let r = t.ok(&["get", "k", "-w", "json"]).json();
    assert_eq!(kvs(&r), vec![kv("k", "v1", 2, 3, 2)]);
    // --ignore-lease keeps the lease, --ignore-value with --lease keeps the value
    t.ok(&["put", "k", "--ignore-value", "--lease", &lease])
        .prints("OK\n");
    t.ok(&["put", "k", "v2", "--ignore-lease"]).prints("OK\n");
    let r = t.ok(&["get", "k", "-w", "json"]).json();
    assert_eq!(format!("{:016x}", kvs(&r)[0].lease), lease);
    assert_eq!((kvs(&r)[0].value.as_str(), kvs(&r)[0].version), ("v2", 4));
    t.ok(&["put", "k", "--ignore-value", "--ignore-lease", "--prev-kv"])
        .prints("OK\nk\nv2\n");
    let r = t.ok(&["get", "k", "-w", "json"]).json();
    assert_eq!(format!("{:016x}", kvs(&r)[0].lease), lease);
    t.ok(&["put", "k", "v3"]);
    let r = t.ok(&["get", "k", "-w", "json"]).json();
    assert_eq!(kvs(&r)[0].lease, 0, "plain put detaches the lease");
    t.ok(&["lease", "timetolive", &lease, "--keys"]);
    // errors
    t.run(&["put", "missing", "--ignore-value"])
        .fails_with(1, "Error: etcdserver: key not found");
    t.run(&["put", "missing", "x", "--ignore-lease"])
        .fails_with(1, "Error: etcdserver: key not found");
    t.run(&["put", "k", "x", "--ignore-value"]).fails_with(
        128,
        "Error: put command needs only 1 argument when 'ignore-value' is set",
    );
    t.run(&["put", "k", "x", "--lease", &lease, "--ignore-lease"]);
    assert_eq!(s.revision(), 7, "failed puts must not bump the revision");
    t
}
