//! Identity from the client certificate, kvd and etcd side by side: with `--client-cert-auth`
//! and auth enabled, a request without a token is made by the user named by the verified client
//! certificate's Common Name; a `--user` token wins over the CN; a CN that names no user gets
//! `permission denied` on keys.

use crate::certs::{Ca, Spec, BOTH, CLIENT};
use crate::harness::{for_both, free_port, member_flags, path_flags, temp_dir, Ctl, Proc};

#[test]
fn the_client_certificate_cn_is_the_user() {
    require_tools!();
    let dir = temp_dir("cn-auth");
    let d = dir.path();
    let ca = Ca::new(d, "ca", "kvd cn-auth CA");
    let server = ca.issue(d, "server", &Spec::new("server", &["127.0.0.1"], BOTH, 2));
    let root = ca.issue(d, "root", &Spec::new("root", &[], CLIENT, 3));
    let alice = ca.issue(d, "alice", &Spec::new("alice", &[], CLIENT, 4));
    let mallory = ca.issue(d, "mallory", &Spec::new("mallory", &[], CLIENT, 5));
    let rows = for_both(|imp| {
        let cwd = d.join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        let url = format!("https://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args = member_flags("cn", &cwd.join("data"), &url, &peer, &format!("cn={peer}"));
        args.push(format!("--advertise-client-urls={url}"));
        args.extend(path_flags(&[
            ("cert-file", &server.cert),
            ("key-file", &server.key),
            ("trusted-ca-file", &ca.cert),
        ]));
        args.push("--client-cert-auth".into());
        args.push("--bcrypt-cost=4".into());
        let mut p = Proc::spawn(imp, &cwd, "cn", &args);
        let as_cert =
            |pair: &crate::certs::Pair| Ctl::new(&url).cacert(&ca.cert).cert(&pair.cert, &pair.key);
        p.wait_healthy(&as_cert(&root));
        let admin = as_cert(&root);
        admin.ok(&["user", "add", "root:rootpw"]);
        admin.ok(&["user", "grant-role", "root", "root"]);
        admin.ok(&["user", "add", "alice:apw"]);
        admin.ok(&["role", "add", "app"]);
        admin.ok(&[
            "role",
            "grant-permission",
            "app",
            "readwrite",
            "app/",
            "--prefix",
        ]);
        admin.ok(&["user", "grant-role", "alice", "app"]);
        admin.ok(&["auth", "enable"]);
        let mut row = Vec::new();
        let mut record = |label: &str, out: crate::harness::Output| {
            let errs = out.err_lines().join("|");
            row.push(format!(
                "{label}: exit {} {} {}",
                out.status,
                out.stdout.trim(),
                errs
            ));
        };
        // root by certificate alone, no password.
        record("root cert put", admin.run(&["put", "top", "1"]));
        // alice by certificate: her prefix only.
        record(
            "alice cert put app/",
            as_cert(&alice).run(&["put", "app/x", "1"]),
        );
        record(
            "alice cert put other",
            as_cert(&alice).run(&["put", "other", "1"]),
        );
        // a CN that names no user.
        record("mallory cert get", as_cert(&mallory).run(&["get", "app/x"]));
        // a token wins over the CN.
        record(
            "alice cert as root",
            as_cert(&alice).run(&["--user=root:rootpw", "put", "other", "2"]),
        );
        admin.ok(&["auth", "disable"]);
        p.stop();
        row
    });
    let kvd = &rows[0];
    assert_eq!(kvd[0], "root cert put: exit 0 OK ", "{kvd:?}");
    assert_eq!(kvd[1], "alice cert put app/: exit 0 OK ", "{kvd:?}");
    assert!(kvd[2].contains("etcdserver: permission denied"), "{kvd:?}");
    assert!(kvd[3].contains("etcdserver: permission denied"), "{kvd:?}");
    assert_eq!(kvd[4], "alice cert as root: exit 0 OK ", "{kvd:?}");
    assert_eq!(rows[0], rows[1], "kvd vs etcd");
}
