//! Guide 002: turning TLS on in a running three-member cluster configured by YAML files.
//! Certificates by the guide's openssl commands: an X.509 v1 root (`openssl x509 -req
//! -signkey` without an extension file), a v1 client certificate without any CN, and member
//! certificates whose only extension is subjectAltName (127.0.0.1 and the member's IP).
//! Then `etcdctl member update ID --peer-urls=https://...` for every member while they still
//! listen on http, stop all, add the `client-transport-security` / `peer-transport-security`
//! blocks and https listeners to each YAML, start all again, and use etcdctl with
//! `--key/--cert/--cacert`: the data is intact and every member is https.
//!
//! One trap fixed: the guide writes the extension file with `echo "subjectAltName =
//! @names\n[names]\n..."`, which only works where `echo` expands `\n` (dash); bash's echo
//! writes one line with literal `\n` and openssl then refuses it. `printf` writes the lines
//! the guide means. The members' addresses 192.168.10.11-13 stay in the certificates (next
//! to the guide's 127.0.0.1), but every member listens on 127.0.0.1 with its own ports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{
    eventually, for_both, initial_cluster, member_rows, sh, temp_dir, Ctl, Impl, Node, Proc,
};

/// The guide's openssl commands ("使用 openssl 生成"), with `printf` for the extension file.
fn make_certs(certs: &Path) {
    sh(
        certs,
        r#"
openssl genrsa -out root.key 2048 2>/dev/null
openssl req -new -sha256 -key root.key -out root.csr -subj "/C=CN/ST=CQ/L=YB/O=BC/OU=ZWC/CN=CA"
openssl x509 -req -days 3650 -sha256 -signkey root.key -in root.csr -out root.cert

openssl genrsa -out client.key 2048 2>/dev/null
openssl req -new -sha256 -key client.key  -out client.csr -subj "/C=CN/ST=CQ/L=YB/O=BC/OU=ZWC"
openssl x509 -req -days 3650 -sha256 -CA  root.cert -CAkey root.key  -CAserial root.srl  -CAcreateserial -in client.csr -out client.cert

for ip in 192.168.10.11 192.168.10.12 192.168.10.13; do
  openssl genrsa -out $ip.key 2048 2>/dev/null
  openssl req -new -sha256 -key $ip.key -out $ip.csr -subj "/C=CN/ST=CQ/L=YB/O=BC/OU=ZWC"
  printf 'subjectAltName = @names\n[names]\nIP.1 = 127.0.0.1\nIP.2 = %s\n' $ip > $ip.ext
  openssl x509 -req -days 3650 -sha256 -CA  root.cert -CAkey root.key  -CAserial root.srl  -CAcreateserial -in $ip.csr -out $ip.cert -extfile $ip.ext
done
"#,
    );
    // What makes this guide hard for a strict TLS stack: v1 root and client certificates.
    let text = sh(
        certs,
        "openssl x509 -in root.cert -noout -text; openssl x509 -in client.cert -noout -text",
    )
    .stdout;
    assert_eq!(
        text.matches("Version: 1 (0x0)").count(),
        2,
        "root.cert and client.cert are X.509 v1:\n{text}"
    );
}

/// Member `i`'s YAML: the cluster as it ran before (http), plus, when `tls`, the guide's
/// updated keys: https listeners, https advertised client URL and both transport blocks.
/// `initial-*` stay http as in the guide (they are ignored on restart).
fn yaml(nodes: &[Node], i: usize, data: &Path, certs: &Path, tls: bool) -> String {
    let n = &nodes[i];
    let scheme = if tls { "https" } else { "http" };
    let ip = format!("192.168.10.1{}", i + 1);
    let c = |f: &str| certs.join(f).display().to_string();
    let mut y = format!(
        "name: {name}\n\
         data-dir: {data}\n\
         initial-advertise-peer-urls: {iapu}\n\
         initial-cluster: {ic}\n\
         initial-cluster-token: guide002\n\
         initial-cluster-state: new\n\
         listen-peer-urls: {scheme}://127.0.0.1:{peer}\n\
         listen-client-urls: {scheme}://127.0.0.1:{client}\n\
         advertise-client-urls: {scheme}://127.0.0.1:{client}\n",
        name = n.name,
        data = data.display(),
        iapu = n.peer_url("http"),
        ic = initial_cluster(nodes, "http"),
        peer = n.peer,
        client = n.client,
    );
    if tls {
        for block in ["client-transport-security", "peer-transport-security"] {
            y.push_str(&format!(
                "{block}:\n\
                 \x20 # cert and key of this member\n\
                 \x20 cert-file: {cert}\n\
                 \x20 key-file: {key}\n\
                 \x20 client-cert-auth: true\n\
                 \x20 trusted-ca-file: {ca}\n\
                 \x20 auto-tls: false\n",
                cert = c(&format!("{ip}.cert")),
                key = c(&format!("{ip}.key")),
                ca = c("root.cert"),
            ));
        }
    }
    y
}

