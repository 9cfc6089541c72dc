//! The settings shared by both ports: `--cipher-suites` (etcd 3.4 and kvd) and
//! `--tls-min-version` (etcd 3.5's flag; etcd 3.4 does not know it).

use std::path::Path;
use std::time::Duration;

use crate::certs::{Ca, Pair, Spec, BOTH, CLIENT};
use crate::harness::{
    curl, for_both, free_port, member_flags, path_flags, run, temp_dir, Ctl, Impl, Output, Proc,
};

struct Pki {
    ca: Ca,
    server: Pair,
    client: Pair,
}

fn pki(dir: &Path) -> Pki {
    let ca = Ca::new(dir, "ca", "kvd options CA");
    let server = ca.issue(dir, "server", &Spec::new("server", &["127.0.0.1"], BOTH, 2));
    let client = ca.issue(dir, "client", &Spec::new("client", &[], CLIENT, 3));
    Pki { ca, server, client }
}

/// A single member with client TLS from `pki` and `extra` flags; returns its URL.
fn member(cwd: &Path, pki: &Pki, extra: &[&str]) -> (Vec<String>, String) {
    std::fs::create_dir_all(cwd).unwrap();
    let url = format!("https://127.0.0.1:{}", free_port());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let mut args = member_flags("o", &cwd.join("data"), &url, &peer, &format!("o={peer}"));
    args.extend(path_flags(&[
        ("cert-file", &pki.server.cert),
        ("key-file", &pki.server.key),
        ("trusted-ca-file", &pki.ca.cert),
    ]));
    args.push("--client-cert-auth".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    (args, url)
}

fn ctl(pki: &Pki, url: &str) -> Ctl {
    Ctl::new(url)
        .cacert(&pki.ca.cert)
        .cert(&pki.client.cert, &pki.client.key)
}

/// `curl` with the client certificate and `extra` TLS options, GET `url/health`.
fn health(pki: &Pki, url: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "--cacert",
        pki.ca.cert.to_str().unwrap(),
        "--cert",
        pki.client.cert.to_str().unwrap(),
        "--key",
        pki.client.key.to_str().unwrap(),
    ];
    a.extend(extra);
    let u = format!("{url}/health");
    a.push(&u);
    curl(&a)
}

/// `--cipher-suites` limits the TLS 1.2 suites: a TLS 1.2 client offering only another
/// suite is refused (`tls: no cipher suite supported by both client and server` in both
/// logs), one offering the listed suite is served, and TLS 1.3 clients are served (as in
/// Go, TLS 1.3 suites are not configurable). The listed suite is the one HTTP/2 requires:
/// etcd 3.4 crashes at startup (nil logger) when it is missing.
#[test]
fn cipher_suites_limit_tls12_suites() {
    require_tools!();
    let dir = temp_dir("ciphers");
    let pki = pki(dir.path());
    for_both(|imp| {
        let cwd = dir.path().join(imp.name());
        let (args, url) = member(
            &cwd,
            &pki,
            &["--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
        );
        let mut p = Proc::spawn(imp, &cwd, "o", &args);
        p.wait_healthy(&ctl(&pki, &url));
        let other = health(
            &pki,
            &url,
            &[
                "--tls-max",
                "1.2",
                "--ciphers",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
            ],
        );
        assert_eq!(other.status, 35, "{}: {}", imp.name(), other.stderr);
        p.wait_log(
            &[
                "rejected connection from",
                "tls: no cipher suite supported by both client and server",
            ],
            Duration::from_secs(5),
        );
        let listed = health(
            &pki,
            &url,
            &[
                "--tls-max",
                "1.2",
                "--ciphers",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
            ],
        );
        assert!(listed.ok().stdout.contains("\"health\":\"true\""));
        let tls13 = health(&pki, &url, &["--tlsv1.3"]);
        assert!(tls13.ok().stdout.contains("\"health\":\"true\""));
    });
}

/// `--tls-min-version TLS1.3` (kvd; etcd 3.4 refuses the flag it does not know yet):
/// TLS 1.2 clients are refused, etcdctl (TLS 1.3) works; combined with `--cipher-suites`
/// it is a startup error (the suites would have no effect).
#[test]
fn tls_min_version_13() {
    require_tools!();
    let dir = temp_dir("minversion");
    let pki = pki(dir.path());
    let (args, _) = member(
        &dir.path().join("etcd"),
        &pki,
        &["--tls-min-version=TLS1.3"],
    );
    let mut c = std::process::Command::new(Impl::Etcd.bin());
    c.args(&args).current_dir(dir.path());
    let out = run(c, Duration::from_secs(20));
    assert_eq!(out.status, 2, "etcd 3.4 --tls-min-version: {}", out.stderr);
    assert!(out
        .stderr
        .starts_with("flag provided but not defined: -tls-min-version\n"));

    let cwd = dir.path().join("kvd");
    let (args, url) = member(&cwd, &pki, &["--tls-min-version=TLS1.3"]);
    let mut p = Proc::spawn(Impl::Kvd, &cwd, "o", &args);
    p.wait_healthy(&ctl(&pki, &url));
    let old = health(&pki, &url, &["--tls-max", "1.2"]);
    assert_eq!(old.status, 35, "kvd: TLS 1.2 client: {}", old.stderr);
    // Go's words are `tls: client offered only unsupported versions: [303 302 301]`; kvd
    // says which rustls check failed instead of the version list.
    p.wait_log(
        &[
            "rejected connection from",
            "tls: client offered only unsupported versions",
        ],
        Duration::from_secs(5),
    );
    assert!(health(&pki, &url, &[])
        .ok()
        .stdout
        .contains("\"health\":\"true\""));
    assert_eq!(ctl(&pki, &url).ok(&["put", "k", "v"]).trim(), "OK");
    drop(p);

    let cwd = dir.path().join("kvd-both");
    let (args, _) = member(
        &cwd,
        &pki,
        &[
            "--tls-min-version=TLS1.3",
            "--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ],
    );
    let mut p = Proc::spawn(Impl::Kvd, &cwd, "o", &args);
    let code = p.wait_exit(Duration::from_secs(30));
    assert!(
        matches!(code, Some(c) if c != 0),
        "kvd: exit {code:?}; log:\n{}",
        p.log()
    );
    let log = p.log();
    assert!(
        log.contains("--cipher-suites") && log.contains("TLS1.3"),
        "kvd: the error names both settings:\n{log}"
    );
}
