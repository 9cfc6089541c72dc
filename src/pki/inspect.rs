//! `kvd pki inspect FILE...`: prints each certificate's subject, issuer, key, dates (RFC 3339
//! UTC), CA flag, key usages, extended key usages, SANs (`DNS:localhost, IP:127.0.0.1`), its
//! issuer chain among the given files, what it is fit for (server / peer / client) and
//! warnings for the classic mistakes; and each private key's type and matching certificate.
//!
//! Reads certificates from kvd, cfssl and openssl alike, including X.509 v1 certificates.

use std::fmt::Write as _;
use std::path::Path;

use time::OffsetDateTime;

use super::args::InspectArgs;
use super::certinfo::{CertInfo, IssuerLookup, Role};
use super::files::{self, KeyEncoding};
use super::keys::PrivateKey;
use super::{times, PkiError};

/// A certificate and where it came from.
struct Entry {
    file: String,
    index: usize,
    count: usize,
}

/// Runs `kvd pki inspect`; returns 1 when a file could not be read, else 0 (warnings do not
/// change the exit code).
///
/// # Errors
/// None: per-file errors are printed and counted.
pub fn run(args: &InspectArgs, now: OffsetDateTime) -> Result<i32, PkiError> {
    let mut failed = 0usize;
    let mut certs: Vec<CertInfo> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut keys: Vec<(String, Result<PrivateKey, String>, Option<u32>)> = Vec::new();
    let mut encrypted: Vec<String> = Vec::new();
    for path in &args.files {
        let label = path.display().to_string();
        let contents = match files::read_pem(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kvd pki: error: {e}");
                failed += 1;
                continue;
            }
        };
        if contents.certs.is_empty() && contents.keys.is_empty() && !contents.encrypted_key {
            let what = if contents.csr {
                "a certificate signing request only (sign it first)"
            } else {
                "no certificate and no private key"
            };
            eprintln!("kvd pki: error: {label}: {what}");
            failed += 1;
            continue;
        }
        let count = contents.certs.len();
        for (i, der) in contents.certs.into_iter().enumerate() {
            match CertInfo::parse(der) {
                Ok(info) => {
                    certs.push(info);
                    entries.push(Entry {
                        file: label.clone(),
                        index: i + 1,
                        count,
                    });
                }
                Err(e) => {
                    eprintln!(
                        "kvd pki: error: {label}: certificate {} of {count}: {e}",
                        i + 1
                    );
                    failed += 1;
                }
            }
        }
        if contents.encrypted_key {
            encrypted.push(label.clone());
        }
        for (enc, der) in contents.keys {
            let key = PrivateKey::from_der(enc, der);
            keys.push((label.clone(), key, files::mode_of(path)));
        }
    }

    let mut out = String::new();
    let mut warning_count = 0usize;
    for (i, info) in certs.iter().enumerate() {
        warning_count += describe_cert(&mut out, info, &entries[i], &certs, &entries, now);
    }
    for (label, key, mode) in &keys {
        warning_count += describe_key(&mut out, label, key, *mode, &certs, &entries);
    }
    for label in &encrypted {
        let _ = writeln!(out, "{label}: encrypted private key");
        let _ = writeln!(out, "  warning: etcd and kvd cannot use an encrypted key; decrypt it: openssl pkey -in {label} -out PLAIN.pem");
        warning_count += 1;
    }
    let _ = writeln!(
        out,
        "{} certificate{}, {} private key{}, {} warning{}",
        certs.len(),
        plural(certs.len()),
        keys.len() + encrypted.len(),
        plural(keys.len() + encrypted.len()),
        warning_count,
        plural(warning_count)
    );
    print!("{out}");
    Ok(if failed > 0 { 1 } else { 0 })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn where_from(e: &Entry) -> String {
    if e.count == 1 {
        e.file.clone()
    } else {
        format!("{} #{}", e.file, e.index)
    }
}