fn write_yaml(cwd: &Path, nodes: &[Node], i: usize, certs: &Path, tls: bool) -> PathBuf {
    let data = cwd.join(format!("{}.data", nodes[i].name));
    let path = cwd.join(format!("{}.yaml", nodes[i].name));
    std::fs::write(&path, yaml(nodes, i, &data, certs, tls)).unwrap();
    path
}

fn start(imp: Impl, cwd: &Path, nodes: &[Node], certs: &Path, tls: bool) -> Vec<Proc> {
    (0..nodes.len())
        .map(|i| {
            let y = write_yaml(cwd, nodes, i, certs, tls);
            let args = vec!["--config-file".to_string(), y.display().to_string()];
            Proc::spawn(imp, cwd, &nodes[i].name, &args)
        })
        .collect()
}

#[test]
fn guide002_tls_on_a_running_cluster_with_v1_certificates() {
    require_tools!();
    let dir = temp_dir("guide002");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    make_certs(&certs);
    let rows = for_both(|imp| {
        let cwd = dir.path().join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        let nodes = Node::several("node", 3);
        let http = |i: usize| Ctl::new(&nodes[i].client_url("http"));
        let mut procs = start(imp, &cwd, &nodes, &certs, false);
        for (i, p) in procs.iter_mut().enumerate() {
            p.wait_healthy(&http(i));
        }
        assert_eq!(http(0).ok(&["put", "before", "tls"]).trim(), "OK");

        // `etcdctl member update ID --peer-urls="https://..."` for every member.
        let list = http(0).ok(&["member", "list"]);
        for n in &nodes {
            let id = list
                .lines()
                .find(|l| l.split(", ").nth(2) == Some(n.name.as_str()))
                .and_then(|l| l.split(", ").next())
                .unwrap_or_else(|| panic!("{}: {} not in {list}", imp.name(), n.name))
                .to_string();
            let out = http(0).ok(&[
                "member",
                "update",
                &id,
                &format!("--peer-urls={}", n.peer_url("https")),
            ]);
            assert!(
                // `%16x`: a short id is space-padded (etcdctl's format).
                out.starts_with(&format!("Member {id:>16} updated in cluster ")),
                "{}: {out}",
                imp.name()
            );
        }

        // Stop every member in turn, then start them all with the TLS configuration.
        for p in &mut procs {
            p.stop();
        }
        drop(procs);
        let tls = |i: usize| {
            Ctl::new(&nodes[i].client_url("https"))
                .flags(&[&format!("--key={}", certs.join("client.key").display())])
                .flags(&[&format!("--cert={}", certs.join("client.cert").display())])
                .flags(&[&format!("--cacert={}", certs.join("root.cert").display())])
        };
        let mut procs = start(imp, &cwd, &nodes, &certs, true);
        for (i, p) in procs.iter_mut().enumerate() {
            p.wait_healthy(&tls(i));
        }
        assert_eq!(
            tls(2).ok(&["get", "before"]),
            "before\ntls\n",
            "{}",
            imp.name()
        );
        assert_eq!(tls(1).ok(&["put", "after", "tls"]).trim(), "OK");
        // Each member re-publishes its client URLs once the restarted cluster commits it.
        let want: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                vec![
                    "started".to_string(),
                    n.name.clone(),
                    n.peer_url("https"),
                    n.client_url("https"),
                    "false".to_string(),
                ]
            })
            .collect();
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(20), || {
            last = tls(0).run(&["member", "list"]).stdout;
            (member_rows(&last) == want).then_some(())
        });
        assert!(
            ok.is_some(),
            "{}: member list never all https:\n{last}",
            imp.name()
        );
        // No certificate is refused in the whole run: the v1 client certificate and the
        // v1 root are accepted. (While replaying its log a restarted member may still dial
        // a peer's old http URL once: `first record does not look like a TLS handshake`.)
        for p in &procs {
            let mut refused = p.log_lines(&["rejected connection from", "certificate"]);
            refused.retain(|l| !l.contains("remote error"));
            assert!(refused.is_empty(), "{}: {refused:#?}", p.label());
        }
        member_rows(&last)
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone(), r[4].clone()))
            .collect::<Vec<_>>()
    });
    assert_eq!(rows[0], rows[1], "member list: kvd vs etcd");
}
