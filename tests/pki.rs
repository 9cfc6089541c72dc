//! End-to-end tests of `kvd pki`: the certificates it writes are checked with openssl, used by
//! a real etcd 3.4 cluster and etcdctl, and `kvd pki check` must name the right cause for each
//! deliberately broken set-up. Tests that need `openssl` or `etcd`/`etcdctl` print a SKIP
//! line and return when those programs are missing. Every etcd started here is killed when
//! its guard drops, also when a test panics.

use std::fs;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KVD: &str = env!("CARGO_BIN_EXE_kvd");

/// The result of one `kvd pki` run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn from_output(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs `kvd pki ARGS` in `dir`.
fn pki(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(KVD)
        .arg("pki")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run kvd");
    from_output(out)
}

/// Runs `kvd pki ARGS` in `dir` and requires success.
fn pki_ok(dir: &Path, args: &[&str]) -> Run {
    let r = pki(dir, args);
    assert_eq!(r.code, 0, "kvd pki {args:?} failed:\n{}", r.text());
    r
}

/// True when `program` can be run.
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn skip_without(programs: &[&str], test: &str) -> bool {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
    if missing.is_empty() {
        false
    } else {
        println!("SKIP {test}: {} not installed", missing.join(", "));
        true
    }
}

fn run_tool(program: &str, args: &[&str], dir: &Path) -> Run {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    from_output(out)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// The value of `key:` in the `inspect` block of `file`.
fn inspect_field(out: &str, file: &str, key: &str) -> String {
    let header = format!("{file}: certificate");
    let mut in_block = false;
    for line in out.lines() {
        if line.starts_with(&header) {
            in_block = true;
            continue;
        }
        if in_block {
            if line.trim().is_empty() {
                break;
            }
            if let Some(rest) = line.trim_start().strip_prefix(&format!("{key}:")) {
                return rest.trim().to_string();
            }
        }
    }
    panic!("no {key} for {file} in:\n{out}");
}

/// The line after the one containing `header` in `openssl x509 -text` output.
fn openssl_ext(text: &str, header: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains(header) {
            return lines.next().map(|v| v.trim().to_string());
        }
    }
    None
}

/// Compares SANs, EKUs and dates of `file` between `openssl x509` and `kvd pki inspect`.
fn compare_with_openssl(dir: &Path, file: &str) {
    let text = run_tool("openssl", &["x509", "-in", file, "-noout", "-text"], dir);
    assert_eq!(text.code, 0, "{}", text.text());
    let inspect = pki_ok(dir, &["inspect", file]).stdout;
    let sans = openssl_ext(&text.stdout, "X509v3 Subject Alternative Name")
        .map(|s| s.replace("IP Address:", "IP:"))
        .unwrap_or_else(|| "(none)".to_string());
    assert_eq!(
        inspect_field(&inspect, file, "SANs"),
        sans,
        "SANs of {file}"
    );
    let eku = openssl_ext(&text.stdout, "X509v3 Extended Key Usage")
        .map(|s| {
            s.replace("TLS Web Server Authentication", "serverAuth")
                .replace("TLS Web Client Authentication", "clientAuth")
        })
        .unwrap_or_else(|| "(none)".to_string());
    assert_eq!(inspect_field(&inspect, file, "EKU"), eku, "EKU of {file}");
    let dates = run_tool(
        "openssl",
        &[
            "x509",
            "-in",
            file,
            "-noout",
            "-startdate",
            "-enddate",
            "-dateopt",
            "iso_8601",
        ],
        dir,
    );
    assert_eq!(dates.code, 0, "{}", dates.text());
    let get = |k: &str| {
        dates
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().replace(' ', "T"))
            .unwrap_or_else(|| panic!("no {k} in {}", dates.stdout))
    };
    assert_eq!(
        inspect_field(&inspect, file, "Not before"),
        get("notBefore="),
        "{file}"
    );
    let not_after = inspect_field(&inspect, file, "Not after");
    assert!(
        not_after.starts_with(&get("notAfter=")),
        "{file}: {not_after} vs {}",
        get("notAfter=")
    );
}

fn openssl_verify(dir: &Path, ca: &str, file: &str, purpose: Option<&str>) -> bool {
    let mut args = vec!["verify", "-CAfile", ca];
    if let Some(p) = purpose {
        args.extend(["-purpose", p]);
    }
    args.push(file);
    let r = run_tool("openssl", &args, dir);
    r.code == 0 && r.stdout.contains(&format!("{file}: OK"))
}

