//! Txn scenarios: `etcdctl txn` from a pipe (plain and `-i`), every compare target etcdctl
//! 3.4 can send, both branches, revision accounting, and the server's txn errors.

use crate::differential::{differential, differential_with, Transcript};
use crate::harness::{header_revision, kvs, pairs, Server};

/// Builds etcdctl's txn input: compares, success ops, failure ops, each block ended by a
/// blank line.
fn txn_input(compares: &[&str], success: &[&str], failure: &[&str]) -> String {
    let mut s = String::new();
    for block in [compares, success, failure] {
        for l in block {
            s.push_str(l);
            s.push('\n');
        }
        s.push('\n');
    }
    s
}

#[test]
fn txn_branches_and_targets() {
    require_tools!();
    differential(txn_branches_scenario);
}

fn txn_branches_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "k", "v1"]); // rev 2
    t.ok(&["put", "k", "v2"]); // rev 3, version 2, create 2
    t.ok(&["put", "other", "o"]); // rev 4

    // success branch: puts in one txn share one revision; a get after a put in the same
    // txn sees the put
    let input = txn_input(
        &[r#"value("k") = "v2""#],
        &["put t1 a", "put t2 b", "get t1", "get k"],
        &["put f x"],
    );
    t.run_stdin(&["txn"], &input)
        .prints("SUCCESS\n\nOK\n\nOK\n\nt1\na\n\nk\nv2\n");
    let r = t.ok(&["get", "t", "--prefix", "-w", "json"]).json();
    assert_eq!(header_revision(&r), 5, "one txn = one revision");
    assert!(kvs(&r).iter().all(|kv| kv.modified == 5 && kv.create == 5));
    t.ok(&["get", "f"]).prints("");

    // failure branch
    let input = txn_input(
        &[r#"value("k") = "nope""#],
        &["put f x"],
        &["put t1 c", "del t2", "get t --prefix"],
    );
    t.run_stdin(&["txn"], &input)
        .prints("FAILURE\n\nOK\n\n1\n\nt1\nc\n");
    assert_eq!(s.revision(), 6);

    // every comparison target and operator etcdctl can express
    let cases: &[(&str, bool)] = &[
        (r#"value("k") = "v2""#, true),
        (r#"value("k") != "v2""#, false),
        (r#"value("k") > "v1""#, true),
        (r#"value("k") < "v1""#, false),
        (r#"val("k") < "v3""#, true),
        (r#"version("k") = "2""#, true),
        (r#"ver("k") > "1""#, true),
        (r#"version("k") < "2""#, false),
        (r#"version("k") != "2""#, false),
        (r#"create("k") = "2""#, true),
        (r#"c("k") > "2""#, false),
        (r#"mod("k") = "3""#, true),
        (r#"m("k") < "3""#, false),
        (r#"mod("k") > "2""#, true),
        // a missing key: version/create/mod are 0; a value compare always fails
        (r#"version("missing") = "0""#, true),
        (r#"create("missing") = "0""#, true),
        (r#"mod("missing") < "1""#, true),
        (r#"value("missing") = """#, false),
        (r#"value("missing") != "x""#, false),
    ];
    for (cmp, expect) in cases {
        let out = t.run_stdin(&["txn"], &txn_input(&[cmp], &["get k"], &[]));
        let want = if *expect {
            "SUCCESS\n\nk\nv2\n"
        } else {
            "FAILURE\n"
        };
        assert_eq!(out.stdout, want, "compare {cmp}");
    }
    // several compares are ANDed
    let out = t.run_stdin(
        &["txn"],
        &txn_input(
            &[
                r#"value("k") = "v2""#,
                r#"version("other") = "1""#,
                r#"mod("k") = "4""#,
            ],
            &["put x 1"],
            &["put y 1"],
        ),
    );
    assert_eq!(out.stdout, "FAILURE\n\nOK\n");
    // read-only txns and an empty failure branch do not bump the revision
    assert_eq!(s.revision(), 7);
    t.run_stdin(&["txn"], &txn_input(&[], &["get k"], &[]))
        .prints("SUCCESS\n\nk\nv2\n");
    t.run_stdin(
        &["txn"],
        &txn_input(&[r#"value("k") = "zz""#], &["put z 1"], &[]),
    )
    .prints("FAILURE\n");
    assert_eq!(s.revision(), 7);

    // ops with flags: range get, prefix delete, historical get
    t.ok(&["put", "p/1", "a"]);
    t.ok(&["put", "p/2", "b"]); // rev 9
    t.run_stdin(
        &["txn"],
        &txn_input(
            &[],
            &[
                "get p/ --prefix --keys-only",
                "get k --rev 2",
                "del p/ --prefix",
            ],
            &[],
        ),
    )
    .prints("SUCCESS\n\np/1\n\np/2\n\n\nk\nv1\n\n2\n");
    assert_eq!(s.revision(), 10);
    t.ok(&["get", "p/", "--prefix"]).prints("");

    // json output of a txn
    let j = t
        .run_stdin(
            &["txn", "-w", "json"],
            &txn_input(&[r#"value("k") = "v2""#], &["put j 1", "get k"], &[]),
        )
        .ok()
        .json();
    assert_eq!(header_revision(&j), 11);
    assert_eq!(j["succeeded"], true);
    let range = &j["responses"][1]["Response"]["ResponseRange"];
    assert_eq!(pairs(range), vec!["k=v2"]);
    let j = t
        .run_stdin(
            &["txn", "-w", "json"],
            &txn_input(&[r#"value("k") = "no""#], &[], &["get j"]),
        )
        .ok()
        .json();
    assert!(
        j.get("succeeded").is_none(),
        "succeeded:false is omitted: {j}"
    );
    t.run_stdin(&["txn", "-w", "fields"], &txn_input(&[], &["put j 2"], &[]));
    t
}

#[test]
fn txn_interactive() {
    require_tools!();
    differential(txn_interactive_scenario);
}

/// `txn -i` with stdin as a pipe prints the prompts and then the result.
fn txn_interactive_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "k", "v"]);
    let input = txn_input(&[r#"value("k") = "v""#], &["put k w", "get k"], &["del k"]);
    t.run_stdin(&["txn", "-i"], &input).prints(
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n\
         SUCCESS\n\nOK\n\nk\nw\n",
    );
    let input = txn_input(&[r#"value("k") = "v""#], &["put k x"], &["del k"]);
    t.run_stdin(&["txn", "--interactive"], &input).prints(
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n\
         FAILURE\n\n1\n",
    );
    assert_eq!(s.revision(), 4);
    t
}

#[test]
fn txn_errors() {
    require_tools!();
    differential_with(&["--max-txn-ops", "3"], txn_errors_scenario);
}

fn txn_errors_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "x", "0"]);
    // duplicate keys among the writes of one branch
    t.run_stdin(&["txn"], &txn_input(&[], &["put x 1", "put x 2"], &[]))
        .fails_with(1, "Error: etcdserver: duplicate key given in txn request");
    t.run_stdin(&["txn"], &txn_input(&[], &["put x 1", "del x"], &[]))
        .fails_with(1, "Error: etcdserver: duplicate key given in txn request");
    t.run_stdin(
        &["txn"],
        &txn_input(&[], &["put p/a 1", "del p/ --prefix"], &[]),
    )
    .fails_with(1, "Error: etcdserver: duplicate key given in txn request");
    // the same key in the success and the failure branch is fine, and so are two reads
    t.run_stdin(
        &["txn"],
        &txn_input(&[], &["put x 1", "get x", "get x"], &["put x 3"]),
    )
    .prints("SUCCESS\n\nOK\n\nx\n1\n\nx\n1\n");
    // --max-txn-ops 3: four ops in a branch, or four compares, are too many
    t.run_stdin(
        &["txn"],
        &txn_input(&[], &["put a 1", "put b 1", "put c 1", "put d 1"], &[]),
    )
    .fails_with(1, "Error: etcdserver: too many operations in txn request");
    t.run_stdin(
        &["txn"],
        &txn_input(
            &[],
            &["get a"],
            &["put a 1", "put b 1", "put c 1", "put d 1"],
        ),
    )
    .fails_with(1, "Error: etcdserver: too many operations in txn request");
    let four_cmps = [
        r#"version("a") = "0""#,
        r#"version("b") = "0""#,
        r#"version("c") = "0""#,
        r#"version("d") = "0""#,
    ];
    t.run_stdin(&["txn"], &txn_input(&four_cmps, &["put a 1"], &[]))
        .fails_with(1, "Error: etcdserver: too many operations in txn request");
    t.run_stdin(
        &["txn"],
        &txn_input(&four_cmps[..3], &["put a 1", "put b 1", "put c 1"], &[]),
    )
    .prints("SUCCESS\n\nOK\n\nOK\n\nOK\n");
    assert_eq!(s.revision(), 4, "rejected txns must not bump the revision");
    // empty key inside a txn
    t.run_stdin(&["txn"], &txn_input(&[], &[r#"put "" 1"#], &[]));
    // client-side parse errors (exit codes and texts of etcdctl itself)
    t.run_stdin(&["txn"], &txn_input(&[r#"value("x")"#], &[], &[]));
    t.run_stdin(&["txn"], &txn_input(&[r#"version("x") = "a""#], &[], &[]))
        .fails_with(
            3,
            r#"Error: invalid txn compare request: version("x") = "a""#,
        );
    t.run_stdin(&["txn"], &txn_input(&[r#"size("x") = "1""#], &[], &[]));
    t.run_stdin(&["txn"], &txn_input(&[], &["frob x"], &[]))
        .fails_with(3, "Error: invalid txn request: frob x");
    t.run_stdin(&["txn"], "value(\"x\") = \"1\"\n");
    assert_eq!(s.revision(), 4);
    t
}

#[test]
fn txn_lease_compare_panics_in_etcdctl() {
    require_tools!();
    // etcdctl 3.4.23 cannot send a LEASE compare: it panics ("bad value") while building
    // it, before contacting the server. Pinned so nobody hunts a server bug for it.
    let _g = crate::harness::shared();
    let s = Server::kvd(&[]);
    let out = s.ctl_stdin(
        &["txn"],
        txn_input(&[r#"lease("k") = "0""#], &[], &[]).as_bytes(),
    );
    assert_eq!(out.status, 2, "{out:?}");
    assert!(out.stderr.starts_with("panic: bad value"), "{}", out.stderr);
}