/// Writes one certificate's block; returns the number of warnings printed.
fn describe_cert(
    out: &mut String,
    info: &CertInfo,
    entry: &Entry,
    pool: &[CertInfo],
    entries: &[Entry],
    now: OffsetDateTime,
) -> usize {
    let _ = writeln!(
        out,
        "{}: certificate {} of {}",
        entry.file, entry.index, entry.count
    );
    let row = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "  {:<12} {v}", format!("{k}:"));
    };
    row(out, "Subject", &info.display_name());
    row(
        out,
        "Issuer",
        &if info.issuer.is_empty() {
            "(empty)".to_string()
        } else {
            info.issuer.clone()
        },
    );
    row(out, "Serial", &info.serial);
    row(out, "Version", &info.version.to_string());
    row(out, "Public key", &info.key);
    row(out, "Signature", &info.signature);
    row(out, "Not before", &times::rfc3339(info.not_before));
    row(
        out,
        "Not after",
        &format!(
            "{} ({})",
            times::rfc3339(info.not_after),
            if now > info.not_after {
                format!("EXPIRED {}", times::relative(now, info.not_after))
            } else {
                format!("expires {}", times::relative(now, info.not_after))
            }
        ),
    );
    let ca = match info.basic_constraints {
        Some((true, None)) => "yes (CA:TRUE)".to_string(),
        Some((true, Some(n))) => format!("yes (CA:TRUE, pathlen:{n})"),
        Some((false, _)) => "no (CA:FALSE)".to_string(),
        None => "no basicConstraints extension".to_string(),
    };
    row(out, "CA", &ca);
    row(
        out,
        "Key usage",
        &info
            .key_usage
            .as_ref()
            .map(|k| {
                if k.is_empty() {
                    "(empty)".to_string()
                } else {
                    k.join(", ")
                }
            })
            .unwrap_or_else(|| "(none)".to_string()),
    );
    row(out, "EKU", &info.eku_list());
    row(out, "SANs", &info.san_list());

    let mut warnings: Vec<String> = Vec::new();
    // The issuer chain, as far as the given files allow.
    let mut chain = vec![info.display_name()];
    let mut current = info;
    let mut seen = 0;
    loop {
        seen += 1;
        if seen > 8 {
            chain.push("... (chain longer than 8)".to_string());
            break;
        }
        match current.find_issuer(pool) {
            IssuerLookup::SelfSigned(Ok(())) => {
                chain.push("(self-signed root)".to_string());
                break;
            }
            IssuerLookup::SelfSigned(Err(e)) => {
                chain.push("(self-issued, but its own key does not verify it)".to_string());
                warnings.push(format!("names itself as issuer but its {e}"));
                break;
            }
            IssuerLookup::Found(issuer) => {
                let pos = pool
                    .iter()
                    .position(|c| std::ptr::eq(c, issuer))
                    .unwrap_or(0);
                chain.push(format!(
                    "{} [{}]",
                    issuer.display_name(),
                    where_from(&entries[pos])
                ));
                if !issuer.can_sign() {
                    warnings.push(format!(
                        "its issuer {} lacks CA:TRUE: openssl verify and Go refuse to build this chain",
                        issuer.display_name()
                    ));
                }
                if now > issuer.not_after {
                    warnings.push(format!(
                        "its issuer {} expired on {}",
                        issuer.display_name(),
                        times::rfc3339(issuer.not_after)
                    ));
                }
                if issuer.is_self_issued() {
                    chain.push("(root)".to_string());
                    break;
                }
                current = issuer;
            }
            IssuerLookup::SameNameOnly(other) => {
                let pos = pool
                    .iter()
                    .position(|c| std::ptr::eq(c, other))
                    .unwrap_or(0);
                chain.push(format!("{} (signature mismatch)", current.issuer));
                warnings.push(format!(
                    "issuer name matches {} but its key did not sign this certificate: it was signed by a different CA with the same name (a CA re-created?)",
                    where_from(&entries[pos])
                ));
                break;
            }
            IssuerLookup::Missing => {
                chain.push(format!(
                    "{} (not among the given files; add the CA file to check the chain)",
                    if current.issuer.is_empty() {
                        "(empty issuer)"
                    } else {
                        &current.issuer
                    }
                ));
                break;
            }
        }
    }
    row(out, "Chain", &chain.join(" <- "));

    if info.can_sign() {
        row(out, "Fit for", "CA (signs certificates)");
    } else {
        let verdicts: Vec<String> = [Role::Server, Role::Peer, Role::Client]
            .iter()
            .map(|r| {
                let ok = info.role_problems(*r).is_empty();
                format!("{} {}", r.name(), if ok { "yes" } else { "NO" })
            })
            .collect();
        row(out, "Fit for", &verdicts.join(", "));
        // Each reason once, with the roles it rules out.
        let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
        for r in [Role::Server, Role::Peer, Role::Client] {
            for p in info.role_problems(r) {
                match reasons.iter_mut().find(|(text, _)| *text == p) {
                    Some((_, roles)) => roles.push(r.name()),
                    None => reasons.push((p, vec![r.name()])),
                }
            }
        }
        for (text, roles) in reasons {
            let _ = writeln!(out, "    not {}: {text}", roles.join("/"));
        }
    }
    warnings.extend(info.warnings(now, &entry.file).into_iter().map(|w| w.text));
    for w in &warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    let _ = writeln!(out);
    warnings.len()
}

/// Writes one private key's block; returns the number of warnings printed.
fn describe_key(
    out: &mut String,
    label: &str,
    key: &Result<PrivateKey, String>,
    mode: Option<u32>,
    certs: &[CertInfo],
    entries: &[Entry],
) -> usize {
    let mut warnings = 0;
    let _ = writeln!(out, "{label}: private key");
    match key {
        Ok(k) => {
            let _ = writeln!(
                out,
                "  {:<12} {} ({})",
                "Type:",
                k.description,
                k.encoding.describe()
            );
            let matches: Vec<String> = certs
                .iter()
                .zip(entries)
                .filter(|(c, _)| c.public_key.as_slice() == k.public_key_bits())
                .map(|(c, e)| format!("{} ({})", where_from(e), c.display_name()))
                .collect();
            let m = if matches.is_empty() {
                if certs.is_empty() {
                    "(give its certificate too to check)".to_string()
                } else {
                    "none of the given certificates".to_string()
                }
            } else {
                matches.join(", ")
            };
            let _ = writeln!(out, "  {:<12} {m}", "Matches:");
            if k.encoding == KeyEncoding::Pkcs1 || k.encoding == KeyEncoding::Sec1 {
                // Both are fine for etcd and kvd; say so, since guides mix them.
                let _ = writeln!(
                    out,
                    "  {:<12} {} (etcd, kvd, openssl and cfssl read it)",
                    "Encoding:",
                    k.encoding.describe()
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  warning: {e}");
            warnings += 1;
        }
    }
    if let Some(mode) = mode {
        let _ = writeln!(out, "  {:<12} {mode:04o}", "Mode:");
        if mode & 0o077 != 0 {
            let _ = writeln!(
                out,
                "  warning: readable by other users (mode {mode:04o}): chmod 600 {}",
                Path::new(label).display()
            );
            warnings += 1;
        }
    }
    let _ = writeln!(out);
    warnings
}
