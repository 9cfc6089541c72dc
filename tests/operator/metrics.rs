//! `/metrics` against etcd 3.5.1's: the same commands run on both, then every family etcd
//! exports that kvd exports too must have the same type, help text, label names and histogram
//! buckets, the families dashboards and alerts use must all be there, counts of what happened
//! must be equal, and `promtool check metrics` must find nothing in kvd's output that it does
//! not find in etcd's own (etcd's names break some of its naming lints).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::expo::{self, Family};
use crate::harness::{ctl, etcd35_bin, etcdctl35_bin, http, kvd_bin, start, Node, Ports};

/// The families an etcd operator's dashboards and etcd-mixin's alerts read (issue 13's list).
const REQUIRED: &[&str] = &[
    "etcd_server_has_leader",
    "etcd_server_is_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending",
    "etcd_server_proposals_failed_total",
    "etcd_server_slow_apply_total",
    "etcd_server_slow_read_indexes_total",
    "etcd_server_read_indexes_failed_total",
    "etcd_server_heartbeat_send_failures_total",
    "etcd_server_health_success",
    "etcd_server_health_failures",
    "etcd_server_id",
    "etcd_server_version",
    "etcd_server_quota_backend_bytes",
    "etcd_server_is_learner",
    "etcd_server_learner_promote_successes",
    "etcd_server_client_requests_total",
    "etcd_server_snapshot_apply_in_progress_total",
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_disk_backend_defrag_duration_seconds",
    "etcd_disk_backend_snapshot_duration_seconds",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_mvcc_put_total",
    "etcd_mvcc_range_total",
    "etcd_mvcc_delete_total",
    "etcd_mvcc_txn_total",
    "etcd_debugging_mvcc_keys_total",
    "etcd_debugging_mvcc_watcher_total",
    "etcd_debugging_mvcc_watch_stream_total",
    "etcd_debugging_mvcc_slow_watcher_total",
    "etcd_debugging_mvcc_events_total",
    "etcd_debugging_mvcc_pending_events_total",
    "etcd_debugging_mvcc_db_compaction_keys_total",
    "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
    "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
    "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
    "etcd_debugging_mvcc_current_revision",
    "etcd_debugging_mvcc_compact_revision",
    "etcd_network_client_grpc_sent_bytes_total",
    "etcd_network_client_grpc_received_bytes_total",
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_msg_received_total",
    "grpc_server_msg_sent_total",
    "grpc_server_handling_seconds",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "os_fd_used",
    "os_fd_limit",
    "etcd_cluster_version",
];

/// Families whose counts must come out equal after the same commands on both servers.
const EQUAL_COUNTS: &[&str] = &[
    "etcd_mvcc_put_total",
    "etcd_mvcc_delete_total",
    "etcd_mvcc_txn_total",
    // Not etcd_mvcc_range_total: etcd's Compact reads a key to fill its response header and
    // counts that read as a range; kvd does not read for it (see kvd_counts_ranges_as_etcd).
    "etcd_debugging_mvcc_total_put_size_in_bytes",
    "etcd_debugging_mvcc_keys_total",
    "etcd_debugging_mvcc_events_total",
    // The watcher is gone by the end: nothing registered, nothing pending.
    "etcd_debugging_mvcc_watcher_total",
    "etcd_debugging_mvcc_watch_stream_total",
    "etcd_debugging_mvcc_slow_watcher_total",
    "etcd_debugging_mvcc_pending_events_total",
    "etcd_debugging_mvcc_current_revision",
    "etcd_debugging_mvcc_compact_revision",
    "etcd_debugging_mvcc_db_compaction_keys_total",
    "etcd_debugging_lease_granted_total",
    "etcd_debugging_lease_revoked_total",
    "etcd_server_has_leader",
    "etcd_server_is_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_health_success",
    "etcd_server_proposals_failed_total",
    "etcd_server_client_requests_total",
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_msg_received_total",
    "grpc_server_msg_sent_total",
];

