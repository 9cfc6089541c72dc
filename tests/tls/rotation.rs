//! Certificate rotation on a running member, kvd and etcd side by side: the server's
//! certificate and key are replaced the careful way (written to temporary names, then
//! renamed over the old files). New connections get the new certificate (read with
//! `openssl s_client`), an `etcdctl watch` opened before keeps receiving events, and a
//! broken replacement (garbage instead of PEM) is reported while the last good certificate
//! keeps serving.
//!
//! Where kvd differs from etcd on purpose: etcd re-reads the files on every handshake, so
//! after the broken replacement every new connection fails until the files are fixed; kvd
//! reports the problem once and keeps the previous certificate.

use std::path::Path;
use std::time::Duration;

use crate::certs::{openssl_serial, served_cert, Ca, Pair, Spec, BOTH, CLIENT};
use crate::harness::{
    eventually, for_both, free_port, member_flags, path_flags, temp_dir, Ctl, Impl, Proc,
};

/// Replaces `path` with `text`: write `path.tmp`, then rename it over `path`.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits until the port serves a certificate with subject `CN={cn}` and serial `serial`.
#[track_caller]
fn wait_served(imp: Impl, addr: &str, cn: &str, serial: u64) {
    let want = (format!("CN={cn}"), openssl_serial(serial));
    let mut last = None;
    let got = eventually(Duration::from_secs(15), || {
        last = served_cert(addr);
        (last.as_ref() == Some(&want)).then_some(())
    });
    assert!(
        got.is_some(),
        "{}: {addr} serves {last:?}, want {want:?}",
        imp.name()
    );
}

#[test]
fn server_certificate_rotation_while_running() {
    require_tools!();
    let dir = temp_dir("rotation");
    let d = dir.path();
    let ca = Ca::new(d, "ca", "kvd rotation CA");
    let client = ca.issue(d, "client", &Spec::new("client", &[], CLIENT, 5));
    let spec = |cn: &str, serial| Spec::new(cn, &["127.0.0.1"], BOTH, serial);
    let (a, b, c) = (
        ca.issue_pem(&spec("server-a", 0x1001)),
        ca.issue_pem(&spec("server-b", 0x2002)),
        ca.issue_pem(&spec("server-c", 0x3003)),
    );
    for_both(|imp| {
        let cwd = d.join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        let files = Pair {
            cert: cwd.join("server.crt"),
            key: cwd.join("server.key"),
        };
        std::fs::write(&files.cert, &a.0).unwrap();
        std::fs::write(&files.key, &a.1).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args = member_flags(
            "rot",
            &cwd.join("data"),
            &format!("https://{addr}"),
            &peer,
            &format!("rot={peer}"),
        );
        args.extend(path_flags(&[
            ("cert-file", &files.cert),
            ("key-file", &files.key),
            ("trusted-ca-file", &ca.cert),
        ]));
        args.push("--client-cert-auth".into());
        let mut p = Proc::spawn(imp, &cwd, "rot", &args);
        let ctl = Ctl::new(&format!("https://{addr}"))
            .cacert(&ca.cert)
            .cert(&client.cert, &client.key);
        p.wait_healthy(&ctl);
        wait_served(imp, &addr, "server-a", 0x1001);

        // From revision 2 (the first write's): the watch sees v1 however late it starts.
        let watch = ctl.spawn(&["watch", "k", "--rev=2"]);
        assert_eq!(ctl.ok(&["put", "k", "v1"]).trim(), "OK");
        assert_eq!(
            watch.lines(3, Duration::from_secs(10)),
            ["PUT", "k", "v1"],
            "{}",
            imp.name()
        );

        let sockets = watch.sockets();
        assert!(
            !sockets.is_empty(),
            "{}: the watch has a connection",
            imp.name()
        );

        // Rotate: key first, then certificate, each renamed into place.
        replace(&files.key, &b.1);
        replace(&files.cert, &b.0);
        wait_served(imp, &addr, "server-b", 0x2002);
        if imp == Impl::Kvd {
            p.wait_log(
                &["reloaded TLS files; new connections use them"],
                Duration::from_secs(5),
            );
        }
        assert_eq!(ctl.ok(&["put", "k", "v2"]).trim(), "OK");
        assert_eq!(
            watch.lines(3, Duration::from_secs(10)),
            ["PUT", "k", "v2"],
            "{}",
            imp.name()
        );

        // A broken replacement.
        replace(&files.cert, "this is not a certificate\n");
        match imp {
            Impl::Kvd => {
                let line = p.wait_log(
                    &["TLS files changed but cannot be used; keeping the previous certificates"],
                    Duration::from_secs(10),
                );
                assert!(
                    line.contains("server.crt") && line.contains("not a PEM file"),
                    "kvd: the warning names the file and the problem: {line}"
                );
                wait_served(imp, &addr, "server-b", 0x2002);
                assert_eq!(ctl.ok(&["put", "k", "v3"]).trim(), "OK");
                assert_eq!(watch.lines(3, Duration::from_secs(10)), ["PUT", "k", "v3"]);
            }
            Impl::Etcd => {
                // etcd reads the broken file at the next handshake: new clients fail.
                ctl.clone()
                    .command_timeout("2s")
                    .run(&["get", "k"])
                    .deadline_exceeded();
            }
        }

        // A good certificate again: picked up by both.
        replace(&files.key, &c.1);
        replace(&files.cert, &c.0);
        wait_served(imp, &addr, "server-c", 0x3003);
        assert_eq!(ctl.ok(&["put", "k", "v4"]).trim(), "OK");
        assert_eq!(
            watch.lines(3, Duration::from_secs(10)),
            ["PUT", "k", "v4"],
            "{}",
            imp.name()
        );
        p.assert_running();
    });
}
