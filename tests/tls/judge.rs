//! The server and the doctor judge a certificate alike: for an X.509 v1 root with v1 and v3
//! client certificates (made by openssl the way the guides make them) and for broken chains
//! (a same-named impostor CA, a certificate without clientAuth, an intermediate that is not
//! a CA), kvd's client port accepts exactly the certificates `kvd pki check` passes, and
//! `kvd pki check --endpoints` (a real handshake) reports the same verdicts. Real etcd 3.4,
//! given the same certificates, accepts and refuses the same ones.

use std::path::Path;
use std::process::Command;

use crate::harness::{
    for_both, free_port, member_flags, path_flags, run, sh, temp_dir, Ctl, Impl, Proc, CMD,
};

/// The certificates: a v1 root (guide 002's way), a member certificate it signs, and the
/// client certificates of [`CASES`].
const SCRIPT: &str = r#"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
root() {
  key "$1"
  openssl req -new -key "$1.key" -subj "/CN=v1 root" -out "$1.csr"
  openssl x509 -req -days 3650 -sha256 -signkey "$1.key" -in "$1.csr" -out "$1.crt" 2>/dev/null
}
# sign NAME ISSUER SUBJECT [EXTENSIONS]: without extensions openssl makes an X.509 v1 certificate
sign() {
  key "$1"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
  if [ -n "${4:-}" ]; then
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -days 365 -sha256 -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -out "$1.crt" -extfile "$1.ext" 2>/dev/null
  else
    openssl x509 -req -days 365 -sha256 -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -out "$1.crt" 2>/dev/null
  fi
}
root root
root impostor
sign server root "/CN=member" "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
sign v1-client root "/CN=alice"
sign v1-impostor impostor "/CN=mallory"
sign v3-client root "/CN=bob" "extendedKeyUsage=clientAuth"
sign server-only root "/CN=carol" "extendedKeyUsage=serverAuth"
sign not-ca root "/CN=not a CA" "basicConstraints=critical,CA:FALSE"
sign via-not-ca not-ca "/CN=dave" "extendedKeyUsage=clientAuth"
cat via-not-ca.crt not-ca.crt > via-not-ca-chain.crt
openssl x509 -in v1-client.crt -noout -text | grep -q 'Version: 1 (0x0)'
openssl x509 -in root.crt -noout -text | grep -q 'Version: 1 (0x0)'
"#;

/// (client certificate file, its key, accepted by a server trusting the v1 root).
const CASES: &[(&str, &str, bool)] = &[
    ("v1-client.crt", "v1-client.key", true),
    ("v3-client.crt", "v3-client.key", true),
    ("v1-impostor.crt", "v1-impostor.key", false),
    ("server-only.crt", "server-only.key", false),
    ("via-not-ca-chain.crt", "via-not-ca.key", false),
];

/// `kvd pki check ARGS` in `dir`: (exit code, stdout).
fn pki_check(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut c = Command::new(Impl::Kvd.bin());
    c.current_dir(dir).args(["pki", "check"]).args(args);
    let out = run(c, CMD);
    (out.status, out.stdout)
}

#[test]
fn server_and_pki_check_judge_v1_and_broken_chains_alike() {
    require_tools!();
    let tmp = temp_dir("judge");
    let dir = tmp.path();
    sh(dir, SCRIPT);
    let expected: Vec<bool> = CASES.iter().map(|c| c.2).collect();

    // The doctor, from the files alone.
    let by_files: Vec<bool> = CASES
        .iter()
        .map(|(cert, key, _)| {
            let (code, out) =
                pki_check(dir, &["--cacert", "root.crt", "--cert", cert, "--key", key]);
            assert!(code == 0 || code == 1, "{cert}: exit {code}\n{out}");
            code == 0
        })
        .collect();
    assert_eq!(by_files, expected, "kvd pki check (files)");

    // The servers, and the doctor's live handshake against each.
    let results = for_both(|imp| {
        let port = free_port();
        let peer = format!("http://127.0.0.1:{}", free_port());
        let url = format!("https://127.0.0.1:{port}");
        let mut args = member_flags(
            "judge",
            &dir.join(format!("{}.data", imp.name())),
            &url,
            &peer,
            &format!("judge={peer}"),
        );
        args.extend(path_flags(&[
            ("cert-file", &dir.join("server.crt")),
            ("key-file", &dir.join("server.key")),
            ("trusted-ca-file", &dir.join("root.crt")),
        ]));
        args.push("--client-cert-auth".into());
        let mut server = Proc::spawn(imp, dir, "judge", &args);
        let ctl = |cert: &str, key: &str| {
            Ctl::new(&url)
                .cacert(&dir.join("root.crt"))
                .cert(&dir.join(cert), &dir.join(key))
        };
        server.wait_healthy(&ctl("v1-client.crt", "v1-client.key"));
        let accepted: Vec<bool> = CASES
            .iter()
            .map(|(cert, key, expect)| {
                // A refused certificate fails whatever the timeout (etcdctl retries until
                // it passes); an accepted one gets time enough on a loaded machine.
                let timeout = if *expect { "15s" } else { "3s" };
                ctl(cert, key)
                    .command_timeout(timeout)
                    .run(&["get", "k"])
                    .status
                    == 0
            })
            .collect();
        let probed: Vec<bool> = CASES
            .iter()
            .map(|(cert, key, _)| {
                let (code, out) = pki_check(
                    dir,
                    &[
                        "--cacert",
                        "root.crt",
                        "--cert",
                        cert,
                        "--key",
                        key,
                        "--endpoints",
                        &url,
                        "--timeout",
                        "15s",
                    ],
                );
                // The handshake verdict: its line for the endpoint.
                let line = out
                    .lines()
                    .find(|l| l.contains(&url))
                    .unwrap_or_else(|| panic!("{cert}: no line for {url}:\n{out}"))
                    .to_string();
                assert!(code == 0 || code == 1, "{cert}: exit {code}\n{out}");
                line.starts_with("ok")
            })
            .collect();
        (imp, accepted, probed)
    });
    for (imp, accepted, probed) in results {
        assert_eq!(accepted, expected, "{} accepts", imp.name());
        assert_eq!(
            probed,
            expected,
            "kvd pki check --endpoints against {}",
            imp.name()
        );
    }
}
