//! One member with a plain and a TLS client URL at once
//! (`--listen-client-urls http://127.0.0.1:A,https://127.0.0.1:B`), kvd and etcd side by
//! side: plain clients use A without any certificate, TLS clients use B with client
//! certificates (B refuses a client without one), and both see the same data.

use std::time::Duration;

use crate::certs::{Ca, Spec, BOTH, CLIENT};
use crate::harness::{curl, for_both, free_port, member_flags, path_flags, temp_dir, Ctl, Proc};

#[test]
fn http_and_https_client_urls_on_one_member() {
    require_tools!();
    let dir = temp_dir("mixed");
    let d = dir.path();
    let ca = Ca::new(d, "ca", "kvd mixed CA");
    let server = ca.issue(d, "server", &Spec::new("server", &["127.0.0.1"], BOTH, 2));
    let client = ca.issue(d, "client", &Spec::new("client", &[], CLIENT, 3));
    let rows = for_both(|imp| {
        let cwd = d.join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        let (a, b) = (free_port(), free_port());
        let plain = format!("http://127.0.0.1:{a}");
        let tls = format!("https://127.0.0.1:{b}");
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args = member_flags(
            "mixed",
            &cwd.join("data"),
            &format!("{plain},{tls}"),
            &peer,
            &format!("mixed={peer}"),
        );
        args.push(format!("--advertise-client-urls={plain},{tls}"));
        args.extend(path_flags(&[
            ("cert-file", &server.cert),
            ("key-file", &server.key),
            ("trusted-ca-file", &ca.cert),
        ]));
        args.push("--client-cert-auth".into());
        let mut p = Proc::spawn(imp, &cwd, "mixed", &args);
        let secure = Ctl::new(&tls)
            .cacert(&ca.cert)
            .cert(&client.cert, &client.key);
        p.wait_healthy(&secure);
        let insecure = Ctl::new(&plain);
        assert_eq!(insecure.ok(&["put", "via", "http"]).trim(), "OK");
        assert_eq!(secure.ok(&["put", "and", "https"]).trim(), "OK");
        assert_eq!(secure.ok(&["get", "via"]), "via\nhttp\n", "{}", imp.name());
        assert_eq!(
            insecure.ok(&["get", "and"]),
            "and\nhttps\n",
            "{}",
            imp.name()
        );
        // The TLS URL still requires a client certificate.
        Ctl::new(&tls)
            .cacert(&ca.cert)
            .command_timeout("2s")
            .run(&["get", "via"])
            .deadline_exceeded();
        p.wait_log(
            &[
                "rejected connection from",
                "tls: client didn't provide a certificate",
            ],
            Duration::from_secs(5),
        );
        // curl on both URLs.
        assert!(curl(&[&format!("{plain}/health")])
            .ok()
            .stdout
            .contains("\"health\":\"true\""));
        let h = curl(&[
            "--cacert",
            ca.cert.to_str().unwrap(),
            "--cert",
            client.cert.to_str().unwrap(),
            "--key",
            client.key.to_str().unwrap(),
            &format!("{tls}/health"),
        ]);
        assert!(
            h.ok().stdout.contains("\"health\":\"true\""),
            "{}",
            imp.name()
        );
        // Both URLs are advertised.
        let list = insecure.ok(&["member", "list"]);
        let urls = list.trim().split(", ").nth(4).unwrap_or_default();
        assert_eq!(urls, format!("{plain},{tls}"), "{}: {list}", imp.name());
        list.trim()
            .split(", ")
            .skip(1)
            .take(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    assert_eq!(rows[0], rows[1], "member list: kvd vs etcd");
}
