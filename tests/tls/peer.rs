//! Peer-port refusals, each in a two-member cluster of kvd and of etcd side by side: a
//! member whose peer certificate comes from the wrong CA, a member whose CN is not
//! `--peer-cert-allowed-cn`, and a member whose certificate does not name the address it
//! connects from (refused unless `--experimental-peer-skip-client-san-verification`). Each
//! refusal is read in the members' logs; then the member is restarted with the right
//! certificate (or flag) and the cluster becomes healthy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::certs::{Ca, Pair, Spec, BOTH};
use crate::harness::{for_both, free_port, temp_dir, Ctl, Impl, Proc};

/// How long a refusal may take to show up in a log (members retry every ~100 ms-1 s).
const SEEN: Duration = Duration::from_secs(20);

/// One member of a two-member peer-TLS cluster; client URLs are plain http.
struct M {
    name: &'static str,
    /// The loopback address the member's peer URL uses.
    host: &'static str,
    client: u16,
    peer: u16,
}

impl M {
    fn new(name: &'static str, host: &'static str) -> M {
        M {
            name,
            host,
            client: free_port(),
            peer: free_port(),
        }
    }

    fn peer_url(&self) -> String {
        format!("https://{}:{}", self.host, self.peer)
    }

    fn ctl(&self) -> Ctl {
        Ctl::new(&format!("http://127.0.0.1:{}", self.client))
    }
}

