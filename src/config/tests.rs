//! End-to-end tests of [`load`]: command lines, environments and files as users write them,
//! and the sample files in `config/`.

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::flags::{Kind, Status, SPECS};
use super::*;

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

fn env(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Loads a command line that must be valid; returns the config and warning texts.
fn run(list: &[&str]) -> (Config, Vec<String>) {
    run_env(list, &[])
}

fn run_env(list: &[&str], vars: &[(&str, &str)]) -> (Config, Vec<String>) {
    match load(&args(list), &env(vars)) {
        Ok(Invocation::Run(config, warnings)) => (
            *config,
            warnings.iter().map(|w| w.message().to_string()).collect(),
        ),
        other => panic!("{list:?}: expected a config, got {other:?}"),
    }
}

/// Loads a command line that must fail; returns the error.
fn fail(list: &[&str]) -> ConfigError {
    fail_env(list, &[])
}

fn fail_env(list: &[&str], vars: &[(&str, &str)]) -> ConfigError {
    match load(&args(list), &env(vars)) {
        Err(e) => e,
        other => panic!("{list:?}: expected an error, got {other:?}"),
    }
}

fn messages(e: &ConfigError) -> Vec<&str> {
    e.problems().iter().map(Problem::message).collect()
}

/// Writes a configuration file into a fresh temporary directory.
fn yaml(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kvd.yaml");
    std::fs::write(&path, text).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

/// The sample files, found from this source file so the test works in any crate.
fn sample(name: &str) -> PathBuf {
    Path::new(file!())
        .parent()
        .unwrap()
        .join("../../config")
        .join(name)
}

// ----- defaults

#[test]
fn kvd_alone_is_etcds_default_member() {
    let (c, warnings) = run(&[]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.config_file, None);
    assert_eq!(c.name, "default");
    assert_eq!(c.data_dir, PathBuf::from("default.etcd"));
    assert_eq!(c.wal_dir, None);
    assert_eq!(c.listen_client_urls.len(), 1);
    let client = &c.listen_client_urls[0];
    assert_eq!(
        (client.scheme, client.host.as_str(), client.port),
        (Scheme::Http, "localhost", 2379)
    );
    assert_eq!(c.listen_peer_urls[0].raw, "http://localhost:2380");
    assert_eq!(c.advertise_client_urls, vec!["http://localhost:2379"]);
    assert_eq!(c.initial_advertise_peer_urls, vec!["http://localhost:2380"]);
    assert_eq!(
        c.initial_cluster,
        vec![("default".to_string(), "http://localhost:2380".to_string())]
    );
    assert_eq!(c.initial_cluster_token, "etcd-cluster");
    assert_eq!(c.initial_cluster_state, ClusterState::New);
    assert!(!c.force_new_cluster);
    assert_eq!(c.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(c.election_timeout, Duration::from_millis(1000));
    assert_eq!(c.election_ticks(), 10);
    assert_eq!(c.snapshot_count, 100_000);
    assert_eq!(c.quota_backend_bytes, 0);
    assert_eq!(c.backend_quota(), Some(2 * 1024 * 1024 * 1024));
    assert_eq!(c.max_request_bytes, 1_572_864);
    assert_eq!(c.max_txn_ops, 128);
    assert_eq!(c.max_concurrent_streams, u32::MAX);
    assert_eq!(c.grpc_keepalive_min_time, Duration::from_secs(5));
    assert_eq!(c.grpc_keepalive_interval, Duration::from_secs(7200));
    assert_eq!(c.grpc_keepalive_timeout, Duration::from_secs(20));
    assert_eq!(c.auto_compaction_mode, CompactionMode::Periodic);
    assert_eq!(c.auto_compaction_retention, "0");
    assert_eq!(c.auto_compaction, None);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.logger, Logger::Capnslog);
    assert_eq!(c.log_outputs, vec!["default"]);
    assert!(c.enable_grpc_gateway);
    assert_eq!(c.client_tls, TransportSecurity::default());
    assert_eq!(c.peer_tls, TransportSecurity::default());
    assert!(c.cipher_suites.is_empty());
    assert_eq!((c.tls_min_version, c.tls_max_version), (None, None));
    assert_eq!(c.self_signed_cert_validity, 1);
    assert_eq!(c.auth_token, "simple");
    assert_eq!(c.auth_token_ttl, 300);
    assert_eq!(c.bcrypt_cost, 10);
    assert!(c.strict_reconfig_check);
    assert!(c.initial_election_tick_advance);
    assert_eq!(
        c.experimental_watch_progress_notify_interval,
        Duration::from_secs(600)
    );
    assert_eq!(
        c.experimental_warning_apply_duration,
        Duration::from_millis(100)
    );
    assert_eq!(c.metrics, "basic");
}

#[test]
fn name_alone_sets_data_dir_and_initial_cluster() {
    let (c, _) = run(&["--name", "infra1"]);
    assert_eq!(c.data_dir, PathBuf::from("infra1.etcd"));
    assert_eq!(
        c.initial_cluster,
        vec![("infra1".to_string(), "http://localhost:2380".to_string())]
    );
    // Every advertised peer URL goes into the default cluster, as in etcd.
    let (c, _) = run(&[
        "--name=n",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380,http://localhost:2380",
    ]);
    assert_eq!(
        c.initial_cluster,
        vec![
            ("n".to_string(), "http://127.0.0.1:2380".to_string()),
            ("n".to_string(), "http://localhost:2380".to_string()),
        ]
    );
}

/// The defaults the help text shows are the real defaults: giving a flag its shown default
/// changes nothing.
#[test]
fn help_defaults_are_the_real_defaults() {
    let (base, _) = run(&[]);
    // Shown defaults that are descriptions, or that change the mode of a setting.
    let skip = [
        "data-dir",
        "initial-cluster",
        "tls-min-version",
        "config-file",
        "version",
    ];
    for spec in SPECS {
        if !spec.flag || spec.status == Status::Legacy || skip.contains(&spec.name) {
            continue;
        }
        if spec.kind != Kind::Bool && spec.default.is_empty() && spec.kind != Kind::Urls {
            continue;
        }
        let flag = format!("--{}={}", spec.name, spec.default);
        let mut list = vec![flag.as_str()];
        if spec.name == "listen-client-urls" {
            list.push("--advertise-client-urls=http://localhost:2379");
        }
        match load(&args(&list), &[]) {
            Ok(Invocation::Run(c, _)) => assert_eq!(*c, base, "{flag}"),
            other => panic!("{flag}: {other:?}"),
        }
    }
}

// ----- command-line forms

/// A value each flag accepts, for the form tests.
fn sample_value(spec: &super::flags::Spec) -> &'static str {
    match spec.name {
        "listen-peer-urls" | "initial-advertise-peer-urls" => "http://127.0.0.1:2380",
        "listen-client-urls" | "advertise-client-urls" | "listen-metrics-urls" => {
            "http://127.0.0.1:2379"
        }
        "listen-client-http-urls" => "http://127.0.0.1:2381",
        "log-format" => "console",
        "initial-cluster" => "default=http://localhost:2380",
        "initial-cluster-state" => "existing",
        "auto-compaction-mode" => "revision",
        "discovery-fallback" => "exit",
        "proxy" => "off",
        "logger" => "zap",
        "log-level" | "log-outputs" | "log-output" => "debug",
        "metrics" => "extensive",
        "auth-token" => "simple",
        "bcrypt-cost" => "12",
        "tls-min-version" | "tls-max-version" => "TLS1.3",
        "cipher-suites" => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "election-timeout" => "2000",
        _ => match spec.kind {
            Kind::Bool => "true",
            Kind::Uint | Kind::Int => "7",
            Kind::Duration => "3s",
            Kind::Str | Kind::List | Kind::Urls => "some-value",
        },
    }
}

/// Every flag gives the same result in all four Go forms (and booleans bare or `=true`).
#[test]
fn every_flag_accepts_every_go_form() {
    for spec in SPECS {
        if !spec.flag || spec.name == "config-file" || spec.status == Status::Legacy {
            continue;
        }
        let value = sample_value(spec);
        let name = spec.name;
        let forms: Vec<Vec<String>> = if spec.kind == Kind::Bool {
            vec![
                vec![format!("--{name}")],
                vec![format!("-{name}")],
                vec![format!("--{name}=true")],
                vec![format!("-{name}=true")],
            ]
        } else {
            vec![
                vec![format!("--{name}"), value.to_string()],
                vec![format!("-{name}"), value.to_string()],
                vec![format!("--{name}={value}")],
                vec![format!("-{name}={value}")],
            ]
        };
        let results: Vec<_> = forms
            .iter()
            .map(|f| {
                let a: Vec<OsString> = f.iter().map(OsString::from).collect();
                load(&a, &[])
            })
            .collect();
        for r in &results[1..] {
            assert_eq!(r, &results[0], "{name}");
        }
        if let Err(e) = &results[0] {
            assert!(e.exit_code() == 1, "{name}: {e}");
        }
    }
}

#[test]
fn typical_flags_land_in_the_config() {
    let (c, warnings) = run(&[
        "-name",
        "infra1",
        "--data-dir=/var/lib/kvd",
        "-wal-dir=wal",
        "--snapshot-count",
        "5000",
        "-heartbeat-interval=50",
        "--election-timeout",
        "500",
        "--quota-backend-bytes=8589934592",
        "--max-request-bytes",
        "0x200000",
        "--max-txn-ops=256",
        "--max-concurrent-streams=100",
        "--grpc-keepalive-min-time=1s",
        "--auto-compaction-retention=1h",
        "--log-level=warn",
        "--logger=zap",
        "--log-outputs=stderr,/var/log/kvd.log",
        "--auth-token-ttl=60",
        "--force-new-cluster",
        "-enable-grpc-gateway=false",
        "--initial-cluster-state=existing",
        "--initial-cluster-token=tok",
    ]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.name, "infra1");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/kvd"));
    assert_eq!(c.wal_dir, Some(PathBuf::from("wal")));
    assert_eq!(c.snapshot_count, 5000);
    assert_eq!(c.heartbeat_interval, Duration::from_millis(50));
    assert_eq!(c.election_timeout, Duration::from_millis(500));
    assert_eq!(c.backend_quota(), Some(8 * 1024 * 1024 * 1024));
    assert_eq!(c.max_request_bytes, 2 * 1024 * 1024);
    assert_eq!(c.max_txn_ops, 256);
    assert_eq!(c.max_concurrent_streams, 100);
    assert_eq!(c.grpc_keepalive_min_time, Duration::from_secs(1));
    assert_eq!(
        c.auto_compaction,
        Some(AutoCompaction::Periodic(Duration::from_secs(3600)))
    );
    assert_eq!(c.log_level, "warn");
    assert_eq!(c.logger, Logger::Zap);
    assert_eq!(c.log_outputs, vec!["stderr", "/var/log/kvd.log"]);
    assert_eq!(c.auth_token_ttl, 60);
    assert!(c.force_new_cluster);
    assert!(!c.enable_grpc_gateway);
    assert_eq!(c.initial_cluster_state, ClusterState::Existing);
    assert_eq!(c.initial_cluster_token, "tok");
}

#[test]
fn relative_paths_are_kept_relative() {
    let (c, _) = run(&[
        "--data-dir",
        "data/etcd",
        "--cert-file",
        "./server.crt",
        "--key-file",
        "server.key",
        "--listen-client-urls",
        "https://127.0.0.1:2379",
        "--advertise-client-urls",
        "https://127.0.0.1:2379",
    ]);
    assert_eq!(c.data_dir, PathBuf::from("data/etcd"));
    assert_eq!(c.client_tls.cert_file, Some(PathBuf::from("./server.crt")));
    assert_eq!(c.client_tls.key_file, Some(PathBuf::from("server.key")));
}

#[test]
fn version_and_help() {
    for v in [
        &["--version"][..],
        &["-version"],
        &["--version=true"],
        &["--name", "x", "-version"],
    ] {
        assert_eq!(load(&args(v), &[]).unwrap(), Invocation::Version, "{v:?}");
    }
    assert!(matches!(
        load(&args(&["--version=false"]), &[]),
        Ok(Invocation::Run(..))
    ));
    // An unknown flag is reported before --version is honoured, as in etcd.
    assert_eq!(fail(&["--version", "--bogus"]).exit_code(), 2);
    for h in ["-h", "--help", "-help"] {
        match load(&args(&[h]), &[]).unwrap() {
            Invocation::Help(text) => {
                assert!(text.contains("--listen-client-urls 'http://localhost:2379'"));
                assert!(text.contains("--peer-trusted-ca-file"));
            }
            other => panic!("{h}: {other:?}"),
        }
    }
}

// ----- unknown and deprecated flags

#[test]
fn unknown_flag_exits_2_with_etcds_text_and_a_suggestion() {
    let e = fail(&["--listen-client-url", "http://127.0.0.1:2379"]);
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        messages(&e),
        vec!["flag provided but not defined: -listen-client-url (did you mean --listen-client-urls?)"]
    );
    assert_eq!(
        e.to_string(),
        "flag provided but not defined: -listen-client-url (did you mean --listen-client-urls?)\nRun 'kvd --help' for the list of flags."
    );
}

