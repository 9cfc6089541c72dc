//! TLS set-ups that cannot start, kvd and etcd side by side: an https URL without a
//! certificate and without auto TLS, and certificate files that are missing or not PEM.
//! Both exit non-zero; kvd's message names the flag (and the file) to fix.

use std::path::Path;
use std::time::Duration;

use crate::harness::{for_both, free_port, member_flags, temp_dir, Impl, Proc};

/// Starts `imp` with `args`; asserts that it exits non-zero within 30 s and returns its log.
#[track_caller]
fn must_fail(imp: Impl, cwd: &Path, label: &str, args: &[String]) -> String {
    std::fs::create_dir_all(cwd).unwrap();
    let mut p = Proc::spawn(imp, cwd, label, args);
    let code = p.wait_exit(Duration::from_secs(30));
    let log = p.log();
    match code {
        Some(c) => assert_ne!(c, 0, "{} {label}: exit 0; log:\n{log}", imp.name()),
        None => panic!(
            "{} {label}: still running after 30 s; log:\n{log}",
            imp.name()
        ),
    }
    log
}

/// The flags of a single member whose client and peer URLs use the given schemes.
fn base(cwd: &Path, client: &str, peer: &str) -> (Vec<String>, u16, u16) {
    let (c, p) = (free_port(), free_port());
    let peer_url = format!("{peer}://127.0.0.1:{p}");
    let args = member_flags(
        "s",
        &cwd.join("data"),
        &format!("{client}://127.0.0.1:{c}"),
        &peer_url,
        &format!("s={peer_url}"),
    );
    (args, c, p)
}

#[track_caller]
fn assert_has(imp: Impl, log: &str, needles: &[&str]) {
    for n in needles {
        assert!(log.contains(n), "{}: log lacks {n:?}:\n{log}", imp.name());
    }
}

/// An https client or peer URL with neither certificate files nor auto TLS.
#[test]
fn https_url_without_certificate_or_auto_tls() {
    require_tools!();
    let dir = temp_dir("startup-nocert");
    for_both(|imp| {
        let cwd = dir.path().join(imp.name());
        let (args, c, _) = base(&cwd, "https", "http");
        let log = must_fail(imp, &cwd.join("client"), "client", &args);
        match imp {
            Impl::Etcd => assert_has(
                imp,
                &log,
                &[&format!(
                    "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:{c} with HTTPS scheme"
                )],
            ),
            Impl::Kvd => assert_has(imp, &log, &["--cert-file", "--key-file", "--auto-tls"]),
        }
        let (args, _, p) = base(&cwd, "http", "https");
        let log = must_fail(imp, &cwd.join("peer"), "peer", &args);
        match imp {
            Impl::Etcd => assert_has(
                imp,
                &log,
                &[&format!(
                    "cannot listen on TLS for 127.0.0.1:{p}: KeyFile and CertFile are not presented"
                )],
            ),
            Impl::Kvd => assert_has(
                imp,
                &log,
                &["--peer-cert-file", "--peer-key-file", "--peer-auto-tls"],
            ),
        }
    });
}

/// Certificate files that cannot be used: missing, or not PEM. kvd names the file and the
/// flag; etcd exits with Go's error (`open ...: no such file or directory`, `tls: failed to
/// find any PEM data in certificate input`).
#[test]
fn unreadable_certificate_files() {
    require_tools!();
    let dir = temp_dir("startup-files");
    let garbage = dir.path().join("garbage.crt");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.crt");
    for_both(|imp| {
        let cwd = dir.path().join(imp.name());
        let m = missing.display().to_string();
        let g = garbage.display().to_string();

        // Missing --cert-file.
        let (mut args, _, _) = base(&cwd, "https", "http");
        args.push(format!("--cert-file={m}"));
        args.push(format!("--key-file={g}"));
        let log = must_fail(imp, &cwd.join("missing"), "missing", &args);
        match imp {
            Impl::Etcd => assert_has(
                imp,
                &log,
                &[&format!("open {m}: no such file or directory")],
            ),
            Impl::Kvd => assert_has(imp, &log, &["--cert-file", &m, "does not exist"]),
        }

        // --cert-file that is not PEM.
        let (mut args, _, _) = base(&cwd, "https", "http");
        args.push(format!("--cert-file={g}"));
        args.push(format!("--key-file={g}"));
        let log = must_fail(imp, &cwd.join("garbage"), "garbage", &args);
        match imp {
            Impl::Etcd => assert_has(
                imp,
                &log,
                &["tls: failed to find any PEM data in certificate input"],
            ),
            Impl::Kvd => assert_has(imp, &log, &["--cert-file", &g, "not a PEM file"]),
        }

        // Missing --peer-cert-file (and key).
        let (mut args, _, _) = base(&cwd, "http", "https");
        args.push(format!("--peer-cert-file={m}"));
        args.push(format!("--peer-key-file={m}"));
        let log = must_fail(imp, &cwd.join("peer"), "peer", &args);
        match imp {
            Impl::Etcd => assert_has(
                imp,
                &log,
                &[&format!("open {m}: no such file or directory")],
            ),
            Impl::Kvd => assert_has(imp, &log, &["--peer-cert-file", &m]),
        }
    });
}
