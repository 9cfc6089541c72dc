//! `--listen-metrics-urls` (a listener of its own for `/metrics` and the health endpoints,
//! http or https with the client TLS set-up) and `--listen-client-http-urls` (etcd
//! 3.4.25+/3.5.8+: the HTTP endpoints and the JSON gateway on their own listener, gRPC alone on
//! the client URLs, so that HTTP and gRPC streams never share one connection's limits).

use std::time::Duration;

use crate::harness::{ctl, etcdctl_bin, free_port, http, kvd_bin, start, Node, Ports};

#[test]
fn a_metrics_listener_serves_metrics_and_health_only() {
    let metrics = format!("http://127.0.0.1:{}", free_port());
    let (_kvd, _p) = start(&kvd_bin(), &["--listen-metrics-urls", &metrics]);
    let m = http(&format!("{metrics}/metrics"), &[]);
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        m.body.contains("\netcd_server_has_leader 1\n"),
        "{}",
        m.body
    );
    for path in ["/health", "/livez", "/readyz"] {
        assert_eq!(http(&format!("{metrics}{path}"), &[]).status, 200, "{path}");
    }
    for path in ["/version", "/v3/kv/range"] {
        assert_eq!(http(&format!("{metrics}{path}"), &[]).status, 404, "{path}");
    }
}

/// A mutual-TLS member whose metrics listener is https: the client certificate set-up serves
/// it, as in etcd; a scraper with the CA and a client certificate reads it.
#[test]
fn an_https_metrics_listener_uses_the_client_tls_set_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = free_port();
    let peer = free_port();
    let metrics_port = free_port();
    let pki = dir.path().join("pki");
    let made = std::process::Command::new(kvd_bin())
        .args([
            "pki",
            "cluster",
            "--members",
            &format!("m1=https://127.0.0.1:{peer}"),
            "--client-urls",
            &format!("m1=https://127.0.0.1:{client}"),
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
    let config = pki.join("m1.yaml");
    let metrics = format!("https://127.0.0.1:{metrics_port}");
    let mut yaml = std::fs::read_to_string(&config).expect("config");
    yaml.push_str(&format!("listen-metrics-urls: '{metrics}'\n"));
    std::fs::write(&config, yaml).expect("config");
    let mut node = Node::new(
        &kvd_bin(),
        vec!["--config-file".into(), config.display().to_string()],
    );
    node.launch();
    let tls: Vec<String> = [
        "--cacert",
        &pki.join("ca.pem").display().to_string(),
        "--cert",
        &pki.join("root.pem").display().to_string(),
        "--key",
        &pki.join("root-key.pem").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let url = format!("{metrics}/metrics");
    node.wait_until("https metrics", || http(&url, &tls).status == 200);
    assert!(http(&url, &tls)
        .body
        .contains("kvd_tls_certificate_expiry_timestamp_seconds{"));
    // Without a client certificate the handshake is refused.
    let refused = http(&url, &tls[..2]);
    assert_eq!(refused.status, 0, "{refused:?}");
    assert!(!refused.error.is_empty(), "curl said nothing: {refused:?}");
    // The refusal is counted.
    let again = http(&url, &tls).body;
    assert!(
        again.contains(
            "kvd_tls_handshake_refusals_total{listener=\"client\",reason=\"no_certificate\"} 1"
        ),
        "{again}"
    );
}

#[test]
fn client_http_urls_take_the_http_endpoints_off_the_grpc_port() {
    let http_url = format!("http://127.0.0.1:{}", free_port());
    let p = Ports::new("m1");
    let mut node = Node::new(&kvd_bin(), Vec::new());
    let mut args = p.flags(&node.dir().join("data"), "");
    args.extend(["--listen-client-http-urls".to_string(), http_url.clone()]);
    *node.args_mut() = args;
    node.launch();
    let health = format!("{http_url}/health");
    node.wait_until("/health on the HTTP listener", || {
        http(&health, &[]).status == 200
    });
    // gRPC on the client URL.
    ctl(&etcdctl_bin(), &p.endpoint(), &["put", "k", "v"]).ok();
    assert_eq!(
        ctl(
            &etcdctl_bin(),
            &p.endpoint(),
            &["get", "k", "--print-value-only"]
        )
        .ok()
        .stdout,
        "v\n"
    );
    // No HTTP there any more.
    for path in ["/health", "/metrics", "/version"] {
        let r = http(&format!("{}{path}", p.client_url()), &[]);
        assert_ne!(r.status, 200, "{path} still served on the gRPC port: {r:?}");
    }
    // The HTTP listener has the endpoints and the gateway, and no gRPC.
    for path in ["/metrics", "/version", "/livez", "/readyz"] {
        assert_eq!(
            http(&format!("{http_url}{path}"), &[]).status,
            200,
            "{path}"
        );
    }
    let range = http(
        &format!("{http_url}/v3/kv/range"),
        &["-X", "POST", "-d", r#"{"key":"aw=="}"#],
    );
    assert_eq!(range.status, 200, "{range:?}");
    assert!(range.body.contains(r#""value":"dg==""#), "{}", range.body);
    let endpoint = http_url.trim_start_matches("http://");
    let grpc = ctl(
        &etcdctl_bin(),
        endpoint,
        &["get", "k", "--dial-timeout=2s", "--command-timeout=3s"],
    );
    assert_ne!(
        grpc.status, 0,
        "gRPC answered on the HTTP listener: {grpc:?}"
    );
}

#[test]
fn one_url_cannot_serve_both() {
    let p = Ports::new("m1");
    let mut node = Node::new(&kvd_bin(), Vec::new());
    let mut args = p.flags(&node.dir().join("data"), "");
    args.extend(["--listen-client-http-urls".to_string(), p.client_url()]);
    *node.args_mut() = args;
    node.launch();
    let code = node.wait_exit(Duration::from_secs(20));
    assert!(matches!(code, Some(c) if c != 0), "{code:?}");
    assert!(
        node.stderr().contains(&format!(
            "cannot bind both --listen-client-urls and --listen-client-http-urls on the same url {}",
            p.client_url()
        )),
        "{}",
        node.stderr()
    );
}