#[test]
fn ca_file_is_accepted_as_trusted_ca_file_plus_client_cert_auth() {
    let (c, warnings) = run(&[
        "--listen-client-urls=https://127.0.0.1:2379",
        "--advertise-client-urls=https://127.0.0.1:2379",
        "--cert-file=server.crt",
        "--key-file=server.key",
        "--ca-file",
        "ca.crt",
        "--listen-peer-urls=https://127.0.0.1:2380",
        "--initial-advertise-peer-urls=https://127.0.0.1:2380",
        "--peer-cert-file=server.crt",
        "--peer-key-file=server.key",
        "-peer-ca-file=./ca.crt",
    ]);
    assert_eq!(c.client_tls.trusted_ca_file, Some(PathBuf::from("ca.crt")));
    assert!(c.client_tls.client_cert_auth);
    assert_eq!(c.peer_tls.trusted_ca_file, Some(PathBuf::from("./ca.crt")));
    assert!(c.peer_tls.client_cert_auth);
    assert_eq!(
        warnings,
        vec![
            "--ca-file is deprecated (etcd 3.4 removed it); kvd reads it as --trusted-ca-file=ca.crt --client-cert-auth. Use those flags instead.",
            "--peer-ca-file is deprecated (etcd 3.4 removed it); kvd reads it as --peer-trusted-ca-file=./ca.crt --peer-client-cert-auth. Use those flags instead.",
        ]
    );
}