/// Member `i`'s flags. `run` numbers its data dir: a member restarted with other
/// certificates or flags starts from a fresh data dir, because one killed while it was still
/// forming the cluster may not have saved its bootstrap (etcd then restarts knowing no
/// peers and never becomes healthy).
fn args(ms: &[M], i: usize, run: u8, pair: &Pair, ca: &Path, extra: &[&str]) -> Vec<String> {
    let m = &ms[i];
    let cluster = ms
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let client = format!("http://127.0.0.1:{}", m.client);
    let mut a = vec![
        format!("--name={}", m.name),
        format!("--data-dir={}.data{run}", m.name),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={}", m.peer_url()),
        format!("--initial-advertise-peer-urls={}", m.peer_url()),
        format!("--initial-cluster={cluster}"),
        "--initial-cluster-token=peer-refusals".to_string(),
        "--initial-cluster-state=new".to_string(),
        format!("--peer-cert-file={}", pair.cert.display()),
        format!("--peer-key-file={}", pair.key.display()),
        format!("--peer-trusted-ca-file={}", ca.display()),
        "--peer-client-cert-auth".to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

struct Setup {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = temp_dir(name);
        let ca = Ca::new(dir.path(), "ca", "kvd peer CA");
        Setup { dir, ca }
    }

    fn ca_file(&self) -> PathBuf {
        self.ca.cert.clone()
    }

    fn cwd(&self, imp: Impl) -> PathBuf {
        let p = self.dir.path().join(imp.name());
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

/// Waits for both members to be healthy (a quorum of two).
fn healthy(procs: &mut [Proc], ms: &[M]) {
    for (p, m) in procs.iter_mut().zip(ms) {
        p.wait_healthy(&m.ctl());
    }
}

/// A member with a peer certificate from another CA can neither be reached nor reach the
/// other member: the good member refuses its client certificate (unknown authority), and
/// the bad member's listener sees the good member abort the handshake (`remote error: tls:
/// bad certificate` from etcd; kvd, dialing with rustls, sends the alert `certificate
/// unknown` instead: a difference in wording only). With a certificate from the right CA it
/// joins.
#[test]
fn peer_certificate_from_the_wrong_ca() {
    require_tools!();
    let s = Setup::new("peer-wrong-ca");
    let d = s.dir.path();
    let other = Ca::new(d, "other-ca", "some other CA");
    let good1 =
        s.ca.issue(d, "m1", &Spec::new("m1", &["127.0.0.1"], BOTH, 21));
    let good2 =
        s.ca.issue(d, "m2", &Spec::new("m2", &["127.0.0.1"], BOTH, 22));
    let bad2 = other.issue(d, "m2-other", &Spec::new("m2", &["127.0.0.1"], BOTH, 23));
    for_both(|imp| {
        let ms = [M::new("m1", "127.0.0.1"), M::new("m2", "127.0.0.1")];
        let cwd = s.cwd(imp);
        let m1 = Proc::spawn(imp, &cwd, "m1", &args(&ms, 0, 1, &good1, &s.ca_file(), &[]));
        let mut m2 = Proc::spawn(imp, &cwd, "m2", &args(&ms, 1, 1, &bad2, &s.ca_file(), &[]));
        m1.wait_log(
            &[
                "rejected connection from",
                "tls: failed to verify client certificate: x509: certificate signed by unknown authority",
            ],
            SEEN,
        );
        // The alert the dialing member sends depends on its TLS library: Go (etcd) sends
        // `bad certificate`, rustls (kvd) `certificate unknown`; each server logs what it
        // received, in Go's words.
        let alert = match imp {
            Impl::Etcd => "remote error: tls: bad certificate",
            Impl::Kvd => "remote error: tls: unknown certificate",
        };
        m2.wait_log(&["rejected connection from", alert], SEEN);
        if imp == Impl::Kvd {
            m1.wait_log(
                &[
                    "rejected connection from",
                    "subject \"CN=m2\"",
                    "listener=\"peer\"",
                ],
                SEEN,
            );
        }
        // No quorum without the second member.
        let out = ms[0]
            .ctl()
            .command_timeout("2s")
            .run(&["endpoint", "health"]);
        assert_ne!(out.status, 0, "{}: m1 healthy without m2", imp.name());
        m2.restart_with(&args(&ms, 1, 2, &good2, &s.ca_file(), &[]));
        let mut procs = [m1, m2];
        healthy(&mut procs, &ms);
        assert_eq!(ms[0].ctl().ok(&["put", "k", "v"]).trim(), "OK");
        assert_eq!(ms[1].ctl().ok(&["get", "k"]), "k\nv\n", "{}", imp.name());
    });
}

/// `--peer-cert-allowed-cn=member` on both members: a peer whose certificate (from the right
/// CA) says `CN=intruder` is refused; etcd logs `client certificate authentication failed`,
/// kvd the same words followed by which CN it got and which it wanted.
#[test]
fn peer_cert_allowed_cn_mismatch() {
    require_tools!();
    let s = Setup::new("peer-allowed-cn");
    let d = s.dir.path();
    let good1 =
        s.ca.issue(d, "m1", &Spec::new("member", &["127.0.0.1"], BOTH, 31));
    let good2 =
        s.ca.issue(d, "m2", &Spec::new("member", &["127.0.0.1"], BOTH, 32));
    let bad2 = s.ca.issue(
        d,
        "m2-intruder",
        &Spec::new("intruder", &["127.0.0.1"], BOTH, 33),
    );
    let allowed = ["--peer-cert-allowed-cn=member"];
    for_both(|imp| {
        let ms = [M::new("m1", "127.0.0.1"), M::new("m2", "127.0.0.1")];
        let cwd = s.cwd(imp);
        let m1 = Proc::spawn(
            imp,
            &cwd,
            "m1",
            &args(&ms, 0, 1, &good1, &s.ca_file(), &allowed),
        );
        let mut m2 = Proc::spawn(
            imp,
            &cwd,
            "m2",
            &args(&ms, 1, 1, &bad2, &s.ca_file(), &allowed),
        );
        let line = m1.wait_log(
            &[
                "rejected connection from",
                "client certificate authentication failed",
            ],
            SEEN,
        );
        if imp == Impl::Kvd {
            assert!(
                line.contains("CN \\\"intruder\\\" is not the allowed CN \\\"member\\\"")
                    && line.contains("subject \"CN=intruder\""),
                "kvd: {line}"
            );
        }
        m2.restart_with(&args(&ms, 1, 2, &good2, &s.ca_file(), &allowed));
        let mut procs = [m1, m2];
        healthy(&mut procs, &ms);
        assert_eq!(
            ms[1].ctl().ok(&["put", "k", "v"]).trim(),
            "OK",
            "{}",
            imp.name()
        );
    });
}

/// A member listening on 127.0.0.2 with a certificate naming only 127.0.0.2: its
/// connections to the other member come from 127.0.0.1, which its certificate does not
/// name, so the other member refuses them (`x509: certificate is valid for 127.0.0.2, not
/// 127.0.0.1`). With `--experimental-peer-skip-client-san-verification` on both members
/// the same certificates form a healthy cluster and nothing more is refused.
#[test]
fn peer_certificate_san_must_name_the_remote_address() {
    require_tools!();
    let s = Setup::new("peer-san");
    let d = s.dir.path();
    let c1 =
        s.ca.issue(d, "m1", &Spec::new("m1", &["127.0.0.1"], BOTH, 41));
    let c2 =
        s.ca.issue(d, "m2", &Spec::new("m2", &["127.0.0.2"], BOTH, 42));
    let reason = "x509: certificate is valid for 127.0.0.2, not 127.0.0.1";
    for_both(|imp| {
        let ms = [M::new("m1", "127.0.0.1"), M::new("m2", "127.0.0.2")];
        let cwd = s.cwd(imp);
        let mut m1 = Proc::spawn(imp, &cwd, "m1", &args(&ms, 0, 1, &c1, &s.ca_file(), &[]));
        let mut m2 = Proc::spawn(imp, &cwd, "m2", &args(&ms, 1, 1, &c2, &s.ca_file(), &[]));
        m1.wait_log(&["rejected connection from \"127.0.0.1:", reason], SEEN);
        let skip = ["--experimental-peer-skip-client-san-verification"];
        m1.restart_with(&args(&ms, 0, 2, &c1, &s.ca_file(), &skip));
        m2.restart_with(&args(&ms, 1, 2, &c2, &s.ca_file(), &skip));
        let before = m1.log_lines(&[reason]).len();
        let mut procs = [m1, m2];
        healthy(&mut procs, &ms);
        assert_eq!(ms[0].ctl().ok(&["put", "k", "v"]).trim(), "OK");
        assert_eq!(ms[1].ctl().ok(&["get", "k"]), "k\nv\n", "{}", imp.name());
        assert_eq!(
            procs[0].log_lines(&[reason]).len(),
            before,
            "{}: refused again with the skip flag",
            imp.name()
        );
    });
}
