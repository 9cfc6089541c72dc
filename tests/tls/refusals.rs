//! Client-port refusals, each run against kvd and the real etcd with the same certificates
//! and flags: etcdctl fails the way etcd users know (exit 1, `Error: context deadline
//! exceeded`), the server logs one `rejected connection from ...` line naming the reason,
//! and the same etcdctl with the right `--cacert/--cert/--key` works on the same server.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crate::certs::{date, Ca, Pair, Spec, BOTH, CLIENT, SERVER};
use crate::harness::{
    eventually, for_both, free_port, join, member_flags, path_flags, temp_dir, Ctl, Impl, Proc,
};

/// One way to be refused: the etcdctl flags and endpoint to use, and the reason each
/// server logs.
struct Case {
    what: &'static str,
    /// Endpoint: `ok` (https://127.0.0.1:P), `other_ip` (https://127.0.0.2:Q, not in the
    /// server certificate), `plain` (127.0.0.1:P without a scheme: plaintext).
    endpoint: Endpoint,
    flags: Vec<String>,
    /// Text kvd's refusal line must contain.
    kvd_reason: String,
    /// Text etcd's refusal line must contain.
    etcd_reason: String,
    /// The client certificate's CN, when one is sent (kvd adds `subject "CN=..."`).
    subject: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Endpoint {
    Ok,
    OtherIp,
    Plain,
}

/// The certificates of the refusal set-up.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    server: Pair,
    good: Pair,
    crl: PathBuf,
    clients: Vec<(&'static str, Pair)>,
}

/// Serial of the revoked client certificate (0x0f, as etcd prints it: `serial 0f`).
const REVOKED_SERIAL: u64 = 15;

fn make_pki(dir: &Path) -> Pki {
    let ca = Ca::new(dir, "ca", "kvd refusal CA");
    let other = Ca::new(dir, "other-ca", "some other CA");
    let server = ca.issue(dir, "server", &Spec::new("server", &["127.0.0.1"], BOTH, 2));
    let good = ca.issue(dir, "good", &Spec::new("good-client", &[], CLIENT, 10));
    let mut clients = Vec::new();
    let mut add = |name: &'static str, ca: &Ca, spec: Spec| {
        clients.push((name, ca.issue(dir, name, &spec)));
    };
    add(
        "other-ca-client",
        &other,
        Spec::new("other-ca-client", &[], CLIENT, 11),
    );
    add(
        "server-only-client",
        &ca,
        Spec::new("server-only-client", &[], SERVER, 12),
    );
    add(
        "expired-client",
        &ca,
        Spec::new("expired-client", &[], CLIENT, 13).valid(date(2020, 1, 1), date(2020, 1, 2)),
    );
    add(
        "future-client",
        &ca,
        Spec::new("future-client", &[], CLIENT, 14).valid(date(2099, 1, 1), date(2100, 1, 1)),
    );
    add(
        "revoked-client",
        &ca,
        Spec::new("revoked-client", &[], CLIENT, REVOKED_SERIAL),
    );
    let crl = ca.crl(dir, "crl", &[REVOKED_SERIAL]);
    Pki {
        ca: ca.cert,
        other_ca: other.cert,
        server,
        good,
        crl,
        clients,
    }
}

fn tls_flags(ca: &Path, pair: &Pair) -> Vec<String> {
    vec![
        format!("--cacert={}", ca.display()),
        format!("--cert={}", pair.cert.display()),
        format!("--key={}", pair.key.display()),
    ]
}