#[test]
fn ca_file_conflicting_with_trusted_ca_file_is_an_error() {
    let e = fail(&["--ca-file=a.crt", "--trusted-ca-file=b.crt"]);
    assert!(
        messages(&e)
            .iter()
            .any(|m| m.contains("--ca-file \"a.crt\" and --trusted-ca-file \"b.crt\" disagree")),
        "{e}"
    );
}

/// The whole command line of the guide that still uses the removed flags (three members on
/// localhost, `--ca-file`/`--peer-ca-file`).
#[test]
fn legacy_guide_command_line_loads() {
    for i in 1..=3 {
        let name = format!("infra{i}");
        let client = format!("https://localhost:2379{i}");
        let peer = format!("https://localhost:2380{i}");
        let (c, warnings) = run(&[
            "--name", &name,
            "--advertise-client-urls", &client,
            "--listen-client-urls", &client,
            "--cert-file", "./server.crt",
            "--key-file", "./server.key",
            "--client-cert-auth",
            "--ca-file", "ca.crt",
            "--initial-advertise-peer-urls", &peer,
            "--listen-peer-urls", &peer,
            "--peer-cert-file", "./server.crt",
            "--peer-key-file", "./server.key",
            "--peer-ca-file", "./ca.crt",
            "--initial-cluster", "infra1=https://localhost:23801,infra2=https://localhost:23802,infra3=https://localhost:23803",
            "--initial-cluster-token", "etcd-for-k8sp-tls-demo",
            "--initial-cluster-state", "new",
        ]);
        assert_eq!(c.name, name);
        assert_eq!(c.initial_cluster.len(), 3);
        assert!(c.client_tls.requires_client_cert() && c.peer_tls.requires_client_cert());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}

/// The docker guide's single-dash command line.
#[test]
fn single_dash_guide_command_line_loads() {
    let (c, warnings) = run(&[
        "-name", "etcdnode1",
        "-advertise-client-urls", "https://172.16.2.1:2379",
        "-initial-advertise-peer-urls", "https://172.16.2.1:2380",
        "-listen-client-urls", "https://0.0.0.0:2379",
        "-listen-peer-urls", "https://0.0.0.0:2380",
        "-initial-cluster-token", "etcd-cluster",
        "-initial-cluster", "etcdnode1=https://172.16.2.1:2380,etcdnode2=https://172.16.2.2:2380,etcdnode3=https://172.16.2.3:2380",
        "-initial-cluster-state", "new",
        "-cert-file=/pki/server.pem",
        "-key-file=/pki/server-key.pem",
        "-client-cert-auth",
        "-trusted-ca-file=/pki/ca.pem",
        "-peer-client-cert-auth",
        "-peer-cert-file=/pki/peer.pem",
        "-peer-key-file=/pki/peer-key.pem",
        "-peer-trusted-ca-file=/pki/ca.pem",
    ]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        c.listen_client_urls[0].bind_address().unwrap(),
        "0.0.0.0:2379"
    );
    assert!(c.listen_peer_urls[0].is_tls());
    assert_eq!(c.peer_tls.cert_file, Some(PathBuf::from("/pki/peer.pem")));
    assert!(c.peer_tls.client_cert_auth);
}

#[test]
fn bad_flag_values_exit_2_like_go() {
    let e = fail(&["--heartbeat-interval", "abc"]);
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        messages(&e),
        vec!["invalid value \"abc\" for flag -heartbeat-interval: parse error (expected a whole number >= 0)"]
    );
    let e = fail(&[
        "--listen-client-urls",
        "ftp://127.0.0.1:2379",
        "--advertise-client-urls",
        "http://x:1",
    ]);
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        messages(&e),
        vec!["invalid value \"ftp://127.0.0.1:2379\" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:2379"]
    );
    let e = fail(&["--initial-cluster-state", "foo"]);
    assert_eq!(
        messages(&e),
        vec!["invalid value \"foo\" for flag -initial-cluster-state: valid values are 'new' or 'existing'"]
    );
    let e = fail(&["--max-concurrent-streams", "5000000000"]);
    assert_eq!(
        messages(&e),
        vec!["invalid value \"5000000000\" for flag -max-concurrent-streams: value out of range (at most 4294967295)"]
    );
    let e = fail(&["--grpc-keepalive-min-time", "5"]);
    assert!(messages(&e)[0]
        .starts_with("invalid value \"5\" for flag -grpc-keepalive-min-time: parse error"));
}

// ----- environment

