//! The history a backup must carry, and what a client can observe of it.
//!
//! [`write_history`] gives a server puts, overwrites, a delete, a compaction, two leases (one
//! with keys attached) and, optionally, users and roles with auth enabled. [`observe`] reads it
//! back through `etcdctl` (all keys with their revisions and versions, the store at past
//! revisions from the compaction point on, the compacted and future revision errors, leases,
//! users, roles and what a user may do) into a [`State`]: two servers serve the same data exactly
//! when their states are equal.

use serde_json::Value;

use crate::harness::{header_revision, kvs, lease_id, Server};

/// The root user, as `etcdctl --user` takes it.
pub const ROOT: &str = "root:rootpw";
/// A user whose role may only read key `a`.
pub const READER: &str = "u1:pw";

/// The revision [`write_history`] compacts at.
pub const COMPACTED: i64 = 4;
/// The revision [`write_history`] leaves the store at.
pub const LAST: i64 = 10;

/// What [`write_history`] made that the checks need to know.
#[derive(Clone, Debug)]
pub struct History {
    /// Hex ids of the leases granted: the first has `lk1` and `lk2` attached, the second none.
    pub leases: Vec<String>,
    /// Whether users, roles and auth were set up.
    pub auth: bool,
}

impl History {
    /// The user the checks run as ("" when auth is off).
    pub fn user(&self) -> &'static str {
        if self.auth {
            ROOT
        } else {
            ""
        }
    }
}

/// Writes the history to a fresh server. Revisions: a=1 (2), b=2 (3), a=11 (4), c=3 (5),
/// del b (6), d=4 (7), compaction at 4, lk1 (8) and lk2 (9) on a 600 s lease, a second 900 s
/// lease with no keys, a=111 (10); then, with `auth`, users root and u1 (role r1: read `a`)
/// and auth enabled.
pub fn write_history(s: &Server, auth: bool) -> History {
    for (k, v) in [("a", "1"), ("b", "2"), ("a", "11"), ("c", "3")] {
        assert_eq!(s.ok_as("", &["put", k, v]), "OK\n");
    }
    assert_eq!(s.ok_as("", &["del", "b"]), "1\n");
    s.ok_as("", &["put", "d", "4"]);
    assert_eq!(
        s.ok_as("", &["compaction", &COMPACTED.to_string()]),
        format!("compacted revision {COMPACTED}\n")
    );
    let l1 = lease_id(&s.ok_as("", &["lease", "grant", "600"]));
    s.ok_as("", &["put", "lk1", "v1", "--lease", &l1]);
    s.ok_as("", &["put", "lk2", "v2", "--lease", &l1]);
    let l2 = lease_id(&s.ok_as("", &["lease", "grant", "900"]));
    s.ok_as("", &["put", "a", "111"]);
    if auth {
        s.ok_as("", &["user", "add", ROOT]);
        s.ok_as("", &["role", "add", "r1"]);
        s.ok_as("", &["role", "grant-permission", "r1", "read", "a"]);
        s.ok_as("", &["user", "add", READER]);
        s.ok_as("", &["user", "grant-role", "u1", "r1"]);
        s.ok_as("", &["auth", "enable"]);
    }
    History {
        leases: vec![l1, l2],
        auth,
    }
}

/// Everything a client observes of the history, as (probe, answer) pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State(pub Vec<(String, String)>);

impl State {
    /// The answer to `probe` (panics if it was not observed).
    pub fn get(&self, probe: &str) -> &str {
        self.0
            .iter()
            .find(|(p, _)| p == probe)
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("no probe {probe:?} in {self:?}"))
    }

    /// Asserts `other` equals `self`, naming the first probe that differs.
    #[track_caller]
    pub fn assert_same(&self, other: &State, what: &str) {
        for ((p, want), (q, got)) in self.0.iter().zip(other.0.iter()) {
            assert_eq!(p, q, "{what}: probes out of step");
            assert_eq!(
                want, got,
                "{what}: `{p}` differs (left: source, right: restored)"
            );
        }
        assert_eq!(self.0.len(), other.0.len(), "{what}: probe count");
    }
}

/// One line per key: `key=value create/mod/version lease`.
fn kv_lines(v: &Value) -> String {
    kvs(v)
        .iter()
        .map(|kv| {
            format!(
                "{}={} c{} m{} v{} lease{:x}\n",
                kv.key, kv.value, kv.create, kv.modified, kv.version, kv.lease
            )
        })
        .collect()
}

/// `lease timetolive --keys -w json` without the remaining TTL, which only has to be in range.
fn lease_line(s: &Server, user: &str, id: &str) -> String {
    let out = s
        .ctl()
        .user(user)
        .args(&["lease", "timetolive", id, "--keys", "-w", "json"])
        .run()
        .ok();
    let v = out.json();
    let granted = v["granted-ttl"].as_i64().unwrap_or(-1);
    let ttl = v["ttl"].as_i64().unwrap_or(-1);
    assert!(
        ttl > 0 && ttl <= granted,
        "lease {id}: remaining {ttl}s not in (0, {granted}]: {}",
        out.stdout
    );
    let mut keys: Vec<String> = v["keys"]
        .as_array()
        .map(|a| a.iter().map(crate::harness::b64).collect())
        .unwrap_or_default();
    keys.sort();
    format!(
        "id={:x} granted={granted} keys={keys:?}",
        v["id"].as_u64().unwrap_or(0)
    )
}

