//! `kvd pki check`: do the CA, certificate and key given (etcdctl's `--cacert --cert --key`)
//! belong together? The key must match the certificate, the certificate must chain to the CA
//! and be valid now, fit its role (clientAuth for a client, ...) and cover `--hosts`. Whether
//! it chains is judged by `x509`, as kvd's listeners judge a client certificate. With
//! `--endpoints`, each endpoint gets a real TLS handshake ([`super::probe`]).
//!
//! Prints one line per finding (`ok`, `WARN`, `FAIL`) and exits 1 when anything failed.

use std::path::Path;

use time::OffsetDateTime;

use super::args::CheckArgs;
use super::certinfo::{CertInfo, IssuerLookup, Role, TimeStatus, WarningKind};
use super::files;
use super::finding::{Finding, Level};
use super::keys::PrivateKey;
use super::probe::{self, ProbeConfig};
use super::{times, PkiError};
use crate::x509::cert::Usage;
use crate::x509::{Failure, TrustStore};

fn label(p: &Path) -> String {
    p.display().to_string()
}

/// Follows `leaf` up through `intermediates` to one of `roots`.
///
/// # Errors
/// A sentence naming the certificate's issuer and what `--cacert` holds instead.
pub fn chain_to_roots(
    leaf: &CertInfo,
    intermediates: &[CertInfo],
    roots: &[CertInfo],
    ca_label: &str,
) -> Result<Vec<CertInfo>, String> {
    if roots.iter().any(|r| r.der == leaf.der) {
        return Ok(vec![leaf.clone()]);
    }
    let mut chain = vec![leaf.clone()];
    let mut current = leaf.clone();
    for _ in 0..8 {
        match current.find_issuer(roots) {
            IssuerLookup::Found(root) => {
                chain.push(root.clone());
                return Ok(chain);
            }
            IssuerLookup::SameNameOnly(root) => {
                return Err(format!(
                    "issuer name {:?} matches {ca_label}, but {ca_label}'s key did not sign it: it was signed by a different CA with the same name (was the CA re-created?)",
                    root.display_name()
                ));
            }
            IssuerLookup::SelfSigned(_) => {
                return Err(format!(
                    "it is self-signed ({}), and {ca_label} does not hold it",
                    current.display_name()
                ));
            }
            IssuerLookup::Missing => {}
        }
        match current.find_issuer(intermediates) {
            IssuerLookup::Found(next) => {
                chain.push(next.clone());
                current = next.clone();
            }
            _ => {
                let trusted = roots
                    .iter()
                    .map(|r| format!("{:?}", r.display_name()))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(format!(
                    "it was issued by {:?}, but {ca_label} holds {trusted}: a peer trusting {ca_label} refuses it (\"unknown authority\"); use the CA that issued it, or reissue the certificate from this CA",
                    current.issuer
                ));
            }
        }
    }
    Err("the chain is longer than 8 certificates".to_string())
}

/// How a kvd or etcd member trusting `roots` judges `chain` (leaf first) for `role`: the
/// same verification (`x509`) kvd's listeners and dials use. A peer certificate
/// must pass as a server and as a client certificate.
fn server_verdict(
    roots: &[CertInfo],
    chain: &[CertInfo],
    role: Role,
    now: OffsetDateTime,
) -> Result<(), Failure> {
    let trust = TrustStore::new(roots.iter().map(|r| r.der.clone()).collect(), Vec::new())
        .map_err(|(_, e)| Failure::Malformed(e))?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Ok(());
    };
    let intermediates: Vec<_> = intermediates.iter().map(|c| c.der.clone()).collect();
    let usages: &[Usage] = match role {
        Role::Client => &[Usage::ClientAuth],
        Role::Server => &[Usage::ServerAuth],
        Role::Peer => &[Usage::ServerAuth, Usage::ClientAuth],
    };
    for usage in usages {
        trust.verify(&leaf.der, &intermediates, now.unix_timestamp(), *usage)?;
    }
    Ok(())
}

/// True when the findings about the leaf's dates and role already report `failure`.
fn reported_below(failure: &Failure, leaf: &CertInfo, role: Role, now: OffsetDateTime) -> bool {
    match failure {
        Failure::Expired { .. } | Failure::NotYetValid { .. } => matches!(
            leaf.time_status(now),
            TimeStatus::Expired | TimeStatus::NotYetValid
        ),
        Failure::IncompatibleUsage => !leaf.role_problems(role).is_empty(),
        _ => false,
    }
}