fn cases(pki: &Pki) -> Vec<Case> {
    let client = |name: &str| {
        &pki.clients
            .iter()
            .find(|(n, _)| *n == name)
            .expect("client cert")
            .1
    };
    let verify = "tls: failed to verify client certificate: ";
    let both = |s: &str| (s.to_string(), s.to_string());
    let mut v = Vec::new();
    let mut case = |what, endpoint, flags, reasons: (String, String), subject| {
        v.push(Case {
            what,
            endpoint,
            flags,
            kvd_reason: reasons.0,
            etcd_reason: reasons.1,
            subject,
        })
    };
    case(
        "no client certificate (only --cacert)",
        Endpoint::Ok,
        vec![format!("--cacert={}", pki.ca.display())],
        both("tls: client didn't provide a certificate"),
        None,
    );
    case(
        "client certificate from another CA",
        Endpoint::Ok,
        tls_flags(&pki.ca, client("other-ca-client")),
        both(&format!(
            "{verify}x509: certificate signed by unknown authority"
        )),
        Some("other-ca-client"),
    );
    case(
        "client certificate without the clientAuth EKU",
        Endpoint::Ok,
        tls_flags(&pki.ca, client("server-only-client")),
        both(&format!(
            "{verify}x509: certificate specifies an incompatible key usage"
        )),
        Some("server-only-client"),
    );
    case(
        "expired client certificate",
        Endpoint::Ok,
        tls_flags(&pki.ca, client("expired-client")),
        both(" is after 2020-01-02T00:00:00Z"),
        Some("expired-client"),
    );
    case(
        "client certificate not valid yet",
        Endpoint::Ok,
        tls_flags(&pki.ca, client("future-client")),
        both(" is before 2099-01-01T00:00:00Z"),
        Some("future-client"),
    );
    case(
        "client certificate revoked by the CRL",
        Endpoint::Ok,
        tls_flags(&pki.ca, client("revoked-client")),
        // kvd checks the CRL inside the handshake and words it like the other x509
        // failures; etcd checks it after the handshake: `transport: certificate serial 0f
        // revoked`.
        (
            format!("{verify}x509: certificate revoked by CRL (serial 0f"),
            "transport: certificate serial 0f revoked".to_string(),
        ),
        Some("revoked-client"),
    );
    case(
        "wrong --cacert on the client",
        Endpoint::Ok,
        tls_flags(&pki.other_ca, &pki.good),
        both("remote error: tls: bad certificate"),
        None,
    );
    case(
        "server certificate does not name the address dialed",
        Endpoint::OtherIp,
        tls_flags(&pki.ca, &pki.good),
        both("remote error: tls: bad certificate"),
        None,
    );
    case(
        "https endpoint without any TLS flag (system roots)",
        Endpoint::Ok,
        Vec::new(),
        both("remote error: tls: bad certificate"),
        None,
    );
    case(
        "plaintext to the TLS port",
        Endpoint::Plain,
        Vec::new(),
        both("tls: first record does not look like a TLS handshake"),
        None,
    );
    v
}

/// One server of the refusal set-up, with its endpoints.
struct Server {
    imp: Impl,
    proc: Proc,
    port: u16,
    other_port: u16,
}

impl Server {
    fn start(imp: Impl, dir: &Path, pki: &Pki) -> Server {
        let port = free_port();
        let other_port = free_port();
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args = member_flags(
            "refusals",
            &dir.join(format!("{}.data", imp.name())),
            &format!("https://127.0.0.1:{port},https://127.0.0.2:{other_port}"),
            &peer,
            &format!("refusals={peer}"),
        );
        args.extend(path_flags(&[
            ("cert-file", &pki.server.cert),
            ("key-file", &pki.server.key),
            ("trusted-ca-file", &pki.ca),
            ("client-crl-file", &pki.crl),
        ]));
        args.push("--client-cert-auth".into());
        let mut proc = Proc::spawn(imp, dir, "refusals", &args);
        proc.wait_healthy(&good_ctl(pki, port));
        Server {
            imp,
            proc,
            port,
            other_port,
        }
    }

    fn endpoint(&self, e: Endpoint) -> String {
        match e {
            Endpoint::Ok => format!("https://127.0.0.1:{}", self.port),
            Endpoint::OtherIp => format!("https://127.0.0.2:{}", self.other_port),
            Endpoint::Plain => format!("127.0.0.1:{}", self.port),
        }
    }

    fn reason<'a>(&self, c: &'a Case) -> &'a str {
        match self.imp {
            Impl::Kvd => &c.kvd_reason,
            Impl::Etcd => &c.etcd_reason,
        }
    }

    /// Refusal lines naming `c`'s reason (and, for kvd, the certificate's subject).
    fn refusals(&self, c: &Case) -> Vec<String> {
        let subject = c.subject.map(|cn| format!("subject \"CN={cn}\""));
        let mut needles = vec!["rejected connection from \"127.0.0.1:", self.reason(c)];
        if let (Impl::Kvd, Some(s)) = (self.imp, subject.as_deref()) {
            needles.push(s);
        }
        self.proc.log_lines(&needles)
    }

    /// Runs case `c` and checks etcdctl's failure and the server's log line.
    fn refuse(&self, c: &Case) {
        let flags: Vec<&str> = c.flags.iter().map(String::as_str).collect();
        let before = self.refusals(c).len();
        let out = Ctl::new(&self.endpoint(c.endpoint))
            .flags(&flags)
            .command_timeout("2s")
            .run(&["get", "k"]);
        assert_eq!(
            (out.status, out.err_lines()),
            (1, vec!["Error: context deadline exceeded".to_string()]),
            "{} / {}: `{}` should fail like etcdctl on every TLS failure",
            self.imp.name(),
            c.what,
            out.cmd
        );
        let logged = eventually(Duration::from_secs(5), || {
            let lines = self.refusals(c);
            (lines.len() > before).then(|| lines[before].clone())
        });
        if let Some(line) = &logged {
            eprintln!("{} / {}:\n    {line}", self.imp.name(), c.what);
        }
        assert!(
            logged.is_some(),
            "{} / {}: no refusal line with {:?}{} in the log; log tail:\n{}",
            self.imp.name(),
            c.what,
            self.reason(c),
            c.subject
                .filter(|_| self.imp == Impl::Kvd)
                .map(|cn| format!(" and subject \"CN={cn}\""))
                .unwrap_or_default(),
            self.proc.log_tail(30)
        );
    }
}