#[test]
fn etcd_variables_set_every_flag() {
    let (c, warnings) = run_env(
        &[],
        &[
            ("ETCD_NAME", "envname"),
            ("ETCD_DATA_DIR", "/data"),
            ("ETCD_LISTEN_CLIENT_URLS", "https://127.0.0.1:2379"),
            ("ETCD_ADVERTISE_CLIENT_URLS", "https://127.0.0.1:2379"),
            ("ETCD_CERT_FILE", "s.crt"),
            ("ETCD_KEY_FILE", "s.key"),
            ("ETCD_TRUSTED_CA_FILE", "ca.crt"),
            ("ETCD_PEER_TRUSTED_CA_FILE", "pca.crt"),
            ("ETCD_PEER_CLIENT_CERT_AUTH", "true"),
            ("ETCD_LISTEN_PEER_URLS", "https://127.0.0.1:2380"),
            ("ETCD_INITIAL_ADVERTISE_PEER_URLS", "https://127.0.0.1:2380"),
            ("ETCD_PEER_AUTO_TLS", "false"),
            ("ETCD_PEER_CERT_FILE", "p.crt"),
            ("ETCD_PEER_KEY_FILE", "p.key"),
            ("HOME", "/root"),
        ],
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.name, "envname");
    assert_eq!(c.data_dir, PathBuf::from("/data"));
    assert_eq!(c.client_tls.trusted_ca_file, Some(PathBuf::from("ca.crt")));
    assert_eq!(c.peer_tls.trusted_ca_file, Some(PathBuf::from("pca.crt")));
    assert!(c.peer_tls.client_cert_auth);
    assert_eq!(
        c.initial_cluster,
        vec![("envname".to_string(), "https://127.0.0.1:2380".to_string())]
    );
}

#[test]
fn flag_wins_over_variable_with_a_warning() {
    let (c, warnings) = run_env(
        &["--name", "flag"],
        &[("ETCD_NAME", "env"), ("ETCD_FOO", "1")],
    );
    assert_eq!(c.name, "flag");
    assert_eq!(
        warnings,
        vec![
            "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag); kvd uses --name",
            "unrecognized environment variable ETCD_FOO=1",
        ]
    );
}

#[test]
fn bad_variable_values_name_the_variable() {
    let e = fail_env(
        &[],
        &[
            ("ETCD_HEARTBEAT_INTERVAL", "abc"),
            ("ETCD_CLIENT_CERT_AUTH", "yes"),
        ],
    );
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        messages(&e),
        vec![
            "invalid value \"abc\" for ETCD_HEARTBEAT_INTERVAL: parse error (expected a whole number >= 0)",
            "invalid value \"yes\" for ETCD_CLIENT_CERT_AUTH: expected true or false",
        ]
    );
}

#[test]
fn listen_urls_from_a_variable_also_require_advertise_urls() {
    let e = fail_env(&[], &[("ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:2379")]);
    assert_eq!(
        messages(&e),
        vec!["--advertise-client-urls is required when ETCD_LISTEN_CLIENT_URLS is set explicitly"]
    );
}

// ----- configuration file

#[test]
fn config_file_replaces_flags_and_variables_with_warnings() {
    let (_dir, path) = yaml("name: fromfile\n");
    let (c, warnings) = run_env(
        &[
            "--config-file",
            &path,
            "--name",
            "flag",
            "-cert-file=x",
            "--client-cert-auth",
        ],
        &[("ETCD_DATA_DIR", "/d"), ("ETCD_BOGUS", "1")],
    );
    assert_eq!(c.name, "fromfile");
    assert_eq!(c.data_dir, PathBuf::from("fromfile.etcd"));
    assert_eq!(c.config_file, Some(PathBuf::from(&path)));
    assert!(
        !c.enable_grpc_gateway,
        "etcd turns the gateway off with a config file"
    );
    assert_eq!(
        warnings,
        vec![
            format!("flag --name is ignored because the configuration file {path} is used; set 'name' in the file instead"),
            format!("flag --cert-file is ignored because the configuration file {path} is used; set 'client-transport-security.cert-file' in the file instead"),
            format!("flag --client-cert-auth is ignored because the configuration file {path} is used; set 'client-transport-security.client-cert-auth' in the file instead"),
            format!("environment variable ETCD_DATA_DIR is ignored because the configuration file {path} is used; set 'data-dir' in the file instead"),
            format!("environment variable ETCD_BOGUS is ignored because the configuration file {path} is used"),
        ]
    );
}

#[test]
fn config_file_from_the_environment() {
    let (_dir, path) = yaml("name: viaenv\nenable-grpc-gateway: true\n");
    let (c, warnings) = run_env(&[], &[("ETCD_CONFIG_FILE", &path)]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.name, "viaenv");
    assert!(c.enable_grpc_gateway);
}

/// The YAML guide's file: it misspells `advertise-client-url`; etcd silently advertises
/// the default URL, kvd does the same but says why.
#[test]
fn guide_yaml_with_a_typo_loads_with_warnings() {
    let (_dir, path) = yaml(
        "\
name: etcd01
data-dir: data/etcd/default.etcd
listen-peer-urls: https://127.0.0.1:2380
listen-client-urls: https://127.0.0.1:2379,https://127.0.0.1:12379
initial-advertise-peer-urls: https://127.0.0.1:2380
advertise-client-url: https://127.0.0.1:2379
initial-cluster: etcd01=https://127.0.0.1:2380
initial-cluster-token: etcd-cluster
initial-cluster-state: new
# client
client-transport-security: 
  cert-file:  certs/client.crt
  key-file:   certs/client.key
  client-cert-auth: true
  trusted-ca-file: certs/ca.crt

peer-transport-security:
  cert-file: certs/peer.crt
  key-file:  certs/peer.key
  client-cert-auth: false
  trusted-ca-file: certs/ca.crt
  auto-tls: false
",
    );
    let (c, warnings) = run(&["--config-file", &path]);
    assert_eq!(c.data_dir, PathBuf::from("data/etcd/default.etcd"));
    assert_eq!(c.advertise_client_urls, vec!["http://localhost:2379"]);
    assert_eq!(c.listen_client_urls.len(), 2);
    assert!(
        c.peer_tls.requires_client_cert(),
        "a trusted CA alone requires peer certs"
    );
    assert!(!c.peer_tls.client_cert_auth);
    assert_eq!(
        warnings,
        vec![
            format!("{path}: unknown key 'advertise-client-url' ignored (did you mean 'advertise-client-urls'?)"),
            format!("{path}: 'listen-client-urls' is set but 'advertise-client-urls' is not: this member advertises http://localhost:2379, as etcd does, and clients told that URL may not reach it; set 'advertise-client-urls'"),
            format!("{path}: advertise-client-urls has http://localhost:2379 (plaintext) but every listen-client-urls URL uses TLS"),
        ]
    );
}