/// Runs `kvd pki check`; returns 0 when everything passed, 1 otherwise.
///
/// # Errors
/// None beyond flag problems: unreadable files are findings.
pub fn run(args: &CheckArgs, now: OffsetDateTime) -> Result<i32, PkiError> {
    let mut findings: Vec<Finding> = Vec::new();
    let ca_label = label(&args.cacert);

    // The CA file.
    let roots: Vec<CertInfo> = match files::read_certs(&args.cacert) {
        Ok(ders) => {
            let mut roots = Vec::new();
            for der in ders {
                match CertInfo::parse(der) {
                    Ok(c) => roots.push(c),
                    Err(e) => findings.push(Finding::fail(format!("{ca_label}: {e}"))),
                }
            }
            roots
        }
        Err(e) => {
            findings.push(Finding::fail(e.to_string()));
            Vec::new()
        }
    };
    for r in &roots {
        let name = r.display_name();
        if !r.can_sign() {
            findings.push(Finding::warn(format!(
                "{ca_label}: {name:?} is not a CA certificate (CA:TRUE missing): was a server or client certificate given as --cacert?"
            )));
        }
        match r.time_status(now) {
            TimeStatus::Expired => findings.push(Finding::fail(format!(
                "{ca_label}: CA {name:?} expired on {}: nothing it signed is trusted any more; create a new CA and reissue",
                times::rfc3339(r.not_after)
            ))),
            TimeStatus::NotYetValid => findings.push(Finding::fail(format!(
                "{ca_label}: CA {name:?} is not valid before {}: check the clock",
                times::rfc3339(r.not_before)
            ))),
            TimeStatus::ExpiresSoon => findings.push(Finding::warn(format!(
                "{ca_label}: CA {name:?} expires soon, {}",
                times::rfc3339(r.not_after)
            ))),
            TimeStatus::Valid => findings.push(Finding::ok(format!(
                "{ca_label}: CA {name:?}, valid until {}",
                times::rfc3339(r.not_after)
            ))),
        }
    }

    // The certificate and key.
    let mut client: Option<(Vec<CertInfo>, PrivateKey)> = None;
    let mut leaf_for_probe: Option<CertInfo> = None;
    if let (Some(cert_path), Some(key_path)) = (&args.cert, &args.key) {
        let cert_label = label(cert_path);
        let key_label = label(key_path);
        let chain: Option<Vec<CertInfo>> = match files::read_certs(cert_path) {
            Ok(ders) => {
                let mut v = Vec::new();
                for der in ders {
                    match CertInfo::parse(der) {
                        Ok(c) => v.push(c),
                        Err(e) => findings.push(Finding::fail(format!("{cert_label}: {e}"))),
                    }
                }
                if v.is_empty() {
                    None
                } else {
                    Some(v)
                }
            }
            Err(e) => {
                findings.push(Finding::fail(e.to_string()));
                None
            }
        };
        let key = match PrivateKey::load(key_path) {
            Ok(k) => Some(k),
            Err(e) => {
                findings.push(Finding::fail(e.to_string()));
                None
            }
        };
        if let Some(chain) = &chain {
            let leaf = &chain[0];
            let name = leaf.display_name();
            if let Some(k) = &key {
                if k.public_key_bits() == leaf.public_key.as_slice() {
                    findings.push(Finding::ok(format!("{key_label} matches {cert_label}")));
                } else {
                    findings.push(Finding::fail(format!(
                        "{key_label} does not match {cert_label}: the key belongs to another certificate (the public keys differ); pass the key written together with {cert_label}"
                    )));
                }
            }
            if !roots.is_empty() {
                // The verdict is the server's (crate::x509, as kvd's listeners and dials
                // judge); chain_to_roots only explains a refusal in more words.
                let verdict = server_verdict(&roots, chain, args.role, now);
                match (
                    verdict,
                    chain_to_roots(leaf, &chain[1..], &roots, &ca_label),
                ) {
                    (Ok(()), Ok(path)) => findings.push(Finding::ok(format!(
                        "{cert_label}: {name:?} chains to {ca_label} ({})",
                        path.iter()
                            .map(CertInfo::display_name)
                            .collect::<Vec<_>>()
                            .join(" <- ")
                    ))),
                    (Ok(()), Err(_)) => findings.push(Finding::ok(format!(
                        "{cert_label}: {name:?} chains to {ca_label}"
                    ))),
                    (Err(_), Err(e)) => findings.push(Finding::fail(format!(
                        "{cert_label}: {name:?} was not issued by {ca_label}: {e}"
                    ))),
                    (Err(f), Ok(path)) => {
                        findings.push(Finding::ok(format!(
                            "{cert_label}: {name:?} chains to {ca_label} ({})",
                            path.iter()
                                .map(CertInfo::display_name)
                                .collect::<Vec<_>>()
                                .join(" <- ")
                        )));
                        if !reported_below(&f, leaf, args.role, now) {
                            findings.push(Finding::fail(format!(
                                "{cert_label}: a peer trusting {ca_label} refuses it as a {} certificate: {f}",
                                args.role.name()
                            )));
                        }
                    }
                }
            }
            match leaf.time_status(now) {
                TimeStatus::Expired => findings.push(Finding::fail(format!(
                    "{cert_label}: expired on {} ({}): peers refuse it (\"certificate has expired\"); issue a new one (kvd pki {} --name NAME --force)",
                    times::rfc3339(leaf.not_after),
                    times::relative(now, leaf.not_after),
                    args.role.name()
                ))),
                TimeStatus::NotYetValid => findings.push(Finding::fail(format!(
                    "{cert_label}: not valid before {} ({}): check the clocks",
                    times::rfc3339(leaf.not_before),
                    times::relative(now, leaf.not_before)
                ))),
                TimeStatus::ExpiresSoon => findings.push(Finding::warn(format!(
                    "{cert_label}: expires soon, {} ({})",
                    times::rfc3339(leaf.not_after),
                    times::relative(now, leaf.not_after)
                ))),
                TimeStatus::Valid => findings.push(Finding::ok(format!(
                    "{cert_label}: valid until {} ({})",
                    times::rfc3339(leaf.not_after),
                    times::relative(now, leaf.not_after)
                ))),
            }
            let problems = leaf.role_problems(args.role);
            if problems.is_empty() {
                findings.push(Finding::ok(format!(
                    "{cert_label}: fit for {} use (EKU {})",
                    args.role.name(),
                    leaf.eku_list()
                )));
            }
            for p in problems {
                findings.push(Finding::fail(format!(
                    "{cert_label}: not usable as a {} certificate: {p}; issue one with `kvd pki {}`",
                    args.role.name(),
                    args.role.name()
                )));
            }
            for w in leaf.warnings(now, "") {
                if w.kind == WarningKind::Other {
                    findings.push(Finding::warn(format!("{cert_label}: {}", w.text)));
                }
            }
            for h in &args.hosts {
                if leaf.covers_host(h) {
                    findings.push(Finding::ok(format!("{cert_label}: valid for host {h}")));
                } else {
                    findings.push(Finding::fail(format!(
                        "{cert_label}: not valid for host {h}: its SANs are {}; reissue it with {h} in --hosts",
                        leaf.san_list()
                    )));
                }
            }
            leaf_for_probe = Some(leaf.clone());
            if let Some(k) = key {
                client = Some((chain.clone(), k));
            }
        }
    } else if !args.hosts.is_empty() {
        return Err(PkiError::bad_flag(
            "--hosts",
            "give the certificate to check with --cert and --key",
        ));
    }

    // The endpoints.
    if !args.endpoints.is_empty() {
        let config = ProbeConfig {
            roots: roots.iter().map(|r| r.der.clone()).collect(),
            root_names: roots.iter().map(CertInfo::display_name).collect(),
            client: client
                .map(|(chain, key)| (chain.iter().map(|c| c.der.clone()).collect(), key.der())),
            client_info: leaf_for_probe,
            ca_label: ca_label.clone(),
            cert_label: args.cert.as_deref().map(label).unwrap_or_default(),
            timeout: args.timeout,
        };
        if config.roots.is_empty() {
            findings.push(Finding::fail(format!(
                "endpoints not checked: {ca_label} holds no usable CA certificate"
            )));
        } else {
            for ep in &args.endpoints {
                findings.extend(probe::probe(ep.trim(), &config, now));
            }
        }
    }

    let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warned = findings.iter().filter(|f| f.level == Level::Warn).count();
    for f in &findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        println!("{tag}  {}", f.text);
    }
    if failed == 0 {
        println!(
            "result: all good ({} checks passed{})",
            findings.len() - warned,
            if warned > 0 {
                format!(", {warned} warning{}", if warned == 1 { "" } else { "s" })
            } else {
                String::new()
            }
        );
        Ok(0)
    } else {
        println!(
            "result: {failed} problem{} found",
            if failed == 1 { "" } else { "s" }
        );
        Ok(1)
    }
}
