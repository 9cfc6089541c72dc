//! Guide 003: a local three-member cluster on `https://localhost:...` sharing one
//! certificate (`server.crt`) for the client and the peer ports, with the flags etcd 3.4
//! removed: `--ca-file` and `--peer-ca-file`.
//!
//! The guide takes its certificates from another article's script (not reproduced in the
//! guide): a CA, `server.crt` and `client.crt`, both with the subject `CN=localhost`, made
//! by `openssl x509 -req` without an extension file, i.e. X.509 v1 without SANs. That is a
//! trap for Go >= 1.15 clients (etcdctl 3.4 included): a server certificate valid only by
//! its CN is refused. Fixed here the way ETCDCTL-FACTS describes: `server.crt` gets
//! `subjectAltName = DNS:localhost`; `client.crt` stays a v1 certificate with CN=localhost.
//!
//! kvd runs the guide's command line unchanged (it reads `--ca-file` as
//! `--trusted-ca-file` + `--client-cert-auth` and warns). etcd 3.4 refuses the removed flag
//! before anything else (exit 2, `flag provided but not defined: -ca-file`); the same
//! cluster is then started on etcd with the current names of those flags.

use std::path::Path;
use std::time::Duration;

use crate::harness::{for_both, run, sh, start_cluster, temp_dir, Ctl, Impl, Node};

fn make_certs(dir: &Path) {
    sh(
        dir,
        r#"
openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -nodes -key ca.key -subj "/CN=etcd-for-k8sp-tls-demo-ca" -days 5000 -out ca.crt
openssl genrsa -out server.key 2048 2>/dev/null
openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
printf 'subjectAltName = DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 5000 -out server.crt -extfile server.ext 2>/dev/null
openssl genrsa -out client.key 2048 2>/dev/null
openssl req -new -key client.key -subj "/CN=localhost" -out client.csr
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 5000 -out client.crt 2>/dev/null
"#,
    );
}

/// `etcd.bash`'s loop body for member `i` (1-based), with free ports instead of 2379i/2380i.
/// `legacy`: the guide's `--ca-file` / `--peer-ca-file`; otherwise etcd 3.4's names.
fn args(nodes: &[Node], i: usize, legacy: bool) -> Vec<String> {
    let n = &nodes[i - 1];
    let cluster = nodes
        .iter()
        .map(|m| format!("{}=https://localhost:{}", m.name, m.peer))
        .collect::<Vec<_>>()
        .join(",");
    let mut a: Vec<String> = [
        "--name",
        &n.name,
        "--advertise-client-urls",
        &format!("https://localhost:{}", n.client),
        "--listen-client-urls",
        &format!("https://localhost:{}", n.client),
        "--cert-file",
        "./server.crt",
        "--key-file",
        "./server.key",
        "--client-cert-auth",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if legacy {
        a.extend(["--ca-file".to_string(), "ca.crt".to_string()]);
    } else {
        a.extend(["--trusted-ca-file".to_string(), "ca.crt".to_string()]);
    }
    let peer = format!("https://localhost:{}", n.peer);
    a.extend(
        [
            "--initial-advertise-peer-urls",
            &peer,
            "--listen-peer-urls",
            &peer,
            "--peer-cert-file",
            "./server.crt",
            "--peer-key-file",
            "./server.key",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    if legacy {
        a.extend(["--peer-ca-file".to_string(), "./ca.crt".to_string()]);
    } else {
        a.extend(
            [
                "--peer-trusted-ca-file",
                "./ca.crt",
                "--peer-client-cert-auth",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    }
    a.extend(
        [
            "--initial-cluster",
            &cluster,
            "--initial-cluster-token",
            "etcd-for-k8sp-tls-demo",
            "--initial-cluster-state",
            "new",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    a
}

#[test]
fn guide003_shared_certificate_and_removed_ca_file_flags() {
    require_tools!();
    let dir = temp_dir("guide003");
    make_certs(dir.path());
    let text = sh(dir.path(), "openssl x509 -in client.crt -noout -text").stdout;
    assert!(
        text.contains("Version: 1 (0x0)"),
        "client.crt is v1:\n{text}"
    );

    // etcd 3.4: the removed flag is fatal before anything happens.
    let nodes = Node::several("infra", 3);
    let mut c = std::process::Command::new(Impl::Etcd.bin());
    c.args(args(&nodes, 1, true)).current_dir(dir.path());
    let out = run(c, Duration::from_secs(20));
    assert_eq!(out.status, 2, "etcd --ca-file: {}", out.stderr);
    assert!(
        out.stderr
            .starts_with("flag provided but not defined: -ca-file\n"),
        "etcd --ca-file: {}",
        out.stderr
    );

    for_both(|imp| {
        let legacy = imp == Impl::Kvd;
        // Each server runs in its own copy of the guide's directory (same member names,
        // so the default data dirs `infraN.etcd` must not collide).
        let cwd = dir.path().join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        for f in [
            "ca.crt",
            "server.crt",
            "server.key",
            "client.crt",
            "client.key",
        ] {
            std::fs::copy(dir.path().join(f), cwd.join(f)).unwrap();
        }
        let nodes = Node::several("infra", 3);
        // The guide's etcdctl runs in the certificates' directory; here: absolute paths.
        let abs = |i: usize| {
            let d = &cwd;
            Ctl::new(&format!("https://localhost:{}", nodes[i].client))
                .cacert(&d.join("ca.crt"))
                .cert(&d.join("client.crt"), &d.join("client.key"))
        };
        let procs = start_cluster(imp, &cwd, &nodes, |i| args(&nodes, i + 1, legacy), abs);
        if legacy {
            for p in &procs {
                p.wait_log(&["--ca-file is deprecated"], Duration::from_secs(1));
                p.wait_log(&["--peer-ca-file is deprecated"], Duration::from_secs(1));
            }
        }
        // `set hello world` / `get hello` (the guide's v2 etcdctl) in v3 words.
        assert_eq!(abs(0).ok(&["put", "hello", "world"]).trim(), "OK");
        assert_eq!(
            abs(1).ok(&["get", "hello"]),
            "hello\nworld\n",
            "{}",
            imp.name()
        );
        // Without the client certificate the member refuses the client.
        Ctl::new(&format!("https://localhost:{}", nodes[0].client))
            .cacert(&cwd.join("ca.crt"))
            .command_timeout("2s")
            .run(&["put", "foo", "bar"])
            .deadline_exceeded();
        procs[0].wait_log(
            &[
                "rejected connection from",
                "tls: client didn't provide a certificate",
            ],
            Duration::from_secs(5),
        );
    });
}
