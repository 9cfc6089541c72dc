//! `/health`, `/livez` and `/readyz` as etcd 3.5.11+ answers them: `ok` bodies, `?verbose`
//! listing each check, `?exclude=` skipping one, a failing check answering 503 and naming it,
//! `/health` JSON with its reason (no leader, an alarm), `?serializable=true` reading locally.
//! etcd 3.5.1 (the installed reference) predates `/livez` and `/readyz`, so their texts are
//! pinned from etcd's source (`server/etcdserver/api/etcdhttp/health.go`); `/health` is
//! compared with etcd 3.5.1 directly.

use std::time::Duration;

use crate::expo;
use crate::harness::{
    ctl, etcd35_bin, etcdctl35_bin, eventually, http, kvd_bin, start, Node, Ports,
};

#[test]
fn a_healthy_member_answers_ok_and_lists_its_checks() {
    let (_kvd, p) = start(&kvd_bin(), &[]);
    let url = |path: &str| format!("{}{path}", p.client_url());
    let health = http(&url("/health"), &[]);
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, r#"{"health":"true","reason":""}"#)
    );
    let local = http(&url("/health?serializable=true"), &[]);
    assert_eq!(local.status, 200, "{local:?}");
    for path in [
        "/livez",
        "/readyz",
        "/readyz/linearizable_read",
        "/livez/serializable_read",
    ] {
        let r = http(&url(path), &[]);
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"), "{path}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    assert_eq!(
        http(&url("/readyz?verbose"), &[]).body,
        "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n"
    );
    assert_eq!(
        http(&url("/livez?verbose"), &[]).body,
        "[+]serializable_read ok\nok\n"
    );
    assert_eq!(
        http(
            &url("/readyz?verbose&exclude=linearizable_read&exclude=no_such_check"),
            &[]
        )
        .body,
        "[+]data_corruption ok\n[+]serializable_read ok\n[+]non_learner ok\nok\n"
    );
    assert_eq!(
        http(&url("/readyz/non_learner?verbose"), &[]).body,
        "[+]non_learner ok\nok\n"
    );
    let post = http(&url("/readyz"), &["-X", "POST"]);
    assert_eq!(
        (post.status, post.body.as_str()),
        (405, "Method Not Allowed\n")
    );
    assert_eq!(post.header("allow"), Some("GET"));
    let m = expo::parse(&http(&url("/metrics"), &[]).body);
    assert_eq!(
        expo::value(
            &m,
            "etcd_server_healthcheck",
            &[("type", "readyz"), ("name", "linearizable_read")]
        ),
        Some(1.0)
    );
    assert!(
        expo::value(
            &m,
            "etcd_server_healthchecks_total",
            &[
                ("type", "readyz"),
                ("name", "data_corruption"),
                ("status", "success")
            ]
        )
        .unwrap_or(0.0)
            >= 3.0
    );
    // Two here, and the one that ended the wait for the member to be ready.
    assert_eq!(
        expo::value(&m, "etcd_server_health_success", &[]),
        Some(3.0)
    );
}

/// `/health` of a healthy member reads the same on etcd 3.5.1.
#[test]
fn health_json_is_etcds() {
    require_etcd35!();
    let (etcd, ep) = start(&etcd35_bin(), &[]);
    let theirs = http(&format!("{}/health", ep.client_url()), &[]);
    drop(etcd);
    let (_kvd, kp) = start(&kvd_bin(), &[]);
    let ours = http(&format!("{}/health", kp.client_url()), &[]);
    assert_eq!((ours.status, ours.body), (theirs.status, theirs.body));
}

