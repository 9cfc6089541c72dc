//! The HTTPS endpoints on a client URL with client-certificate authentication, read with
//! `curl --cacert --cert --key`, kvd and etcd side by side: `/health`, `/version`,
//! `/metrics`, and the JSON gateway's `/v3/kv/put` and `/v3/kv/range`. The server
//! certificate has serverAuth and clientAuth, so etcd's gateway works too (see guide001 for
//! the serverAuth-only case, where they differ) and the answers can be compared.

use std::path::Path;

use serde_json::Value;

use crate::certs::{Ca, Pair, Spec, BOTH, CLIENT};
use crate::harness::{
    curl, for_both, free_port, member_flags, path_flags, temp_dir, Ctl, Output, Proc,
};

/// `curl --cacert CA --cert --key EXTRA URL`.
fn get(url: &str, ca: &Path, client: &Pair, extra: &[&str]) -> Output {
    let mut args = vec![
        "--cacert",
        ca.to_str().unwrap(),
        "--cert",
        client.cert.to_str().unwrap(),
        "--key",
        client.key.to_str().unwrap(),
    ];
    args.extend(extra);
    args.push(url);
    curl(&args)
}

/// Drops the parts of a gateway answer that differ between any two clusters.
fn normalize(mut v: Value) -> Value {
    if let Some(h) = v.get_mut("header").and_then(Value::as_object_mut) {
        h.remove("cluster_id");
        h.remove("member_id");
        h.remove("raft_term");
    }
    v
}

#[test]
fn https_endpoints_with_client_certificates() {
    require_tools!();
    let dir = temp_dir("endpoints");
    let d = dir.path();
    let ca = Ca::new(d, "ca", "kvd endpoints CA");
    let server = ca.issue(d, "server", &Spec::new("server", &["127.0.0.1"], BOTH, 2));
    let client = ca.issue(d, "client", &Spec::new("client", &[], CLIENT, 3));
    let answers = for_both(|imp| {
        let cwd = d.join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        let url = format!("https://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args = member_flags("ep", &cwd.join("data"), &url, &peer, &format!("ep={peer}"));
        args.extend(path_flags(&[
            ("cert-file", &server.cert),
            ("key-file", &server.key),
            ("trusted-ca-file", &ca.cert),
        ]));
        args.push("--client-cert-auth".into());
        let mut p = Proc::spawn(imp, &cwd, "ep", &args);
        p.wait_healthy(
            &Ctl::new(&url)
                .cacert(&ca.cert)
                .cert(&client.cert, &client.key),
        );

        let health = get(&format!("{url}/health"), &ca.cert, &client, &[])
            .ok()
            .json();
        let version = get(&format!("{url}/version"), &ca.cert, &client, &[])
            .ok()
            .json();
        let metrics = get(&format!("{url}/metrics"), &ca.cert, &client, &[])
            .ok()
            .stdout;
        for m in [
            "# TYPE etcd_server_has_leader gauge",
            "etcd_server_has_leader 1",
        ] {
            assert!(
                metrics.lines().any(|l| l == m),
                "{}: /metrics lacks {m:?}",
                imp.name()
            );
        }
        let post = |path: &str, body: &str| {
            get(
                &format!("{url}{path}"),
                &ca.cert,
                &client,
                &["-XPOST", "-d", body],
            )
            .ok()
            .json()
        };
        let put = post("/v3/kv/put", r#"{"key":"a2V5","value":"dmFsdWU="}"#);
        let range = post("/v3/kv/range", r#"{"key":"a2V5"}"#);
        let miss = post("/v3/kv/range", r#"{"key":"bm9uZQ=="}"#);
        // Without a client certificate nothing is served, not even /health.
        let refused = curl(&[
            "--cacert",
            ca.cert.to_str().unwrap(),
            &format!("{url}/health"),
        ]);
        assert!(
            [35, 55, 56].contains(&refused.status),
            "{}: curl without a client certificate: exit {} {}",
            imp.name(),
            refused.status,
            refused.stderr
        );
        let version_keys: Vec<String> = version
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        (
            health,
            version_keys,
            version["etcdcluster"].clone(),
            normalize(put),
            normalize(range),
            normalize(miss),
        )
    });
    let (kvd, etcd) = (&answers[0], &answers[1]);
    assert_eq!(
        etcd.0,
        serde_json::json!({"health": "true"}),
        "etcd /health"
    );
    // kvd answers /health as etcd 3.5 does: 3.4's object plus the (empty) reason.
    assert_eq!(
        kvd.0,
        serde_json::json!({"health": "true", "reason": ""}),
        "/health"
    );
    assert_eq!(kvd.1, etcd.1, "/version keys");
    assert_eq!(kvd.2, etcd.2, "/version etcdcluster");
    assert_eq!(kvd.3, etcd.3, "/v3/kv/put");
    assert_eq!(kvd.4, etcd.4, "/v3/kv/range");
    assert_eq!(kvd.5, etcd.5, "/v3/kv/range of a missing key");
}
