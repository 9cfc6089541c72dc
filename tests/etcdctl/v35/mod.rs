//! The same kind of differential scenarios as the 3.4 suite, with etcd 3.5.1's tools: each
//! runs etcd 3.5.1's `etcdctl` (and `etcdutl`) against real etcd 3.5.1 and against the server
//! under test, and the normalised transcripts must be equal. Absolute assertions pin what
//! both must show. Without etcd 3.5.1 installed (`scripts/install-etcd-3.5`) each test prints
//! why it skips.

mod auth;
mod kv;
mod maintenance;
mod progress;
mod snapshot;
mod watch;

use std::process::Command;
use std::time::Duration;

use crate::differential::{differential_against, Transcript};
use crate::harness::{etcd35_bin, etcdctl35_bin, etcdutl35_bin, Output, Server};
use crate::support::bounded_run::BoundedRun;

/// Runs `scenario` on etcd 3.5.1 and on the server under test.
pub fn differential35(scenario: fn(&Server) -> Transcript) {
    differential_against(&etcd35_bin(), &[], scenario);
}

/// A transcript whose commands run etcd 3.5.1's etcdctl.
pub fn transcript(s: &Server) -> Transcript {
    Transcript::with_etcdctl(s, &etcdctl35_bin())
}

/// Runs etcd 3.5.1's `etcdutl args` (bounded by a minute).
pub fn etcdutl(args: &[&str]) -> Output {
    let mut cmd = Command::new(etcdutl35_bin());
    cmd.args(args);
    let shown = format!("etcdutl {}", args.join(" "));
    BoundedRun::new(
        cmd,
        shown,
        Duration::from_secs(60),
        Duration::from_millis(20),
    )
    .note_timeout_in_stderr()
    .output()
}
