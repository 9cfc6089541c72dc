//! Guide 000: a cfssl CA with server/client/peer profiles, a three-member cluster with
//! mutual TLS on both ports started with Go-style single-dash flags (`-name x`,
//! `-cert-file=/pki/server.pem`, bare `-client-cert-auth`), and etcdctl with
//! `--cacert/--cert/--key`. The guide's docker network (172.16.2.1-3, port 2379/2380 each)
//! becomes three members on 127.0.0.1 with free ports; everything else is the guide's.

use std::path::Path;

use crate::harness::{
    for_both, initial_cluster, member_rows, sh, start_cluster, temp_dir, Ctl, Impl, Node,
};

/// The guide's cfssl steps: `ca-config.json` with the three profiles, the CA from
/// `ca-csr.json`, then `server.pem`, `client.pem` and `peer.pem` from their JSON requests.
/// The members' addresses in `hosts` are 127.0.0.1 here.
pub fn make_certs(pki: &Path) {
    sh(
        pki,
        r#"
cat > ca-config.json <<'EOF'
{
    "signing": {
        "default": {
            "expiry": "8760h"
        },
        "profiles": {
            "server": {
                "expiry": "8760h",
                "usages": [
                    "signing",
                    "key encipherment",
                    "server auth"
                ]
            },
            "client": {
                "expiry": "8760h",
                "usages": [
                    "signing",
                    "key encipherment",
                    "client auth"
                ]
            },
            "peer": {
                "expiry": "8760h",
                "usages": [
                    "signing",
                    "key encipherment",
                    "server auth",
                    "client auth"
                ]
            }
        }
    }
}
EOF
cat > ca-csr.json <<'EOF'
{
    "CN": "etcd CA",
    "key": {
        "algo": "rsa",
        "size": 2048
    },
    "names": [
        {
            "C": "CN",
            "L": "Shanghai",
            "ST": "Shanghai"
        }
    ]
}
EOF
cfssl gencert -initca ca-csr.json | cfssljson -bare ca
cat > etcd-server.json <<'EOF'
{
    "CN": "etcd server",
    "hosts": [
        "127.0.0.1"
    ],
    "key": {
        "algo": "rsa",
        "size": 2048
    },
    "names": [
        {
            "C": "CN",
            "L": "Shanghai",
            "ST": "Shanghai"
        }
    ]
}
EOF
cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=server etcd-server.json | cfssljson -bare server
cat > etcd-client.json <<'EOF'
{
    "CN": "etcd client",
    "key": {
        "algo": "rsa",
        "size": 2048
    },
    "names": [
        {
            "C": "CN",
            "L": "Shanghai",
            "ST": "Shanghai"
        }
    ]
}
EOF
cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=client etcd-client.json | cfssljson -bare client
cat > etcd-peer.json <<'EOF'
{
    "CN": "etcd peer",
    "hosts": [
        "127.0.0.1"
    ],
    "key": {
        "algo": "rsa",
        "size": 2048
    },
    "names": [
        {
            "C": "CN",
            "L": "Shanghai",
            "ST": "Shanghai"
        }
    ]
}
EOF
cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=peer etcd-peer.json | cfssljson -bare peer
"#,
    );
}

/// The guide's member command line, single dashes and all.
fn member_args(nodes: &[Node], i: usize, pki: &Path) -> Vec<String> {
    let n = &nodes[i];
    let p = |f: &str| pki.join(f).display().to_string();
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: &[&str]| a.extend(s.iter().map(|x| x.to_string()));
    push(&["-name", &n.name]);
    push(&["-advertise-client-urls", &n.client_url("https")]);
    push(&["-initial-advertise-peer-urls", &n.peer_url("https")]);
    push(&["-listen-client-urls", &n.client_url("https")]);
    push(&["-listen-peer-urls", &n.peer_url("https")]);
    push(&["-initial-cluster-token", "etcd-cluster"]);
    push(&["-initial-cluster", &initial_cluster(nodes, "https")]);
    push(&["-initial-cluster-state", "new"]);
    push(&[
        &format!("-cert-file={}", p("server.pem")),
        &format!("-key-file={}", p("server-key.pem")),
        "-client-cert-auth",
        &format!("-trusted-ca-file={}", p("ca.pem")),
        "-peer-client-cert-auth",
        &format!("-peer-cert-file={}", p("peer.pem")),
        &format!("-peer-key-file={}", p("peer-key.pem")),
        &format!("-peer-trusted-ca-file={}", p("ca.pem")),
    ]);
    a
}

/// The whole guide against kvd and etcd: the cluster forms over peer TLS, a client without
/// a certificate is refused, and `etcdctl --cacert=ca.pem --cert=client.pem
/// --key=client-key.pem member list` shows the same three https members on both.
#[test]
fn guide000_cfssl_profiles_three_members_single_dash_flags() {
    require_tools!();
    let dir = temp_dir("guide000");
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    make_certs(&pki);
    let rows = for_both(|imp: Impl| {
        // Each member runs in its own working directory, so the default data dir
        // (`<name>.etcd`, relative) is the guide's.
        let cwd = dir.path().join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        let nodes = Node::several("etcdnode", 3);
        let ctl = |i: usize| {
            Ctl::new(&nodes[i].client_url("https"))
                .cacert(&pki.join("ca.pem"))
                .cert(&pki.join("client.pem"), &pki.join("client-key.pem"))
        };
        let _procs = start_cluster(imp, &cwd, &nodes, |i| member_args(&nodes, i, &pki), ctl);
        for n in &nodes {
            assert!(
                cwd.join(format!("{}.etcd", n.name)).is_dir(),
                "{}: default data dir {}.etcd in the working directory",
                imp.name(),
                n.name
            );
        }
        // Without the client certificate: refused, as the guide shows.
        Ctl::new(&nodes[0].client_url("https"))
            .cacert(&pki.join("ca.pem"))
            .command_timeout("2s")
            .run(&["member", "list"])
            .deadline_exceeded();
        let list = ctl(0).ok(&["member", "list"]);
        assert_eq!(ctl(0).ok(&["put", "guide", "000"]).trim(), "OK");
        assert_eq!(ctl(2).ok(&["get", "guide"]), "guide\n000\n");
        let mut rows = member_rows(&list);
        // Ports differ between the runs; compare them by position.
        for (row, n) in rows.iter_mut().zip(&nodes) {
            assert_eq!(row[2], n.peer_url("https"), "{}: {list}", imp.name());
            row[2] = format!("https://127.0.0.1:PEER({})", n.name);
            assert_eq!(row[3], n.client_url("https"), "{}: {list}", imp.name());
            row[3] = format!("https://127.0.0.1:CLIENT({})", n.name);
        }
        rows
    });
    assert_eq!(rows[0], rows[1], "member list: kvd vs etcd");
    assert_eq!(rows[0].len(), 3);
    assert!(rows[0].iter().all(|r| r[0] == "started" && r[4] == "false"));
}