#[test]
fn yaml_accepts_lists_numbers_and_nulls() {
    let (_dir, path) = yaml(
        "\
name: n
data-dir:
wal-dir: ''
listen-client-urls: [http://127.0.0.1:2379, 'http://127.0.0.1:12379']
advertise-client-urls:
  - http://127.0.0.1:2379
auto-compaction-mode: periodic
auto-compaction-retention: 1
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
tls-min-version: 'TLS1.2'
tls-max-version: 'TLS1.3'
grpc-keepalive-min-time: 2000000000
grpc-keepalive-interval: 1h
self-signed-cert-validity: 2
log-outputs: [stderr]
force-new-cluster: false
",
    );
    let (c, warnings) = run(&["--config-file", &path]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.data_dir, PathBuf::from("n.etcd"));
    assert_eq!(c.wal_dir, None);
    assert_eq!(c.listen_client_urls.len(), 2);
    assert_eq!(
        c.auto_compaction,
        Some(AutoCompaction::Periodic(Duration::from_secs(3600)))
    );
    assert_eq!(c.cipher_suites.len(), 2);
    assert_eq!(c.tls_min_version, Some(TlsVersion::Tls12));
    assert_eq!(c.tls_max_version, Some(TlsVersion::Tls13));
    assert_eq!(
        c.grpc_keepalive_min_time,
        Duration::from_secs(2),
        "YAML numbers are nanoseconds"
    );
    assert_eq!(c.grpc_keepalive_interval, Duration::from_secs(3600));
    assert_eq!(c.self_signed_cert_validity, 2);
    assert_eq!(c.log_outputs, vec!["stderr"]);
}

#[test]
fn yaml_type_errors_name_every_key() {
    let (_dir, path) = yaml(
        "\
heartbeat-interval: abc
election-timeout: [1, 2]
client-transport-security:
  client-cert-auth: maybe
",
    );
    let e = fail(&["--config-file", &path]);
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        messages(&e),
        vec![
            format!("{path}: invalid value \"abc\" for 'heartbeat-interval': parse error (expected a whole number >= 0)"),
            format!("{path}: invalid value \"1,2\" for 'election-timeout': expected a whole number >= 0"),
            format!("{path}: invalid value \"maybe\" for 'client-transport-security.client-cert-auth': expected true or false"),
        ]
    );
}

#[test]
fn yaml_syntax_error_names_file_and_line() {
    let (_dir, path) = yaml("name: a\n  bad: [\n");
    let e = fail(&["--config-file", &path]);
    assert_eq!(e.exit_code(), 1);
    assert!(
        messages(&e)[0].starts_with(&format!("{path}: invalid YAML (line 2, column 6): ")),
        "{e}"
    );
}

#[test]
fn unreadable_config_file_names_file_and_reason() {
    let e = fail(&["--config-file", "/nonexistent/kvd.yaml"]);
    assert_eq!(
        messages(&e),
        vec!["cannot read configuration file /nonexistent/kvd.yaml: No such file or directory (os error 2)"]
    );
    let dir = tempfile::tempdir().unwrap();
    let e = fail(&["--config-file", &dir.path().display().to_string()]);
    assert!(messages(&e)[0].contains("Is a directory"), "{e}");
}

#[test]
fn yaml_validation_uses_keys_and_the_file_name() {
    let (_dir, path) = yaml("election-timeout: 200\nlisten-client-urls: https://127.0.0.1:2379\nadvertise-client-urls: https://127.0.0.1:2379\n");
    let e = fail(&["--config-file", &path]);
    assert_eq!(
        messages(&e),
        vec![
            format!("{path}: election-timeout[200ms] should be at least as 5 times as heartbeat-interval[100ms]"),
            format!("{path}: listen-client-urls has https://127.0.0.1:2379 with TLS but no certificate is configured: set client-transport-security.cert-file and client-transport-security.key-file, or client-transport-security.auto-tls"),
        ]
    );
}

#[test]
fn crl_and_allowed_names_come_from_the_yaml_blocks() {
    let (_dir, path) = yaml(
        "\
listen-peer-urls: https://127.0.0.1:2380
initial-advertise-peer-urls: https://127.0.0.1:2380
peer-transport-security:
  cert-file: p.crt
  key-file: p.key
  trusted-ca-file: ca.crt
  crl-file: crl.pem
  allowed-hostname: [a.example.com, b.example.com]
  client-cert-file: pc.crt
  client-key-file: pc.key
client-transport-security:
  allowed-cn: root
  ca-file: ca.crt
",
    );
    let (c, warnings) = run(&["--config-file", &path]);
    assert_eq!(c.peer_tls.crl_file, Some(PathBuf::from("crl.pem")));
    assert_eq!(
        c.peer_tls.allowed_hostname,
        vec!["a.example.com", "b.example.com"]
    );
    assert_eq!(c.peer_tls.client_cert_file, Some(PathBuf::from("pc.crt")));
    assert_eq!(c.client_tls.allowed_cn, Some("root".to_string()));
    assert!(c.client_tls.client_cert_auth);
    assert_eq!(c.client_tls.trusted_ca_file, Some(PathBuf::from("ca.crt")));
    assert!(warnings.iter().any(|w| w.contains(
        "'client-transport-security.ca-file' is deprecated (etcd 3.4 removed it); kvd reads it as 'client-transport-security.trusted-ca-file: ca.crt' plus 'client-transport-security.client-cert-auth: true'"
    )), "{warnings:?}");
}

#[test]
fn sample_files_parse_and_validate() {
    for (file, name) in [
        ("single-tls.yaml", "single"),
        ("cluster-member1.yaml", "member1"),
        ("cluster-member2.yaml", "member2"),
        ("cluster-member3.yaml", "member3"),
    ] {
        let path = sample(file);
        let path_text = path.display().to_string();
        let (c, warnings) = run(&["--config-file", &path_text]);
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
        assert_eq!(c.name, name, "{file}");
        assert!(c.listen_client_urls.iter().all(ListenUrl::is_tls), "{file}");
        assert!(
            c.client_tls.has_cert() && c.client_tls.client_cert_auth,
            "{file}"
        );
        assert!(c.enable_grpc_gateway, "{file}");
        assert_eq!(c.logger, Logger::Zap);
        assert!(c.initial_cluster.iter().any(|(n, _)| n == name), "{file}");
    }
    let (c, _) = run(&[
        "--config-file",
        &sample("cluster-member2.yaml").display().to_string(),
    ]);
    assert_eq!(c.initial_cluster.len(), 3);
    assert!(c.peer_tls.has_cert() && c.peer_tls.client_cert_auth);
    assert_eq!(c.peer_tls.allowed_cn.as_deref(), Some("kvd-member"));
    assert_eq!(c.listen_peer_urls[0].port, 22380);
    assert_eq!(c.advertise_client_urls, vec!["https://127.0.0.1:22379"]);
}

