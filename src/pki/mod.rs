//! `kvd pki`: certificates for a whole cluster in one command, and a TLS doctor.
//!
//! This module owns everything behind `kvd pki ...`: making a CA, issuing server, peer and
//! client certificates with the key usages etcd and etcdctl expect, writing a complete
//! TLS cluster set-up (certificates plus one etcd-style `--config-file` YAML per member),
//! explaining certificates (`inspect`) and diagnosing TLS failures (`check`).
//!
//! It depends on the crypto and parsing crates (rcgen, x509-parser, rustls) and on
//! `x509`, the certificate module the TLS layer uses too, so that `check` judges a
//! chain exactly as kvd's listeners and dials do; never on the server's own modules.
//!
//! Module map:
//! - `cli`: the clap parser and the dispatch to each command; `init`, `server`, `peer`,
//!   `client`.
//! - `args`: the option groups and the arguments of `cluster`, `inspect` and `check`.
//! - `error`: [`PkiError`], the one error type of this module.
//! - `times`: RFC 3339 dates, `--validity` durations and a certificate's validity window.
//! - `files`: file naming conventions (cfssl / etcd), reading PEM, safe writing (no
//!   overwrite without `--force`, private keys 0600).
//! - `keys`: key generation and loading private keys of any common PEM format.
//! - `ca`: creating and loading the certificate authority.
//! - `issue`: server / peer / client certificate profiles and host (SAN) parsing.
//! - `cluster`: the whole-cluster command and its per-member YAML.
//! - `certinfo`: a parsed certificate summary, fitness per role and the classic-mistake
//!   warnings, shared by `inspect` and `check`.
//! - `inspect`: the `inspect` command.
//! - `check`: the `check` command's file checks.
//! - `finding`: one line of the `check` report.
//! - `probe`: the `check` command's live TLS handshake (the server's certificate judged by
//!   `x509`) and failure classification.

mod args;
mod ca;
mod certinfo;
mod check;
mod cli;
mod cluster;
mod error;
mod files;
mod finding;
mod inspect;
mod issue;
mod keys;
mod probe;
mod times;

pub use error::PkiError;

use std::ffi::OsString;

/// Runs `kvd pki` with the arguments that follow `pki` on the command line and returns the
/// process exit code: 0 on success, 1 when the command failed or `check` found a problem,
/// 2 for a usage error.
pub fn run(args: Vec<OsString>) -> i32 {
    cli::run(args)
}