/// A member that lost its quorum: alive, but neither ready nor healthy; the reasons say why.
#[test]
fn a_member_without_quorum_is_live_but_not_ready() {
    let members: Vec<Ports> = (1..=3).map(|i| Ports::new(&format!("m{i}"))).collect();
    let cluster: Vec<String> = members.iter().map(Ports::cluster_entry).collect();
    let cluster = cluster.join(",");
    let mut nodes: Vec<Node> = members
        .iter()
        .map(|m| {
            let mut n = Node::new(&kvd_bin(), Vec::new());
            let mut args = m.flags(&n.dir().join("data"), &cluster);
            // Short timeouts keep the linearizable read's wait for a leader short.
            args.extend(["--heartbeat-interval=50", "--election-timeout=500"].map(String::from));
            *n.args_mut() = args;
            n.launch();
            n
        })
        .collect();
    for (n, m) in nodes.iter_mut().zip(&members) {
        let url = format!("{}/health", m.client_url());
        n.wait_until("a healthy /health", || http(&url, &[]).status == 200);
    }
    nodes[1].kill9();
    nodes[2].kill9();
    let url = |path: &str| format!("{}{path}", members[0].client_url());
    // While the member still believes in its old leader, the read fails instead
    // ("RANGE ERROR:..."); once it knows there is none, /health says so.
    let no_leader = eventually(Duration::from_secs(30), || {
        let r = http(&url("/health"), &[]);
        (r.body == "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n").then_some(r)
    })
    .expect("/health never reported the missing leader");
    assert_eq!(no_leader.status, 503);
    assert_eq!(http(&url("/health?serializable=true"), &[]).status, 200);
    let live = http(&url("/livez"), &[]);
    assert_eq!((live.status, live.body.as_str()), (200, "ok\n"));
    let ready = http(&url("/readyz"), &[]);
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(
        ready.body,
        "[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: etcdserver: no leader\n[+]non_learner ok\n\n"
    );
    let one = http(&url("/readyz/linearizable_read"), &[]);
    assert_eq!(
        (one.status, one.body.as_str()),
        (
            503,
            "[-]linearizable_read failed: etcdserver: no leader\n\n"
        )
    );
    let without = http(&url("/readyz?exclude=linearizable_read"), &[]);
    assert_eq!((without.status, without.body.as_str()), (200, "ok\n"));
    let m = expo::parse(&http(&url("/metrics"), &[]).body);
    assert_eq!(
        expo::value(
            &m,
            "etcd_server_healthcheck",
            &[("type", "readyz"), ("name", "linearizable_read")]
        ),
        Some(0.0)
    );
    assert!(expo::value(&m, "etcd_server_health_failures", &[]).unwrap_or(0.0) >= 1.0);
    assert_eq!(expo::value(&m, "etcd_server_has_leader", &[]), Some(0.0));
}

/// NOSPACE: `/health` fails with etcd's reason unless the alarm is excluded; readiness only
/// cares about corruption. The same on etcd 3.5.1.
#[test]
fn an_alarm_fails_health_unless_excluded() {
    require_etcd35!();
    let mut seen = Vec::new();
    for bin in [etcd35_bin(), kvd_bin()] {
        let (_n, p) = start(&bin, &["--quota-backend-bytes=16384"]);
        let ep = p.endpoint();
        let value = "x".repeat(2048);
        let full = eventually(Duration::from_secs(60), || {
            let out = ctl(&etcdctl35_bin(), &ep, &["put", "k", &value]);
            out.stderr
                .contains("etcdserver: mvcc: database space exceeded")
                .then_some(())
        });
        assert!(full.is_some(), "{}: the quota never filled", bin.display());
        let alarms = ctl(&etcdctl35_bin(), &ep, &["alarm", "list"]).ok().stdout;
        assert!(alarms.contains("alarm:NOSPACE"), "{alarms}");
        let url = |path: &str| format!("{}{path}", p.client_url());
        let health = http(&url("/health"), &[]);
        let excluded = http(&url("/health?exclude=NOSPACE"), &[]);
        seen.push((health.status, health.body, excluded.status, excluded.body));
        if bin == kvd_bin() {
            assert_eq!(http(&url("/readyz"), &[]).status, 200);
            assert_eq!(http(&url("/livez"), &[]).status, 200);
        }
    }
    assert_eq!(
        seen[1],
        (
            503,
            "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n".to_string(),
            200,
            r#"{"health":"true","reason":""}"#.to_string()
        )
    );
    assert_eq!(seen[0], seen[1], "etcd 3.5.1 answered differently");
}