// ----- validation

#[test]
fn election_timeout_rules_use_etcds_words() {
    assert_eq!(
        messages(&fail(&["--election-timeout", "300"])),
        vec!["--election-timeout[300ms] should be at least as 5 times as --heartbeat-interval[100ms]"]
    );
    assert_eq!(
        messages(&fail(&[
            "--election-timeout",
            "60000",
            "--heartbeat-interval",
            "1000"
        ])),
        vec!["--election-timeout[60000ms] is too long, and should be set less than 50000ms"]
    );
    assert_eq!(
        messages(&fail(&["--heartbeat-interval", "0"])),
        vec!["--heartbeat-interval must be >0 (set to 0ms)"]
    );
    let (c, _) = run(&["--election-timeout", "500"]);
    assert_eq!(c.election_ticks(), 5);
}

#[test]
fn advertise_client_urls_required_with_listen_client_urls() {
    let e = fail(&["--listen-client-urls", "http://127.0.0.1:2379"]);
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        e.to_string(),
        "--advertise-client-urls is required when --listen-client-urls is set explicitly"
    );
}

#[test]
fn initial_cluster_must_hold_this_member() {
    assert_eq!(
        messages(&fail(&["--name", "infra1", "--initial-cluster", "infra2=http://localhost:2380"])),
        vec!["couldn't find local name \"infra1\" in the initial cluster configuration (--initial-cluster: it lists infra2; --name is \"infra1\")"]
    );
    assert_eq!(
        messages(&fail(&["--name", "infra1", "--initial-cluster", "infra1=http://127.0.0.1:2381"])),
        vec!["--initial-cluster has infra1=http://127.0.0.1:2381 but missing from --initial-advertise-peer-urls=http://localhost:2380"]
    );
    assert_eq!(
        messages(&fail(&[
            "--name", "infra1",
            "--initial-advertise-peer-urls", "http://10.0.0.1:2380,http://10.0.0.2:2380",
            "--initial-cluster", "infra1=http://10.0.0.1:2380",
        ])),
        vec!["--initial-advertise-peer-urls has http://10.0.0.2:2380 but missing from --initial-cluster=infra1=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380"]
    );
    assert_eq!(
        messages(&fail(&["--name", "infra1", "--initial-cluster", "infra1=http://localhost:2380,infra2=http://localhost:2380"])),
        vec!["initial cluster infra1=http://localhost:2380,infra2=http://localhost:2380 has duplicate url (http://localhost:2380 is given to infra1 and infra2) in --initial-cluster"]
    );
    assert_eq!(
        messages(&fail(&["--initial-cluster", ""])),
        vec!["couldn't find local name \"default\" in the initial cluster configuration (--initial-cluster: it is empty; --name is \"default\")"]
    );
}

#[test]
fn a_member_that_already_exists_skips_the_bootstrap_checks() {
    // After `member update` to an https peer URL the member restarts with new flags while
    // --initial-cluster still names the old URL; etcd (with a WAL) ignores initial-*.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("m1");
    let data_flag = format!("--data-dir={}", data.display());
    let flags = [
        "--name",
        "m1",
        data_flag.as_str(),
        "--listen-peer-urls",
        "https://127.0.0.1:2380",
        "--peer-auto-tls",
        "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-cluster",
        "m1=http://127.0.0.1:2380",
    ];
    assert_eq!(
        messages(&fail(&flags)),
        vec!["--initial-cluster has m1=http://127.0.0.1:2380 but missing from --initial-advertise-peer-urls=https://127.0.0.1:2380"]
    );
    std::fs::create_dir_all(data.join("member").join("kvd")).unwrap();
    let (c, warnings) = run(&flags);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        c.initial_advertise_peer_urls,
        vec!["https://127.0.0.1:2380"]
    );
}

#[test]
fn initial_cluster_names_may_repeat_and_names_are_not_resolved() {
    let (c, warnings) = run(&[
        "--name",
        "a",
        "--initial-advertise-peer-urls",
        "http://10.0.0.1:2380,http://10.0.0.2:2380",
        "--initial-cluster",
        "a=http://10.0.0.2:2380,b=http://10.0.0.3:2380,a=http://10.0.0.1:2380",
    ]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.initial_cluster.len(), 3);
    // A host name against an IP: etcd resolves both, kvd warns instead of refusing.
    let (_, warnings) = run(&[
        "--name",
        "a",
        "--initial-cluster",
        "a=http://127.0.0.1:2380",
    ]);
    assert_eq!(
        warnings,
        vec!["--initial-cluster has a=http://127.0.0.1:2380 but missing from --initial-advertise-peer-urls=http://localhost:2380 (kvd does not resolve host names at startup; make sure they name the same addresses)"]
    );
    // Joining an existing cluster does not compare the URLs, as etcd.
    run(&[
        "--name",
        "a",
        "--initial-cluster-state=existing",
        "--initial-cluster",
        "a=http://10.9.9.9:2380",
    ]);
}

#[test]
fn bad_initial_cluster_entries_are_all_reported() {
    let e = fail(&[
        "--initial-cluster",
        "default=http://localhost:2380,x=ftp://a:1,=http://b:1",
    ]);
    assert_eq!(
        messages(&e),
        vec![
            "--initial-cluster: member \"x\": URL scheme must be http, https, unix, or unixs: ftp://a:1",
            "--initial-cluster: entry \"=http://b:1\" has no member name before '='",
        ]
    );
}

#[test]
fn listen_urls_must_bind_to_ips() {
    let e = fail(&[
        "--listen-client-urls",
        "http://example.com:2379",
        "--advertise-client-urls",
        "http://example.com:2379",
    ]);
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        messages(&e),
        vec!["--listen-client-urls: expected IP in URL for binding (http://example.com:2379)"]
    );
    let (c, _) = run(&[
        "--listen-client-urls",
        "unix://localhost:12379",
        "--advertise-client-urls",
        "unix://localhost:12379",
    ]);
    assert_eq!(
        c.listen_client_urls[0].path,
        Some(PathBuf::from("localhost:12379"))
    );
}