#[test]
fn issued_certificates_pass_openssl_and_inspect_agrees() {
    if skip_without(
        &["openssl"],
        "issued_certificates_pass_openssl_and_inspect_agrees",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let init = pki_ok(d, &["init"]);
    assert!(
        init.stdout.contains("ca.pem") && init.stdout.contains("ECDSA P-256"),
        "{}",
        init.text()
    );
    pki_ok(
        d,
        &[
            "server",
            "--name",
            "server",
            "--hosts",
            "127.0.0.1,etcd1.example.com,10.0.1.10",
        ],
    );
    pki_ok(
        d,
        &[
            "peer",
            "--name",
            "infra1",
            "--hosts",
            "10.0.1.10",
            "--with-localhost",
        ],
    );
    pki_ok(d, &["client", "--name", "root"]);

    for f in ["server.pem", "infra1.pem", "root.pem"] {
        assert!(openssl_verify(d, "ca.pem", f, None), "openssl verify {f}");
        compare_with_openssl(d, f);
    }
    compare_with_openssl(d, "ca.pem");
    // Purposes: what each profile is for, as openssl judges it.
    assert!(openssl_verify(d, "ca.pem", "server.pem", Some("sslserver")));
    assert!(!openssl_verify(
        d,
        "ca.pem",
        "server.pem",
        Some("sslclient")
    ));
    assert!(openssl_verify(d, "ca.pem", "infra1.pem", Some("sslserver")));
    assert!(openssl_verify(d, "ca.pem", "infra1.pem", Some("sslclient")));
    assert!(openssl_verify(d, "ca.pem", "root.pem", Some("sslclient")));
    assert!(!openssl_verify(d, "ca.pem", "root.pem", Some("sslserver")));

    let out = pki_ok(
        d,
        &[
            "inspect",
            "ca.pem",
            "server.pem",
            "infra1.pem",
            "root.pem",
            "root-key.pem",
        ],
    )
    .stdout;
    assert_eq!(
        inspect_field(&out, "server.pem", "SANs"),
        "IP:127.0.0.1, DNS:etcd1.example.com, IP:10.0.1.10"
    );
    assert_eq!(
        inspect_field(&out, "infra1.pem", "SANs"),
        "IP:10.0.1.10, DNS:localhost, IP:127.0.0.1"
    );
    assert_eq!(inspect_field(&out, "root.pem", "SANs"), "(none)");
    assert_eq!(inspect_field(&out, "root.pem", "Subject"), "CN=root");
    assert_eq!(inspect_field(&out, "ca.pem", "CA"), "yes (CA:TRUE)");
    assert_eq!(
        inspect_field(&out, "server.pem", "Fit for"),
        "server yes, peer NO, client NO"
    );
    assert_eq!(
        inspect_field(&out, "infra1.pem", "Fit for"),
        "server yes, peer yes, client yes"
    );
    assert_eq!(
        inspect_field(&out, "root.pem", "Fit for"),
        "server NO, peer NO, client yes"
    );
    assert!(
        inspect_field(&out, "root.pem", "Chain").contains("[ca.pem]"),
        "{out}"
    );
    assert!(
        out.contains("root-key.pem: private key") && out.contains("root.pem (CN=root)"),
        "{out}"
    );
    // Certificates start slightly in the past (clock skew) and the default validity is a year.
    let nb = inspect_field(&out, "root.pem", "Not before");
    let na = inspect_field(&out, "root.pem", "Not after");
    assert!(na.contains("expires in 36"), "{na}");
    assert!(nb.ends_with('Z') && nb.len() == 20, "{nb}");
    for f in [
        "ca-key.pem",
        "server-key.pem",
        "infra1-key.pem",
        "root-key.pem",
    ] {
        assert_eq!(mode(&d.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&d.join("server.pem")), 0o644);
}

#[test]
fn etcd_naming_rsa_and_foreign_cas() {
    if skip_without(&["openssl"], "etcd_naming_rsa_and_foreign_cas") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    // etcd's names, an RSA CA; later commands find the CA by its names.
    pki_ok(
        d,
        &[
            "init",
            "--dir",
            "etcd",
            "--naming",
            "etcd",
            "--key-type",
            "rsa2048",
            "--validity",
            "2y",
        ],
    );
    assert!(d.join("etcd/ca.crt").exists() && d.join("etcd/ca.key").exists());
    pki_ok(d, &["client", "--dir", "etcd", "--name", "alice"]);
    pki_ok(
        d,
        &[
            "server",
            "--dir",
            "etcd",
            "--name",
            "server",
            "--hosts",
            "localhost",
            "--key-type",
            "ed25519",
        ],
    );
    for f in ["alice.crt", "server.crt"] {
        assert!(openssl_verify(&d.join("etcd"), "ca.crt", f, None), "{f}");
    }
    let out = pki_ok(
        &d.join("etcd"),
        &["inspect", "ca.crt", "alice.crt", "alice.key"],
    )
    .stdout;
    assert_eq!(inspect_field(&out, "ca.crt", "Public key"), "RSA 2048");
    assert!(
        inspect_field(&out, "ca.crt", "Not after").contains("expires in 72"),
        "{out}"
    );

    // A CA made by openssl the way the guides do it (RSA, PKCS#8 key, v1 certificate).
    let o = d.join("openssl");
    fs::create_dir(&o).expect("mkdir");
    assert_eq!(
        run_tool("openssl", &["genrsa", "-out", "root.key", "2048"], &o).code,
        0
    );
    assert_eq!(
        run_tool(
            "openssl",
            &[
                "req",
                "-new",
                "-key",
                "root.key",
                "-subj",
                "/CN=guide-root",
                "-out",
                "root.csr"
            ],
            &o
        )
        .code,
        0
    );
    assert_eq!(
        run_tool(
            "openssl",
            &[
                "x509", "-req", "-in", "root.csr", "-signkey", "root.key", "-days", "30", "-out",
                "root.crt"
            ],
            &o
        )
        .code,
        0
    );
    let r = pki_ok(
        &o,
        &[
            "peer",
            "--name",
            "m1",
            "--hosts",
            "127.0.0.1",
            "--ca-cert",
            "root.crt",
            "--ca-key",
            "root.key",
        ],
    );
    // The openssl CA expires in 30 days: the default year is shortened to it, and said so.
    assert!(r.stdout.contains("expiry shortened"), "{}", r.text());
    assert!(openssl_verify(&o, "root.crt", "m1.pem", Some("sslserver")));

    // A CA made by cfssl (ECDSA, "EC PRIVATE KEY").
    if have("cfssl") {
        let c = d.join("cfssl");
        fs::create_dir(&c).expect("mkdir");
        fs::write(
            c.join("csr.json"),
            r#"{"CN":"cfssl CA","key":{"algo":"ecdsa","size":256}}"#,
        )
        .expect("write");
        let gen = run_tool("cfssl", &["gencert", "-initca", "csr.json"], &c);
        assert_eq!(gen.code, 0, "{}", gen.text());
        // cfssl prints JSON, which is YAML too.
        let v: serde_yaml::Value = serde_yaml::from_str(&gen.stdout).expect("cfssl json");
        fs::write(c.join("ca.pem"), v["cert"].as_str().expect("cert")).expect("write");
        let key = v["key"].as_str().expect("key");
        assert!(key.contains("EC PRIVATE KEY"), "{key}");
        fs::write(c.join("ca-key.pem"), key).expect("write");
        pki_ok(&c, &["server", "--name", "s", "--hosts", "127.0.0.1"]);
        assert!(openssl_verify(&c, "ca.pem", "s.pem", Some("sslserver")));
        let out = pki_ok(&c, &["inspect", "ca.pem", "ca-key.pem", "s.pem"]).stdout;
        assert!(
            out.contains("ECDSA P-256 (SEC1)") && out.contains("ca.pem (CN=cfssl CA)"),
            "{out}"
        );
        let info = run_tool("cfssl", &["certinfo", "-cert", "s.pem"], &c);
        assert!(
            info.code == 0 && info.stdout.contains("127.0.0.1"),
            "{}",
            info.text()
        );
    } else {
        println!("SKIP cfssl part of etcd_naming_rsa_and_foreign_cas: cfssl not installed");
    }
}

#[test]
fn files_are_never_overwritten_without_force() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    pki_ok(d, &["init"]);
    let ca = fs::read_to_string(d.join("ca.pem")).expect("read");
    let again = pki(d, &["init"]);
    assert_eq!(again.code, 1, "{}", again.text());
    assert!(
        again.stderr.contains("ca.pem")
            && again.stderr.contains("ca-key.pem")
            && again.stderr.contains("--force"),
        "{}",
        again.text()
    );
    assert_eq!(fs::read_to_string(d.join("ca.pem")).expect("read"), ca);
    let forced = pki_ok(d, &["init", "--force"]);
    assert!(
        forced.stdout.contains("previous CA was replaced"),
        "{}",
        forced.text()
    );
    assert_ne!(fs::read_to_string(d.join("ca.pem")).expect("read"), ca);
    assert_eq!(mode(&d.join("ca-key.pem")), 0o600);

    pki_ok(d, &["client", "--name", "root"]);
    let cert = fs::read_to_string(d.join("root.pem")).expect("read");
    let again = pki(d, &["client", "--name", "root"]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("root.pem") && again.stderr.contains("--force"),
        "{}",
        again.text()
    );
    assert_eq!(fs::read_to_string(d.join("root.pem")).expect("read"), cert);
    // A key made readable by others gets 0600 again when rewritten.
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(d.join("root-key.pem"), fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    pki_ok(d, &["client", "--name", "root", "--force"]);
    assert_ne!(fs::read_to_string(d.join("root.pem")).expect("read"), cert);
    assert_eq!(mode(&d.join("root-key.pem")), 0o600);

    // The cluster command: refuses to overwrite, --force rewrites, an existing CA is reused.
    let members = "a=https://127.0.0.1:12380,b=https://127.0.0.1:12480";
    let clients = "a=https://127.0.0.1:12379,b=https://127.0.0.1:12479";
    let c = d.join("cluster");
    pki_ok(
        d,
        &[
            "cluster",
            "--dir",
            "cluster",
            "--members",
            members,
            "--client-urls",
            clients,
        ],
    );
    let ca = fs::read_to_string(c.join("ca.pem")).expect("read");
    let a_cert = fs::read_to_string(c.join("a.pem")).expect("read");
    let again = pki(
        d,
        &[
            "cluster",
            "--dir",
            "cluster",
            "--members",
            members,
            "--client-urls",
            clients,
        ],
    );
    assert_eq!(again.code, 1);
    for f in ["a.pem", "a-key.pem", "a.yaml", "b.pem", "root.pem"] {
        assert!(again.stderr.contains(f), "{f} not named:\n{}", again.text());
    }
    let forced = pki_ok(
        d,
        &[
            "cluster",
            "--dir",
            "cluster",
            "--members",
            members,
            "--client-urls",
            clients,
            "--force",
        ],
    );
    assert!(forced.stdout.contains("existing CA"), "{}", forced.text());
    assert_eq!(fs::read_to_string(c.join("ca.pem")).expect("read"), ca);
    assert_ne!(fs::read_to_string(c.join("a.pem")).expect("read"), a_cert);
    for f in ["ca-key.pem", "a-key.pem", "b-key.pem", "root-key.pem"] {
        assert_eq!(mode(&c.join(f)), 0o600, "{f}");
    }

    // Mistakes in flags are explained, and nothing is written.
    let bad = pki(
        d,
        &["server", "--name", "x", "--hosts", "https://10.0.0.1:2379"],
    );
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("--hosts") && bad.stderr.contains("URL"),
        "{}",
        bad.text()
    );
    let bad = pki(d, &["server", "--name", "x"]);
    assert!(
        bad.code == 1 && bad.stderr.contains("--hosts"),
        "{}",
        bad.text()
    );
    assert!(!d.join("x.pem").exists());
    let bad = pki(
        d,
        &[
            "cluster",
            "--dir",
            "c2",
            "--members",
            "a=http://127.0.0.1:2380",
        ],
    );
    assert!(
        bad.code == 1 && bad.stderr.contains("https://"),
        "{}",
        bad.text()
    );
    assert!(!d.join("c2").exists());
    let usage = pki(d, &["server", "--bogus"]);
    assert_eq!(usage.code, 2, "{}", usage.text());
}

#[test]
fn inspect_reads_openssl_v1_certificates_and_warns() {
    if skip_without(
        &["openssl"],
        "inspect_reads_openssl_v1_certificates_and_warns",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    // Guide 002's way: v1 root and a v1 client certificate with only CN=localhost.
    let steps: [&[&str]; 6] = [
        &["genrsa", "-out", "root.key", "2048"],
        &[
            "req",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/CN=guide-root",
            "-out",
            "root.csr",
        ],
        &[
            "x509", "-req", "-in", "root.csr", "-signkey", "root.key", "-days", "365", "-out",
            "root.crt",
        ],
        &["genrsa", "-traditional", "-out", "client.key", "2048"],
        &[
            "req",
            "-new",
            "-key",
            "client.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "client.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-out",
            "client.crt",
        ],
    ];
    for s in steps {
        let r = run_tool("openssl", s, d);
        assert_eq!(r.code, 0, "openssl {s:?}: {}", r.text());
    }
    assert_eq!(
        run_tool(
            "openssl",
            &[
                "x509",
                "-in",
                "client.crt",
                "-outform",
                "der",
                "-out",
                "client.der"
            ],
            d
        )
        .code,
        0
    );
    let out = pki_ok(
        d,
        &[
            "inspect",
            "root.crt",
            "client.crt",
            "client.key",
            "client.der",
        ],
    )
    .stdout;
    assert_eq!(inspect_field(&out, "client.crt", "Version"), "1");
    assert_eq!(inspect_field(&out, "client.crt", "SANs"), "(none)");
    assert_eq!(
        inspect_field(&out, "client.crt", "CA"),
        "no basicConstraints extension"
    );
    assert!(
        inspect_field(&out, "client.crt", "Chain").contains("CN=guide-root [root.crt]"),
        "{out}"
    );
    assert!(out.contains("X.509 v1 certificate"), "{out}");
    assert!(
        out.contains("no subjectAltName (a CN-only certificate, CN=localhost)"),
        "{out}"
    );
    assert!(
        out.contains("RSA 2048 (PKCS#1)") && out.contains("client.crt (CN=localhost)"),
        "{out}"
    );
    assert_eq!(inspect_field(&out, "client.der", "Subject"), "CN=localhost");
    compare_with_openssl(d, "client.crt");
    compare_with_openssl(d, "root.crt");

    // kvd's own certificates used for the wrong purpose, expired, or with a loose key.
    pki_ok(d, &["init", "--dir", "k"]);
    let k = d.join("k");
    pki_ok(&k, &["server", "--name", "client", "--hosts", "127.0.0.1"]);
    pki_ok(
        &k,
        &[
            "client",
            "--name",
            "old",
            "--not-before",
            "2020-01-01T00:00:00Z",
            "--not-after",
            "2020-06-01T00:00:00Z",
        ],
    );
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(k.join("old-key.pem"), fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let out = pki_ok(
        &k,
        &["inspect", "ca.pem", "client.pem", "old.pem", "old-key.pem"],
    )
    .stdout;
    assert!(
        out.contains(
            "warning: looks like a client certificate, but: no clientAuth extended key usage"
        ),
        "{out}"
    );
    assert_eq!(
        inspect_field(&out, "old.pem", "Not after")
            .split(' ')
            .next(),
        Some("2020-06-01T00:00:00Z")
    );
    assert!(
        out.contains("warning: EXPIRED on 2020-06-01T00:00:00Z"),
        "{out}"
    );
    assert!(out.contains("readable by other users (mode 0644)"), "{out}");
    compare_with_openssl(&k, "old.pem");

    let bad = pki(d, &["inspect", "root.csr", "missing.pem"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("root.csr") && bad.stderr.contains("missing.pem"),
        "{}",
        bad.text()
    );
}

#[test]
fn check_names_the_cause_for_broken_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    pki_ok(d, &["init", "--dir", "a", "--cn", "same name"]);
    pki_ok(d, &["init", "--dir", "b"]);
    pki_ok(d, &["init", "--dir", "twin", "--cn", "same name"]);
    let a = d.join("a");
    pki_ok(&a, &["client", "--name", "root"]);
    pki_ok(&a, &["server", "--name", "server", "--hosts", "127.0.0.1"]);
    pki_ok(
        &a,
        &[
            "client",
            "--name",
            "old",
            "--not-before",
            "2020-01-01",
            "--not-after",
            "2020-06-01T00:00:00Z",
        ],
    );
    pki_ok(d, &["client", "--dir", "b", "--name", "root"]);
    pki_ok(d, &["client", "--dir", "twin", "--name", "root"]);

    let good = pki(
        &a,
        &[
            "check",
            "--cacert",
            "ca.pem",
            "--cert",
            "root.pem",
            "--key",
            "root-key.pem",
        ],
    );
    assert_eq!(good.code, 0, "{}", good.text());
    assert!(good.stdout.contains("result: all good"), "{}", good.text());

    let cases: [(&str, &[&str], &[&str]); 6] = [
        (
            "wrong CA",
            &[
                "check",
                "--cacert",
                "a/ca.pem",
                "--cert",
                "b/root.pem",
                "--key",
                "b/root-key.pem",
            ],
            &[
                "b/root.pem",
                "was not issued by a/ca.pem",
                "unknown authority",
            ],
        ),
        (
            "same-name CA",
            &[
                "check",
                "--cacert",
                "a/ca.pem",
                "--cert",
                "twin/root.pem",
                "--key",
                "twin/root-key.pem",
            ],
            &["different CA with the same name"],
        ),
        (
            "missing EKU",
            &[
                "check",
                "--cacert",
                "a/ca.pem",
                "--cert",
                "a/server.pem",
                "--key",
                "a/server-key.pem",
            ],
            &[
                "not usable as a client certificate",
                "no clientAuth extended key usage",
            ],
        ),
        (
            "expired",
            &[
                "check",
                "--cacert",
                "a/ca.pem",
                "--cert",
                "a/old.pem",
                "--key",
                "a/old-key.pem",
            ],
            &["expired on 2020-06-01T00:00:00Z"],
        ),
        (
            "key mismatch",
            &[
                "check",
                "--cacert",
                "a/ca.pem",
                "--cert",
                "a/root.pem",
                "--key",
                "a/server-key.pem",
            ],
            &["a/server-key.pem does not match a/root.pem"],
        ),
        (
            "SAN mismatch",
            &[
                "check",
                "--cacert",
                "a/ca.pem",
                "--cert",
                "a/server.pem",
                "--key",
                "a/server-key.pem",
                "--role",
                "server",
                "--hosts",
                "127.0.0.1,localhost",
            ],
            &[
                "valid for host 127.0.0.1",
                "not valid for host localhost: its SANs are IP:127.0.0.1",
            ],
        ),
    ];
    for (name, args, expected) in cases {
        let r = pki(d, args);
        assert_eq!(r.code, 1, "{name}: {}", r.text());
        for e in expected {
            assert!(
                r.stdout.contains(e),
                "{name}: expected {e:?} in\n{}",
                r.text()
            );
        }
        assert!(r.stdout.contains("FAIL"), "{name}: {}", r.text());
    }
    // A swapped certificate and key is a clear error, not a crash.
    let swapped = pki(
        &a,
        &[
            "check",
            "--cacert",
            "ca.pem",
            "--cert",
            "root-key.pem",
            "--key",
            "root.pem",
        ],
    );
    assert_eq!(swapped.code, 1);
    assert!(swapped.stdout.contains("swap"), "{}", swapped.text());
}

/// A process that is killed when the guard drops.
struct ProcessGuard {
    child: Child,
    log: PathBuf,
}

impl ProcessGuard {
    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(program: &str, dir: &Path, log_name: &str, args: &[String]) -> ProcessGuard {
    let log = dir.join(log_name);
    let f = fs::File::create(&log).expect("log");
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(f.try_clone().expect("log"))
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    ProcessGuard { child, log }
}

/// Polls `etcdctl endpoint health` until all `endpoints` are healthy. Returns the log of a
/// member that exited instead; panics with the logs after 40 s.
fn wait_healthy(
    dir: &Path,
    endpoints: &str,
    ca: &str,
    cert: &str,
    key: &str,
    guards: &mut [ProcessGuard],
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = String::new();
    while Instant::now() < deadline {
        for g in guards.iter_mut() {
            if g.exited() {
                return Err(g.log());
            }
        }
        let r = run_tool(
            "etcdctl",
            &[
                "--endpoints",
                endpoints,
                "--cacert",
                ca,
                "--cert",
                cert,
                "--key",
                key,
                "--dial-timeout=1s",
                "--command-timeout=2s",
                "endpoint",
                "health",
            ],
            dir,
        );
        if r.code == 0 {
            return Ok(());
        }
        last = r.text();
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs: Vec<String> = guards.iter().map(|g| g.log()).collect();
    panic!(
        "cluster not healthy within 40s:\n{last}\n--- member logs\n{}",
        logs.join("\n---\n")
    );
}

fn healthy_or_panic(r: Result<(), String>) {
    if let Err(log) = r {
        panic!("a member exited:\n{log}");
    }
}

#[test]
fn check_diagnoses_a_live_etcd() {
    if skip_without(&["etcd", "etcdctl"], "check_diagnoses_a_live_etcd") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    pki_ok(d, &["init"]);
    pki_ok(d, &["server", "--name", "server", "--hosts", "127.0.0.1"]);
    pki_ok(d, &["client", "--name", "root"]);
    pki_ok(
        d,
        &[
            "client",
            "--name",
            "old",
            "--not-before",
            "2020-01-01",
            "--not-after",
            "2020-06-01T00:00:00Z",
        ],
    );
    pki_ok(d, &["init", "--dir", "other"]);
    pki_ok(d, &["client", "--dir", "other", "--name", "root"]);

    let (client, peer, metrics) = (free_port(), free_port(), free_port());
    let curl = |scheme: &str, p: u16| format!("{scheme}://127.0.0.1:{p}");
    let args: Vec<String> = [
        "--name",
        "t",
        "--data-dir",
        "t.etcd",
        "--listen-client-urls",
        &curl("https", client),
        "--advertise-client-urls",
        &curl("https", client),
        "--listen-peer-urls",
        &curl("http", peer),
        "--initial-advertise-peer-urls",
        &curl("http", peer),
        "--initial-cluster",
        &format!("t={}", curl("http", peer)),
        "--listen-metrics-urls",
        &curl("http", metrics),
        "--cert-file",
        "server.pem",
        "--key-file",
        "server-key.pem",
        "--trusted-ca-file",
        "ca.pem",
        "--client-cert-auth",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut etcd = [spawn("etcd", d, "etcd.log", &args)];
    let ep = curl("https", client);
    healthy_or_panic(wait_healthy(
        d,
        &ep,
        "ca.pem",
        "root.pem",
        "root-key.pem",
        &mut etcd,
    ));

    let check = |extra: &[&str], endpoint: &str| {
        let mut a = vec!["check", "--timeout", "5s"];
        a.extend_from_slice(extra);
        a.extend(["--endpoints", endpoint]);
        pki(d, &a)
    };
    let good = check(
        &[
            "--cacert",
            "ca.pem",
            "--cert",
            "root.pem",
            "--key",
            "root-key.pem",
        ],
        &ep,
    );
    assert_eq!(good.code, 0, "{}\n{}", good.text(), etcd[0].log());
    assert!(
        good.stdout.contains("client certificate accepted"),
        "{}",
        good.text()
    );

    let localhost = format!("https://localhost:{client}");
    let unused = curl("https", free_port());
    let plaintext = curl("https", metrics);
    let cases: Vec<(&str, Vec<&str>, &str, Vec<&str>)> = vec![
        (
            "SAN mismatch",
            vec![
                "--cacert",
                "ca.pem",
                "--cert",
                "root.pem",
                "--key",
                "root-key.pem",
            ],
            &localhost,
            vec![
                "is not valid for \"localhost\"",
                "its SANs are IP:127.0.0.1",
            ],
        ),
        (
            "unknown CA",
            vec![
                "--cacert",
                "other/ca.pem",
                "--cert",
                "other/root.pem",
                "--key",
                "other/root-key.pem",
            ],
            &ep,
            vec!["an unknown CA"],
        ),
        (
            "client cert without clientAuth",
            vec![
                "--cacert",
                "ca.pem",
                "--cert",
                "server.pem",
                "--key",
                "server-key.pem",
            ],
            &ep,
            vec![
                "refused our client certificate server.pem",
                "no clientAuth extended key usage",
            ],
        ),
        (
            "client cert from another CA",
            vec![
                "--cacert",
                "ca.pem",
                "--cert",
                "other/root.pem",
                "--key",
                "other/root-key.pem",
            ],
            &ep,
            vec![
                "refused our client certificate other/root.pem",
                "the server trusts client certificates from",
            ],
        ),
        (
            "expired client cert",
            vec![
                "--cacert",
                "ca.pem",
                "--cert",
                "old.pem",
                "--key",
                "old-key.pem",
            ],
            &ep,
            vec![
                "refused our client certificate old.pem",
                "it expired on 2020-06-01T00:00:00Z",
            ],
        ),
        (
            "no client cert",
            vec!["--cacert", "ca.pem"],
            &ep,
            vec!["requires a client certificate and none was given"],
        ),
        (
            "not TLS",
            vec![
                "--cacert",
                "ca.pem",
                "--cert",
                "root.pem",
                "--key",
                "root-key.pem",
            ],
            &plaintext,
            vec!["does not speak TLS"],
        ),
        (
            "nothing listening",
            vec![
                "--cacert",
                "ca.pem",
                "--cert",
                "root.pem",
                "--key",
                "root-key.pem",
            ],
            &unused,
            vec!["cannot connect"],
        ),
    ];
    for (name, extra, endpoint, expected) in cases {
        let r = check(&extra, endpoint);
        assert_eq!(r.code, 1, "{name}: {}", r.text());
        let fail_line = r
            .stdout
            .lines()
            .find(|l| l.starts_with("FAIL") && l.contains(endpoint))
            .unwrap_or_else(|| panic!("{name}: no FAIL line for {endpoint}:\n{}", r.text()));
        for e in expected {
            assert!(
                fail_line.contains(e),
                "{name}: expected {e:?} in {fail_line:?}\n{}",
                r.text()
            );
        }
    }
    // etcd itself agrees on the refusals (its log names the same causes).
    let log = etcd[0].log();
    assert!(log.contains("incompatible key usage"), "{log}");
    assert!(log.contains("certificate has expired"), "{log}");
    assert!(log.contains("didn't provide a certificate"), "{log}");
}

/// Writes a 3-member loopback cluster with `kvd pki cluster`, starts it with `server`
/// (`etcd` or `kvd`, each member from its `--config-file`), and checks client TLS with
/// client-cert-auth, peer TLS, and `kvd pki check` against every member. Returns false when
/// the server reports that it cannot serve TLS yet (the caller skips).
fn three_member_cluster(server: &str) -> bool {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let names = ["infra1", "infra2", "infra3"];
    let peer_ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let client_ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let url = |p: &u16| format!("https://127.0.0.1:{p}");
    let members: Vec<String> = names
        .iter()
        .zip(&peer_ports)
        .map(|(n, p)| format!("{n}={}", url(p)))
        .collect();
    let clients: Vec<String> = names
        .iter()
        .zip(&client_ports)
        .map(|(n, p)| format!("{n}={}", url(p)))
        .collect();
    let out = pki_ok(
        d,
        &[
            "cluster",
            "--dir",
            "certs",
            "--members",
            &members.join(","),
            "--client-urls",
            &clients.join(","),
        ],
    );
    let c = d.join("certs");
    let endpoints = client_ports.iter().map(url).collect::<Vec<_>>().join(",");
    assert!(
        out.stdout
            .contains(&format!("etcdctl --endpoints={endpoints}")),
        "{}",
        out.text()
    );
    assert!(
        out.stdout.contains("--cacert=") && out.stdout.contains("root-key.pem"),
        "{}",
        out.text()
    );
    for n in names {
        assert_eq!(mode(&c.join(format!("{n}-key.pem"))), 0o600);
        let yaml = fs::read_to_string(c.join(format!("{n}.yaml"))).expect("yaml");
        let v: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("valid yaml");
        assert_eq!(v["name"].as_str(), Some(n));
        assert_eq!(
            v["initial-cluster"].as_str(),
            Some(members.join(",").as_str())
        );
        for block in ["client-transport-security", "peer-transport-security"] {
            assert_eq!(v[block]["client-cert-auth"].as_bool(), Some(true), "{yaml}");
            assert!(
                v[block]["trusted-ca-file"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("ca.pem")),
                "{yaml}"
            );
        }
    }
    assert_eq!(mode(&c.join("root-key.pem")), 0o600);

    let mut guards: Vec<ProcessGuard> = names
        .iter()
        .map(|n| {
            let cfg = c.join(format!("{n}.yaml")).display().to_string();
            spawn(
                server,
                d,
                &format!("{n}.log"),
                &["--config-file".to_string(), cfg],
            )
        })
        .collect();
    if let Err(log) = wait_healthy(
        &c,
        &endpoints,
        "ca.pem",
        "root.pem",
        "root-key.pem",
        &mut guards,
    ) {
        if log.contains("not supported") {
            println!("{server} cannot serve this set-up yet:\n{log}");
            return false;
        }
        panic!("a {server} member exited:\n{log}");
    }

    // Every member answers with its certificate, the client certificate is accepted, and
    // the members' own certificates work on the peer ports.
    let r = pki(
        &c,
        &[
            "check",
            "--cacert",
            "ca.pem",
            "--cert",
            "root.pem",
            "--key",
            "root-key.pem",
            "--endpoints",
            &endpoints,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(
        r.stdout.matches("client certificate accepted").count(),
        3,
        "{}",
        r.text()
    );
    let peers = peer_ports.iter().map(url).collect::<Vec<_>>().join(",");
    let r = pki(
        &c,
        &[
            "check",
            "--cacert",
            "ca.pem",
            "--cert",
            "infra1.pem",
            "--key",
            "infra1-key.pem",
            "--role",
            "peer",
            "--endpoints",
            &peers,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    // A write through one member is read back through another: the members are one cluster.
    let etcdctl = |endpoint: &str, cmd: &[&str]| {
        let mut a = vec![
            "--endpoints",
            endpoint,
            "--cacert",
            "ca.pem",
            "--cert",
            "root.pem",
            "--key",
            "root-key.pem",
        ];
        a.extend_from_slice(cmd);
        run_tool("etcdctl", &a, &c)
    };
    let put = etcdctl(&url(&client_ports[0]), &["put", "k", "v"]);
    assert_eq!(put.code, 0, "{}", put.text());
    let get = etcdctl(&url(&client_ports[2]), &["get", "k", "--print-value-only"]);
    assert_eq!(get.stdout.trim(), "v", "{}", get.text());
    drop(guards);
    true
}

#[test]
fn a_three_member_etcd_cluster_runs_on_kvd_pki_cluster_output() {
    if skip_without(
        &["etcd", "etcdctl"],
        "a_three_member_etcd_cluster_runs_on_kvd_pki_cluster_output",
    ) {
        return;
    }
    assert!(three_member_cluster("etcd"), "etcd refused the set-up");
}

/// The same cluster run by kvd itself (`KVD_SERVER_BIN` may name another kvd build).
#[test]
fn a_three_member_kvd_cluster_runs_on_kvd_pki_cluster_output() {
    if skip_without(
        &["etcdctl"],
        "a_three_member_kvd_cluster_runs_on_kvd_pki_cluster_output",
    ) {
        return;
    }
    let server = std::env::var("KVD_SERVER_BIN").unwrap_or_else(|_| KVD.to_string());
    if !three_member_cluster(&server) {
        println!(
            "SKIP a_three_member_kvd_cluster_runs_on_kvd_pki_cluster_output: this kvd build does not serve TLS yet"
        );
    }
}
