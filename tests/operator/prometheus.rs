//! A real Prometheus scraping a three-member mutual-TLS kvd cluster over https with a client
//! certificate, with etcd-mixin's alert rules loaded (`contrib/mixin` in etcd's repository,
//! rendered with a 1 s scrape interval, so the members-down rate window is 4 s):
//! - the rules load (`promtool check rules`) and Prometheus evaluates each without error;
//! - every series the rules read returns data for every member, and each rule's expression
//!   without its threshold returns data;
//! - with a member killed, the members-down condition is true; once it is back, it clears.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{ctl, etcdctl_bin, eventually, http, kvd_bin, Node};
use crate::support::ports::stable_port;

const SELECTOR: &str = r#"job=~".*etcd.*""#;

/// One alert of etcd-mixin: its name, `for`, expression, and the expression without its
/// threshold (which returns data whenever the series it reads exist).
struct Alert {
    name: &'static str,
    hold: &'static str,
    expr: String,
    data: String,
}

fn alerts() -> Vec<Alert> {
    let s = SELECTOR;
    let failed_grpc = format!(
        r#"100 * sum(rate(grpc_server_handled_total{{{s}, grpc_code=~"Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"}}[5m])) without (grpc_type, grpc_code)
  /
sum(rate(grpc_server_handled_total{{{s}}}[5m])) without (grpc_type, grpc_code)"#
    );
    let members_down = format!(
        "max without (endpoint) (\n  sum without (instance) (up{{{s}}} == bool 0)\nor\n  count without (To) (\n    sum without (instance) (rate(etcd_network_peer_sent_failures_total{{{s}}}[4s])) > 0.01\n  )\n)"
    );
    let mk = |name, hold, data: String, threshold: &str| Alert {
        name,
        hold,
        expr: format!("{data}{threshold}"),
        data,
    };
    vec![
        mk("etcdMembersDown", "10m", members_down, "\n> 0"),
        mk(
            "etcdInsufficientMembers",
            "3m",
            format!("sum(up{{{s}}} == bool 1) without (instance)"),
            &format!(" < ((count(up{{{s}}}) without (instance) + 1) / 2)"),
        ),
        mk(
            "etcdNoLeader",
            "1m",
            format!("etcd_server_has_leader{{{s}}}"),
            " == 0",
        ),
        Alert {
            name: "etcdHighNumberOfLeaderChanges",
            hold: "5m",
            expr: format!("increase((max without (instance) (etcd_server_leader_changes_seen_total{{{s}}}) or 0*absent(etcd_server_leader_changes_seen_total{{{s}}}))[15m:1m]) >= 4"),
            // The 1 m subquery needs minutes of history; what it reads is there at once.
            data: format!("max without (instance) (etcd_server_leader_changes_seen_total{{{s}}})"),
        },
        mk("etcdHighNumberOfFailedGRPCRequests", "10m", failed_grpc.clone(), "\n  > 1"),
        mk("etcdHighNumberOfFailedGRPCRequests", "5m", failed_grpc, "\n  > 5"),
        mk(
            "etcdGRPCRequestsSlow",
            "10m",
            format!(r#"histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{{{s}, grpc_method!="Defragment", grpc_type="unary"}}[5m])) without(grpc_type))"#),
            "\n> 0.15",
        ),
        mk(
            "etcdMemberCommunicationSlow",
            "10m",
            format!("histogram_quantile(0.99, rate(etcd_network_peer_round_trip_time_seconds_bucket{{{s}}}[5m]))"),
            "\n> 0.15",
        ),
        mk(
            "etcdHighNumberOfFailedProposals",
            "15m",
            format!("rate(etcd_server_proposals_failed_total{{{s}}}[15m])"),
            " > 5",
        ),
        mk(
            "etcdHighFsyncDurations",
            "10m",
            format!("histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{{{s}}}[5m]))"),
            "\n> 0.5",
        ),
        mk(
            "etcdHighFsyncDurations",
            "10m",
            format!("histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{{{s}}}[5m]))"),
            "\n> 1",
        ),
        mk(
            "etcdHighCommitDurations",
            "10m",
            format!("histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{{{s}}}[5m]))"),
            "\n> 0.25",
        ),
        mk(
            "etcdDatabaseQuotaLowSpace",
            "10m",
            format!("(last_over_time(etcd_mvcc_db_total_size_in_bytes{{{s}}}[5m]) / last_over_time(etcd_server_quota_backend_bytes{{{s}}}[5m]))*100"),
            " > 95",
        ),
        mk(
            "etcdExcessiveDatabaseGrowth",
            "10m",
            format!("predict_linear(etcd_mvcc_db_total_size_in_bytes{{{s}}}[4h], 4*60*60)"),
            &format!(" > etcd_server_quota_backend_bytes{{{s}}}"),
        ),
        Alert {
            name: "etcdDatabaseHighFragmentationRatio",
            hold: "10m",
            expr: format!("(last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{{{s}}}[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{{{s}}}[5m])) < 0.5 and etcd_mvcc_db_total_size_in_use_in_bytes{{{s}}} > 104857600"),
            data: format!("last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{{{s}}}[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{{{s}}}[5m])"),
        },
    ]
}

/// Every series the rules read; each must have data for every member (peer send failures
/// only once a member is down).
const SERIES: &[&str] = &[
    "up",
    "etcd_server_has_leader",
    "etcd_server_leader_changes_seen_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds_bucket",
    "etcd_network_peer_round_trip_time_seconds_bucket",
    "etcd_server_proposals_failed_total",
    "etcd_disk_wal_fsync_duration_seconds_bucket",
    "etcd_disk_backend_commit_duration_seconds_bucket",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_server_quota_backend_bytes",
];

fn rules_yaml() -> String {
    let mut y = String::from("groups:\n- name: etcd\n  rules:\n");
    for a in alerts() {
        y.push_str(&format!("  - alert: {}\n    expr: |\n", a.name));
        for line in a.expr.lines() {
            y.push_str(&format!("      {line}\n"));
        }
        y.push_str(&format!(
            "    for: {}\n    labels:\n      severity: warning\n",
            a.hold
        ));
    }
    y
}

/// Prometheus with its own temp dir; killed on drop.
struct Prometheus {
    node: Node,
    url: String,
}

impl Prometheus {
    fn start(config: &str, rules: &str) -> Prometheus {
        let port = stable_port();
        let mut node = Node::new(Path::new("/usr/bin/prometheus"), Vec::new());
        let dir = node.dir().to_path_buf();
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        std::fs::write(dir.join("rules.yml"), rules).expect("rules");
        let check = std::process::Command::new("promtool")
            .args(["check", "rules"])
            .arg(dir.join("rules.yml"))
            .output()
            .expect("promtool");
        assert!(
            check.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        *node.args_mut() = vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        node.launch();
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        node.wait_until("Prometheus ready", || http(&ready, &[]).status == 200);
        Prometheus { node, url }
    }

    /// An instant query's result vector; panics unless Prometheus evaluated it.
    fn query(&self, expr: &str) -> Vec<Value> {
        let r = http(
            &format!("{}/api/v1/query", self.url),
            &["-G", "--data-urlencode", &format!("query={expr}")],
        );
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("query {expr}: {e}: {r:?}\n{}", self.node.stderr()));
        assert_eq!(v["status"], "success", "query {expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `expr` until `done` accepts its result, at most `timeout`.
    fn wait_for(
        &self,
        expr: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        eventually(timeout, || {
            let r = self.query(expr);
            done(&r).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "`{expr}` never reached the expected result: {:?}",
                self.query(expr)
            )
        })
    }
}

fn instances(result: &[Value]) -> usize {
    result
        .iter()
        .filter_map(|s| s["metric"]["instance"].as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[test]
fn prometheus_alerts_read_kvd_and_members_down_fires_and_clears() {
    require_tool!("/usr/bin/prometheus");
    require_tool!("/usr/bin/promtool");
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = dir.path().join("pki");
    let peers: Vec<u16> = (0..3).map(|_| stable_port()).collect();
    let clients: Vec<u16> = (0..3).map(|_| stable_port()).collect();
    let list = |ports: &[u16]| {
        ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{}=https://127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    let made = std::process::Command::new(kvd_bin())
        .args([
            "pki",
            "cluster",
            "--members",
            &list(&peers),
            "--client-urls",
            &list(&clients),
            "--dir",
        ])
        .arg(&pki)
        .output()
        .expect("kvd pki");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut members: Vec<Node> = (1..=3)
        .map(|i| {
            let config = pki.join(format!("m{i}.yaml"));
            let mut yaml = std::fs::read_to_string(&config).expect("config");
            yaml.push_str("metrics: 'extensive'\n");
            std::fs::write(&config, yaml).expect("config");
            let mut n = Node::new(
                &kvd_bin(),
                vec!["--config-file".into(), config.display().to_string()],
            );
            n.launch();
            n
        })
        .collect();
    let file = |name: &str| pki.join(name).display().to_string();
    let tls = [
        "--cacert".to_string(),
        file("ca.pem"),
        "--cert".to_string(),
        file("root.pem"),
        "--key".to_string(),
        file("root-key.pem"),
    ];
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    for (n, port) in members.iter_mut().zip(&clients) {
        let url = format!("https://127.0.0.1:{port}/health");
        n.wait_until("a healthy /health", || http(&url, &tls).status == 200);
    }
    let endpoints = clients
        .iter()
        .map(|p| format!("https://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let etcdctl_tls: Vec<String> = vec![
        format!("--cacert={}", file("ca.pem")),
        format!("--cert={}", file("root.pem")),
        format!("--key={}", file("root-key.pem")),
    ];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = etcdctl_tls.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        ctl(&etcdctl_bin(), &endpoints, &all).ok()
    };
    for i in 0..20 {
        run(&["put", &format!("k{i}"), "v"]);
    }
    run(&["get", "k", "--prefix"]);

    let targets = clients
        .iter()
        .map(|p| format!("'127.0.0.1:{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\nscrape_configs:\n- job_name: etcd\n  scheme: https\n  tls_config:\n    ca_file: '{}'\n    cert_file: '{}'\n    key_file: '{}'\n  static_configs:\n  - targets: [{targets}]\n",
        file("ca.pem"),
        file("root.pem"),
        file("root-key.pem")
    );
    let prom = Prometheus::start(&config, &rules_yaml());
    let minute = Duration::from_secs(60);
    prom.wait_for(r#"up{job="etcd"} == 1"#, minute, |r| r.len() == 3);

    // Every series the rules read, from every member.
    for series in SERIES {
        prom.wait_for(&format!("{series}{{{SELECTOR}}}"), minute, |r| {
            instances(r) == 3
        });
    }
    // Every rule evaluates, and its expression without the threshold has data.
    for a in alerts() {
        prom.query(&a.expr);
        let data = prom.wait_for(&a.data, minute, |r| !r.is_empty());
        assert!(!data.is_empty(), "{}", a.name);
    }
    // A healthy cluster: nobody down, a leader everywhere.
    let all = alerts();
    let expr = |name: &str| {
        all.iter()
            .find(|a| a.name == name)
            .map(|a| a.expr.clone())
            .expect("alert")
    };
    assert!(prom.query(&expr("etcdMembersDown")).is_empty());
    assert!(prom.query(&expr("etcdInsufficientMembers")).is_empty());
    assert!(prom.query(&expr("etcdNoLeader")).is_empty());
    // Prometheus loaded the rules and evaluated each without an error.
    let rules = eventually(minute, || {
        let v: Value =
            serde_json::from_str(&http(&format!("{}/api/v1/rules", prom.url), &[]).body).ok()?;
        let rules: Vec<Value> = v["data"]["groups"][0]["rules"].as_array()?.clone();
        let evaluated = rules.len() == alerts().len()
            && rules.iter().all(|r| {
                r["health"] == "ok"
                    && r["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001"))
            });
        evaluated.then_some(rules)
    });
    assert!(rules.is_some(), "rules not all evaluated with health ok");

    // A member goes down: the members-down condition becomes true.
    members[2].kill9();
    let down = prom.wait_for(&expr("etcdMembersDown"), minute, |r| !r.is_empty());
    assert!(
        down[0]["value"][1].as_str().is_some_and(|v| v != "0"),
        "{down:?}"
    );
    prom.wait_for(
        &format!("etcd_network_peer_sent_failures_total{{{SELECTOR}}}"),
        minute,
        |r| !r.is_empty(),
    );
    // Two of three are still a quorum.
    assert!(prom.query(&expr("etcdInsufficientMembers")).is_empty());

    // It comes back: the condition clears.
    members[2].launch();
    let url = format!("https://127.0.0.1:{}/health", clients[2]);
    members[2].wait_until("a healthy /health after the restart", || {
        http(&url, &tls).status == 200
    });
    prom.wait_for(
        &expr("etcdMembersDown"),
        Duration::from_secs(90),
        <[Value]>::is_empty,
    );
}