#[test]
fn https_without_certificates_names_the_flags_to_set() {
    let e = fail(&[
        "--listen-client-urls",
        "https://127.0.0.1:2379",
        "--advertise-client-urls",
        "https://127.0.0.1:2379",
        "--listen-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380",
    ]);
    assert_eq!(
        messages(&e),
        vec![
            "--listen-client-urls has https://127.0.0.1:2379 with TLS but no certificate is configured: set --cert-file and --key-file, or --auto-tls",
            "--listen-peer-urls has https://127.0.0.1:2380 with TLS but no certificate is configured: set --peer-cert-file and --peer-key-file, or --peer-auto-tls",
        ]
    );
    let (c, warnings) = run(&[
        "--listen-client-urls",
        "https://127.0.0.1:2379",
        "--advertise-client-urls",
        "https://127.0.0.1:2379",
        "--auto-tls",
    ]);
    assert!(c.client_tls.auto_tls);
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn certificate_with_only_http_urls_is_a_warning() {
    let (c, warnings) = run(&[
        "--cert-file",
        "s.crt",
        "--key-file",
        "s.key",
        "--trusted-ca-file",
        "ca.crt",
    ]);
    assert!(c.client_tls.has_cert());
    assert_eq!(
        warnings,
        vec!["--cert-file, --key-file, --trusted-ca-file set but no --listen-client-urls URL uses https or unixs: that port serves plaintext and ignores these TLS settings"]
    );
}

#[test]
fn tls_pairs_and_exclusive_settings() {
    let e = fail(&[
        "--cert-file",
        "s.crt",
        "--peer-cert-allowed-cn",
        "m",
        "--peer-cert-allowed-hostname",
        "m.example.com",
        "--client-cert-auth",
    ]);
    assert_eq!(
        messages(&e),
        vec![
            "--cert-file is set but --key-file is not: set both",
            "--client-cert-auth needs --trusted-ca-file: without a trusted CA no client certificate can be verified",
            "--peer-cert-allowed-cn and --peer-cert-allowed-hostname are mutually exclusive (cn=\"m\", hostname=\"m.example.com\"): set only one",
        ]
    );
}

#[test]
fn auto_tls_with_certificates_or_client_auth() {
    let (c, warnings) = run(&[
        "--listen-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380",
        "--peer-auto-tls",
        "--peer-cert-file=p.crt",
        "--peer-key-file=p.key",
    ]);
    assert!(!c.peer_tls.auto_tls);
    assert_eq!(warnings, vec!["ignoring --peer-auto-tls since --peer-cert-file and --peer-key-file are given (as etcd)"]);
    let (c, warnings) = run(&[
        "--listen-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380",
        "--peer-auto-tls",
        "--peer-client-cert-auth",
    ]);
    assert!(c.peer_tls.auto_tls && !c.peer_tls.client_cert_auth);
    assert_eq!(warnings.len(), 1);
}

#[test]
fn cipher_suites_and_tls_versions() {
    let (c, warnings) = run(&[
        "--cipher-suites",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ]);
    assert!(warnings.is_empty());
    assert_eq!(
        c.cipher_suites,
        vec![
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        ]
    );
    let (c, warnings) = run(&[
        "--cipher-suites",
        "TLS_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ]);
    assert_eq!(
        c.cipher_suites,
        vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    );
    assert_eq!(
        warnings,
        vec!["--cipher-suites: TLS_RSA_WITH_AES_128_CBC_SHA left out: kvd's TLS library does not implement these weak suites"]
    );
    let e = fail(&["--cipher-suites", "TLS_RSA_WITH_RC4_128_SHA"]);
    assert!(messages(&e)[0]
        .starts_with("--cipher-suites: kvd implements none of TLS_RSA_WITH_RC4_128_SHA"));
    assert_eq!(
        messages(&fail(&["--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265"])),
        vec!["--cipher-suites: unexpected TLS cipher suite \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265\" (did you mean TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256?)"]
    );
    assert_eq!(
        messages(&fail(&["--tls-min-version", "TLS1.3", "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])),
        vec!["cipher suites cannot be configured when only TLS1.3 is enabled (--cipher-suites with --tls-min-version=TLS1.3)"]
    );
    assert_eq!(
        messages(&fail(&["--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"])),
        vec!["min version (TLS1.3) is greater than max version (TLS1.2): --tls-min-version must not exceed --tls-max-version"]
    );
    assert_eq!(
        messages(&fail(&["--tls-max-version", "TLS13"])),
        vec![
            "--tls-max-version: unexpected TLS version \"TLS13\" (must be one of: TLS1.2, TLS1.3)"
        ]
    );
    let (c, _) = run(&["--tls-min-version=TLS1.3"]);
    assert_eq!(c.tls_min_version, Some(TlsVersion::Tls13));
}

#[test]
fn auto_compaction_retention() {
    let cases: &[(&[&str], Option<AutoCompaction>)] = &[
        (
            &["--auto-compaction-retention=1h"],
            Some(AutoCompaction::Periodic(Duration::from_secs(3600))),
        ),
        (
            &["--auto-compaction-retention=30m"],
            Some(AutoCompaction::Periodic(Duration::from_secs(1800))),
        ),
        (
            &["--auto-compaction-retention=5"],
            Some(AutoCompaction::Periodic(Duration::from_secs(5 * 3600))),
        ),
        (&["--auto-compaction-retention=0"], None),
        (&["--auto-compaction-retention=0h"], None),
        (
            &[
                "--auto-compaction-mode=revision",
                "--auto-compaction-retention=1000",
            ],
            Some(AutoCompaction::Revision(1000)),
        ),
        (&["--auto-compaction-mode=revision"], None),
    ];
    for (list, want) in cases {
        let (c, _) = run(list);
        assert_eq!(c.auto_compaction, *want, "{list:?}");
    }
    assert_eq!(
        messages(&fail(&["--auto-compaction-mode=revision", "--auto-compaction-retention=1h"])),
        vec!["invalid --auto-compaction-retention \"1h\": with auto-compaction-mode 'revision' it is a whole number of revisions to keep"]
    );
    assert_eq!(
        messages(&fail(&["--auto-compaction-retention=1x"])),
        vec!["invalid --auto-compaction-retention \"1x\": parse error (with auto-compaction-mode 'periodic' use a duration such as 1h or 30m, or a whole number of hours)"]
    );
    assert_eq!(
        messages(&fail(&["--auto-compaction-mode=foo"])),
        vec!["unknown auto-compaction-mode \"foo\" in --auto-compaction-mode (use 'periodic' or 'revision')"]
    );
}

#[test]
fn logging_auth_and_limits() {
    let (c, warnings) = run(&["--debug"]);
    assert_eq!(c.log_level, "debug");
    assert_eq!(
        warnings,
        vec!["--debug is deprecated; use --log-level=debug instead"]
    );
    let (c, _) = run(&["--log-output", "stdout"]);
    assert_eq!(c.log_outputs, vec!["stdout"]);
    let e = fail(&[
        "--log-level",
        "loud",
        "--logger",
        "foo",
        "--bcrypt-cost",
        "3",
        "--auth-token",
        "magic",
    ]);
    assert_eq!(
        messages(&e),
        vec![
            "unknown logger option \"foo\" in --logger (use 'zap' or 'capnslog')",
            "--log-level: unknown level \"loud\" (use one of debug, info, warn, error, panic, fatal)",
            "--auth-token: unknown token type \"magic\" (use 'simple' or 'jwt,...')",
            "--bcrypt-cost must be between 4 and 31 (set to 3)",
        ]
    );
    let (c, _) = run(&[
        "--auth-token",
        "jwt,pub-key=a.pub,priv-key=a,sign-method=RS256",
    ]);
    assert!(c.auth_token.starts_with("jwt,"));
    let (c, _) = run(&["--quota-backend-bytes=-1"]);
    assert_eq!(c.backend_quota(), None);
    let e = fail(&["--experimental-enable-lease-checkpoint-persist"]);
    assert_eq!(
        messages(&e),
        vec!["setting --experimental-enable-lease-checkpoint-persist requires --experimental-enable-lease-checkpoint"]
    );
}

#[test]
fn inert_and_unsupported_flags() {
    let (c, warnings) = run(&["--max-wals=10", "--enable-v2", "--proxy=off", "--v"]);
    assert!(c.enable_v2);
    assert_eq!(
        warnings,
        vec![
            "flag \"-v\" is no longer supported - ignoring.",
            "--enable-v2 has no effect in kvd (kvd serves only the v3 API); accepted for etcd compatibility",
            "--max-wals has no effect in kvd (kvd does not store data in bbolt, WAL and snapshot files); accepted for etcd compatibility",
        ]
    );
    let e = fail(&[
        "--discovery",
        "https://discovery.etcd.io/x",
        "--proxy",
        "on",
    ]);
    assert_eq!(
        messages(&e),
        vec![
            "--discovery is not supported: kvd bootstraps only from --initial-cluster",
            "--proxy is not supported: kvd has no v2 proxy",
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = fail(&[
        "--heartbeat-interval",
        "0",
        "--election-timeout",
        "60000",
        "--listen-peer-urls",
        "http://example.com:2380",
        "--log-level",
        "x",
        "--name",
        "n",
        "--initial-cluster",
        "m=http://localhost:2380",
    ]);
    assert_eq!(e.exit_code(), 1);
    assert_eq!(e.problems().len(), 5, "{e}");
    let text = e.to_string();
    for part in [
        "--heartbeat-interval must be >0",
        "--election-timeout[60000ms] is too long",
        "expected IP in URL for binding",
        "--log-level: unknown level",
        "couldn't find local name \"n\"",
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
    // Mixed with a command-line syntax problem, the exit status is 2.
    let e = fail(&["--heartbeat-interval", "x", "--election-timeout", "60000"]);
    assert_eq!(e.exit_code(), 2);
}

// ----- operator settings (metrics, logs, HTTP listeners)

#[test]
fn operator_settings_from_flags_and_yaml() {
    let (c, _) = run(&[
        "--listen-client-http-urls",
        "http://127.0.0.1:2381",
        "--listen-metrics-urls",
        "http://127.0.0.1:2382",
        "--metrics",
        "extensive",
        "--logger",
        "zap",
        "--log-format",
        "console",
        "--log-outputs",
        "stdout,/var/log/kvd.log",
    ]);
    assert_eq!(c.listen_client_http_urls.len(), 1);
    assert_eq!(c.listen_client_http_urls[0].raw, "http://127.0.0.1:2381");
    assert_eq!(c.listen_metrics_urls[0].raw, "http://127.0.0.1:2382");
    assert_eq!(c.metrics, "extensive");
    assert_eq!(c.logger, super::Logger::Zap);
    assert_eq!(c.log_format, super::LogFormat::Console);
    assert_eq!(c.log_outputs, ["stdout", "/var/log/kvd.log"]);
    let (_d, path) =
        yaml("listen-client-http-urls: http://127.0.0.1:2381\nlog-format: json\nlogger: zap\n");
    let (c, _) = run(&["--config-file", &path]);
    assert_eq!(c.listen_client_http_urls[0].raw, "http://127.0.0.1:2381");
    assert_eq!(c.log_format, super::LogFormat::Json);
}

#[test]
fn operator_settings_refused_with_etcds_words() {
    let e = fail(&["--log-format", "xml"]);
    assert!(
        messages(&e).contains(&"unknown log format: xml, supported values json, console"),
        "{e}"
    );
    let e = fail(&["--log-outputs", "default,stderr"]);
    assert!(
        messages(&e).contains(&r#"multi logoutput for "default" is not supported yet"#),
        "{e}"
    );
    let e = fail(&["--listen-client-http-urls", "http://localhost:2379"]);
    assert!(
        messages(&e).contains(
            &"cannot bind both --listen-client-urls and --listen-client-http-urls on the same url http://localhost:2379"
        ),
        "{e}"
    );
}

#[test]
fn backend_cache_bytes_from_flag_env_and_yaml() {
    let (c, w) = run(&[]);
    assert_eq!(c.backend_cache_bytes, 64 * 1024 * 1024);
    assert!(w.is_empty(), "{w:?}");
    let (c, _) = run(&["--backend-cache-bytes=1048576"]);
    assert_eq!(c.backend_cache_bytes, 1_048_576);
    let (c, _) = run_env(&[], &[("ETCD_BACKEND_CACHE_BYTES", "2097152")]);
    assert_eq!(c.backend_cache_bytes, 2_097_152);
    let (_dir, path) = yaml("backend-cache-bytes: 4194304\n");
    let (c, _) = run(&["--config-file", &path]);
    assert_eq!(c.backend_cache_bytes, 4_194_304);
    let e = fail(&["--backend-cache-bytes=lots"]);
    assert_eq!(messages(&e).len(), 1, "{:?}", messages(&e));
    assert!(
        messages(&e)[0].contains("backend-cache-bytes"),
        "{:?}",
        messages(&e)
    );
}