/// The same commands on a server; returns its `/metrics` afterwards.
fn workload(node: &Node, ports: &Ports) -> String {
    let ep = ports.endpoint();
    let run = |args: &[&str]| ctl(&etcdctl35_bin(), &ep, args).ok();
    run(&["put", "a", "1"]);
    run(&["put", "b", "22"]);
    run(&["get", "a"]);
    run(&["get", "", "--prefix", "--keys-only"]);
    run(&["del", "a"]);
    let mut txn = std::process::Command::new(etcdctl35_bin());
    txn.args([&format!("--endpoints={ep}"), "txn"]);
    let t = crate::support::bounded_run::BoundedRun::new(
        txn,
        "etcdctl txn".into(),
        Duration::from_secs(30),
        Duration::from_millis(20),
    )
    .stdin(b"value(\"b\") = \"22\"\n\nput c 3\nput d 4\n\n\n".to_vec())
    .output()
    .ok();
    assert!(t.stdout.starts_with("SUCCESS"), "{t:?}");
    // A watcher that sees one event, then goes away.
    let watch = std::process::Command::new(etcdctl35_bin())
        .args([&format!("--endpoints={ep}"), "watch", "w"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("watch");
    let mut watch = KillOnDrop(watch);
    let scrape = || expo::parse(&http(&format!("{}/metrics", ports.client_url()), &[]).body);
    let watching = crate::harness::eventually(Duration::from_secs(20), || {
        (expo::value(&scrape(), "etcd_debugging_mvcc_watcher_total", &[]) == Some(1.0))
            .then_some(())
    });
    assert!(watching.is_some(), "the watcher never registered");
    run(&["put", "w", "x"]);
    let seen = crate::harness::eventually(Duration::from_secs(20), || {
        (expo::value(&scrape(), "etcd_debugging_mvcc_events_total", &[]) == Some(1.0)).then_some(())
    });
    assert!(seen.is_some(), "the watcher never got its event");
    watch.kill();
    let lease = run(&["lease", "grant", "600"]).stdout;
    let id = lease
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    run(&["lease", "revoke", &id]);
    let rev = run(&["get", "b", "-w", "json"]).json()["header"]["revision"]
        .as_i64()
        .expect("revision");
    run(&["compaction", &(rev - 1).to_string(), "--physical"]);
    run(&["endpoint", "hashkv"]);
    run(&["defrag"]);
    run(&[
        "snapshot",
        "save",
        &node.dir().join("s.db").display().to_string(),
    ]);
    assert_eq!(
        http(&format!("{}/health", ports.client_url()), &[]).status,
        200
    );
    http(&format!("{}/metrics", ports.client_url()), &[]).body
}

struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a family is defined (not its values).
fn shape(f: &Family) -> (String, String, BTreeSet<String>, Vec<String>) {
    (
        f.kind.clone(),
        f.help.clone(),
        f.labels.clone(),
        f.buckets.clone(),
    )
}

#[test]
fn metrics_have_etcds_names_types_labels_and_buckets() {
    require_etcd35!();
    let (etcd, etcd_ports) = start(&etcd35_bin(), &["--metrics", "extensive"]);
    let reference = expo::parse(&workload(&etcd, &etcd_ports));
    drop(etcd);
    let (kvd, kvd_ports) = start(&kvd_bin(), &["--metrics", "extensive"]);
    let tested = expo::parse(&workload(&kvd, &kvd_ports));

    let missing: Vec<&&str> = REQUIRED
        .iter()
        .filter(|n| !tested.contains_key(**n))
        .collect();
    assert!(missing.is_empty(), "kvd lacks {missing:?}");
    for (name, ours) in &tested {
        if let Some(theirs) = reference.get(name) {
            assert_eq!(shape(ours), shape(theirs), "{name} is defined differently");
        }
    }
    for name in EQUAL_COUNTS {
        // etcd 3.5's Maintenance.Downgrade: kvd (reporting an etcd 3.4 version) has no such RPC.
        let mut theirs = reference[*name].samples.clone();
        theirs.retain(|k, _| !k.contains("grpc_method=\"Downgrade\""));
        let ours = &tested[*name].samples;
        let differing: Vec<String> = ours
            .keys()
            .chain(theirs.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| ours.get(*k) != theirs.get(*k))
            .map(|k| format!("{k}: kvd {:?}, etcd {:?}", ours.get(k), theirs.get(k)))
            .collect();
        assert!(differing.is_empty(), "{name} counts differ: {differing:#?}");
    }
    // Values that depend on the machine or the storage engine: present and plausible.
    let positive = |name: &str| expo::value(&tested, name, &[]).unwrap_or(0.0) > 0.0;
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "os_fd_used",
        "os_fd_limit",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_server_quota_backend_bytes",
        "etcd_network_client_grpc_sent_bytes_total",
        "etcd_network_client_grpc_received_bytes_total",
    ] {
        assert!(positive(name), "{name} is not positive");
    }
    for histogram in [
        "etcd_disk_wal_fsync_duration_seconds",
        "etcd_disk_backend_commit_duration_seconds",
        "etcd_disk_backend_defrag_duration_seconds",
        "etcd_disk_backend_snapshot_duration_seconds",
        "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
        "etcd_mvcc_hash_rev_duration_seconds",
    ] {
        let count = expo::sample(&tested, histogram, &format!("{histogram}_count"), &[]);
        assert!(
            tested[histogram]
                .samples
                .get(&format!("{histogram}_count{{}}"))
                .is_some_and(|c| *c >= 1.0),
            "{histogram} observed nothing ({count:?})"
        );
    }
    let range_ok = expo::sample(
        &tested,
        "grpc_server_handling_seconds",
        "grpc_server_handling_seconds_count",
        &[
            ("grpc_method", "Range"),
            ("grpc_service", "etcdserverpb.KV"),
            ("grpc_type", "unary"),
        ],
    );
    assert!(range_ok >= Some(2.0), "Range latency: {range_ok:?}");
}

#[test]
fn basic_metrics_have_no_grpc_latency_histograms() {
    let (_kvd, ports) = start(&kvd_bin(), &[]);
    let m = expo::parse(&http(&format!("{}/metrics", ports.client_url()), &[]).body);
    assert!(!m.contains_key("grpc_server_handling_seconds"));
    assert!(m.contains_key("grpc_server_handled_total"));
}

/// promtool's lint findings for one exposition, one `name problem` per line.
fn promtool_findings(text: &str) -> (i32, BTreeSet<String>) {
    let mut cmd = std::process::Command::new("promtool");
    cmd.args(["check", "metrics"]);
    let out = crate::support::bounded_run::BoundedRun::new(
        cmd,
        "promtool check metrics".into(),
        Duration::from_secs(60),
        Duration::from_millis(20),
    )
    .stdin(text.as_bytes().to_vec())
    .output();
    let findings = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    (out.status, findings)
}

#[test]
fn promtool_finds_nothing_in_kvds_metrics_that_it_does_not_find_in_etcds() {
    require_etcd35!();
    require_tool!("/usr/bin/promtool");
    let (etcd, etcd_ports) = start(&etcd35_bin(), &["--metrics", "extensive"]);
    let theirs = http(&format!("{}/metrics", etcd_ports.client_url()), &[]).body;
    drop(etcd);
    let (_kvd, ports) = start(&kvd_bin(), &["--metrics", "extensive"]);
    ctl(&etcdctl35_bin(), &ports.endpoint(), &["put", "a", "1"]).ok();
    let ours = http(&format!("{}/metrics", ports.client_url()), &[]).body;
    let (etcd_status, etcd_findings) = promtool_findings(&theirs);
    let (status, findings) = promtool_findings(&ours);
    // 0: clean; 3: lint problems only. Anything else is a format error.
    assert!(
        status == 0 || status == 3,
        "promtool rejected kvd's metrics ({status}): {findings:?}"
    );
    assert!(etcd_status == 0 || etcd_status == 3, "{etcd_findings:?}");
    let extra: Vec<&String> = findings.difference(&etcd_findings).collect();
    assert!(
        extra.is_empty(),
        "promtool findings in kvd's metrics that etcd's do not have: {extra:?}"
    );
}

/// Ranges count as etcd counts them: every range served, and every compare of a txn (a read).
#[test]
fn kvd_counts_ranges_as_etcd() {
    let (_kvd, ports) = start(&kvd_bin(), &[]);
    let ep = ports.endpoint();
    let scrape = || expo::parse(&http(&format!("{}/metrics", ports.client_url()), &[]).body);
    let before = expo::value(&scrape(), "etcd_mvcc_range_total", &[]).unwrap_or(-1.0);
    ctl(&etcdctl35_bin(), &ep, &["get", "a"]).ok();
    let mut txn = std::process::Command::new(etcdctl35_bin());
    txn.args([&format!("--endpoints={ep}"), "txn"]);
    crate::support::bounded_run::BoundedRun::new(
        txn,
        "etcdctl txn".into(),
        Duration::from_secs(30),
        Duration::from_millis(20),
    )
    .stdin(b"version(\"y\") = \"0\"\ncreate(\"z\") = \"0\"\n\nput c 3\n\n\n".to_vec())
    .output()
    .ok();
    let after = scrape();
    // One get, and two compares that both hold (a compare that fails ends the evaluation, in
    // etcd as in kvd).
    assert_eq!(
        expo::value(&after, "etcd_mvcc_range_total", &[]),
        Some(before + 3.0)
    );
    assert_eq!(
        expo::value(&after, "etcd_debugging_mvcc_range_total", &[]),
        Some(before + 3.0)
    );
}