fn good_ctl(pki: &Pki, port: u16) -> Ctl {
    Ctl::new(&format!("https://127.0.0.1:{port}"))
        .cacert(&pki.ca)
        .cert(&pki.good.cert, &pki.good.key)
}

/// Every refusal, against kvd and etcd side by side; then the right flags work on the same
/// servers. Cases whose log reason is the same (`remote error: tls: bad certificate`) run
/// one after the other so that each one's line is told apart; the others run at once.
#[test]
fn client_port_refusals_match_etcd() {
    require_tools!();
    let dir = temp_dir("refusals");
    let pki = make_pki(dir.path());
    let cases = cases(&pki);
    let servers: Vec<Server> = thread::scope(|s| {
        let hs: Vec<_> = Impl::BOTH
            .iter()
            .map(|imp| {
                let (dir, pki) = (dir.path(), &pki);
                s.spawn(move || Server::start(*imp, dir, pki))
            })
            .collect();
        hs.into_iter().map(join).collect()
    });
    thread::scope(|s| {
        let mut hs = Vec::new();
        for server in &servers {
            let (alone, shared): (Vec<&Case>, Vec<&Case>) = cases
                .iter()
                .partition(|c| c.etcd_reason != "remote error: tls: bad certificate");
            for c in alone {
                hs.push(s.spawn(move || server.refuse(c)));
            }
            hs.push(s.spawn(move || {
                for c in shared {
                    server.refuse(c);
                }
            }));
        }
        for h in hs {
            join(h);
        }
    });
    for server in &servers {
        let ctl = good_ctl(&pki, server.port);
        assert_eq!(
            ctl.ok(&["put", "k", "v"]).trim(),
            "OK",
            "{}",
            server.imp.name()
        );
        assert_eq!(ctl.ok(&["get", "k"]), "k\nv\n", "{}", server.imp.name());
        let lines = server.proc.log_lines(&["rejected connection from"]);
        assert!(
            !lines.is_empty(),
            "{}: refusals were logged",
            server.imp.name()
        );
    }
    // kvd logs one WARN line per refusal, with the remote address and ServerName as etcd.
    let kvd = &servers[0];
    for line in kvd.proc.log_lines(&["rejected connection from"]) {
        assert!(
            line.contains("WARN") && line.contains("(error \"") && line.contains("ServerName \""),
            "kvd refusal line not in etcd's shape: {line}"
        );
    }
}

/// `--trusted-ca-file` without `--client-cert-auth` already requires and verifies client
/// certificates, on kvd as on etcd: a client with only `--cacert` is refused, one with a
/// certificate from the CA is served.
#[test]
fn trusted_ca_alone_requires_client_certificates() {
    require_tools!();
    let dir = temp_dir("trusted-ca-alone");
    let pki = make_pki(dir.path());
    for_both(|imp| {
        let cwd = dir.path().join(imp.name());
        std::fs::create_dir(&cwd).unwrap();
        let url = format!("https://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args = member_flags("ca", &cwd.join("data"), &url, &peer, &format!("ca={peer}"));
        args.extend(path_flags(&[
            ("cert-file", &pki.server.cert),
            ("key-file", &pki.server.key),
            ("trusted-ca-file", &pki.ca),
        ]));
        let mut p = Proc::spawn(imp, &cwd, "ca", &args);
        let good = Ctl::new(&url)
            .cacert(&pki.ca)
            .cert(&pki.good.cert, &pki.good.key);
        p.wait_healthy(&good);
        Ctl::new(&url)
            .cacert(&pki.ca)
            .command_timeout("2s")
            .run(&["get", "k"])
            .deadline_exceeded();
        p.wait_log(
            &[
                "rejected connection from",
                "tls: client didn't provide a certificate",
            ],
            Duration::from_secs(5),
        );
        assert_eq!(good.ok(&["put", "k", "v"]).trim(), "OK", "{}", imp.name());
    });
}