/// Runs one probe and records what the user sees (stdout, or the exit code and error).
fn probe(s: &Server, st: &mut Vec<(String, String)>, name: &str, user: &str, args: &[&str]) {
    let out = s.ctl().user(user).args(args).run();
    st.push((
        name.to_string(),
        out.shown().replace(&s.endpoint(), "<endpoint>"),
    ));
}

/// Reads the state of a server holding [`write_history`]'s data.
pub fn observe(s: &Server, h: &History) -> State {
    let user = h.user();
    let mut st = Vec::new();
    // The full listing's header also carries member ids and the raft term: keep only the
    // parts a restore must preserve.
    let all = s
        .ctl()
        .user(user)
        .args(&["get", "", "--prefix", "-w", "json"])
        .run()
        .ok()
        .json();
    st.push(("kvs".to_string(), kv_lines(&all)));
    st.push((
        "header revision".to_string(),
        header_revision(&all).to_string(),
    ));
    // The compaction point, after the delete, with the lease's keys, and one in the future.
    for rev in [COMPACTED, COMPACTED + 2, LAST - 1, LAST + 1] {
        let r = rev.to_string();
        let name = format!("get all --rev {r}");
        probe(
            s,
            &mut st,
            &name,
            user,
            &["get", "", "--prefix", "--rev", &r],
        );
    }
    let below = (COMPACTED - 1).to_string();
    probe(
        s,
        &mut st,
        "get a below compaction",
        user,
        &["get", "a", "--rev", &below],
    );
    let list = s
        .ctl()
        .user(user)
        .args(&["lease", "list"])
        .run()
        .ok()
        .stdout;
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort_unstable();
    st.push(("lease list (sorted)".into(), lines.join("\n")));
    for id in &h.leases {
        st.push((format!("lease {id}"), lease_line(s, user, id)));
    }
    if h.auth {
        probe(s, &mut st, "user list", ROOT, &["user", "list"]);
        probe(s, &mut st, "role list", ROOT, &["role", "list"]);
        probe(s, &mut st, "user get u1", ROOT, &["user", "get", "u1"]);
        probe(s, &mut st, "role get r1", ROOT, &["role", "get", "r1"]);
        probe(s, &mut st, "get a, no user", "", &["get", "a"]);
        probe(s, &mut st, "get a as u1", READER, &["get", "a"]);
        probe(s, &mut st, "get c as u1", READER, &["get", "c"]);
        probe(
            s,
            &mut st,
            "get a, wrong password",
            "u1:wrong",
            &["get", "a"],
        );
        probe(s, &mut st, "put as u1", READER, &["put", "a", "nope"]);
    }
    State(st)
}

/// Asserts the values [`write_history`] must leave, whatever server holds them.
#[track_caller]
pub fn assert_expected(st: &State, h: &History) {
    let l1 = u64::from_str_radix(&h.leases[0], 16).expect("hex lease id");
    assert_eq!(
        st.get("kvs"),
        format!(
            "a=111 c2 m10 v3 lease0\nc=3 c5 m5 v1 lease0\nd=4 c7 m7 v1 lease0\n\
             lk1=v1 c8 m8 v1 lease{l1:x}\nlk2=v2 c9 m9 v1 lease{l1:x}\n"
        )
    );
    assert_eq!(st.get("header revision"), LAST.to_string());
    assert_eq!(st.get("get all --rev 4"), "a\n11\nb\n2\n");
    assert_eq!(st.get("get all --rev 6"), "a\n11\nc\n3\n");
    assert_eq!(
        st.get("get all --rev 9"),
        "a\n11\nc\n3\nd\n4\nlk1\nv1\nlk2\nv2\n"
    );
    let compacted = "exit 1: Error: etcdserver: mvcc: required revision has been compacted";
    assert_eq!(st.get("get a below compaction"), compacted);
    assert_eq!(
        st.get("get all --rev 11"),
        "exit 1: Error: etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(
        st.get(&format!("lease {}", h.leases[0])),
        format!(r#"id={l1:x} granted=600 keys=["lk1", "lk2"]"#)
    );
    if h.auth {
        assert_eq!(st.get("user list"), "root\nu1\n");
        assert_eq!(st.get("role list"), "r1\nroot\n");
        assert_eq!(st.get("user get u1"), "User: u1\nRoles: r1\n");
        assert_eq!(st.get("role get r1"), "Role r1\nKV Read:\n\ta\nKV Write:\n");
        assert_eq!(
            st.get("get a, wrong password"),
            "exit 2: Error: etcdserver: authentication failed, invalid user ID or password"
        );
        assert_eq!(
            st.get("put as u1"),
            "exit 1: Error: etcdserver: permission denied"
        );
        assert_eq!(st.get("get a as u1"), "a\n111\n");
        assert_eq!(
            st.get("get c as u1"),
            "exit 1: Error: etcdserver: permission denied"
        );
        assert_eq!(
            st.get("get a, no user"),
            "exit 1: Error: etcdserver: user name is empty"
        );
    }
}
