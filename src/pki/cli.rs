//! The `kvd pki` command line (clap derive) and the small commands `init`, `server`, `peer`
//! and `client`; `cluster`, `inspect` and `check` live in their own modules, and the option
//! groups they share in [`super::args`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;

use super::args::{
    parse_time, parse_validity, CheckArgs, ClusterArgs, CommonArgs, InspectArgs, KeyArgs,
};

use super::ca::{self, Ca};
use super::certinfo::Role;
use super::files::{self, Naming, Output};
use super::issue::{self, LeafSpec};
use super::keys::KeyType;
use super::times::{self, Validity, Window};
use super::{check, cluster, inspect, PkiError};

/// `kvd pki`: certificates for etcd-style clusters, and a TLS doctor.
#[derive(Debug, Parser)]
#[command(
    name = "kvd pki",
    bin_name = "kvd pki",
    about = "Make correct TLS certificates for a kvd/etcd cluster and diagnose TLS failures",
    long_about = "Make correct TLS certificates for a kvd/etcd cluster and diagnose TLS failures.\n\n\
        Quick start: `kvd pki cluster --members infra1=https://10.0.1.10:2380,infra2=https://10.0.1.11:2380,infra3=https://10.0.1.12:2380 --dir certs`\n\
        writes a CA, one certificate per member, a client certificate and a --config-file YAML per member.",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create a certificate authority (CA certificate and key) in --dir.
    Init(InitArgs),
    /// Issue a server certificate (serverAuth) for a member's client port.
    Server(LeafArgs),
    /// Issue a peer certificate (serverAuth + clientAuth) for member-to-member TLS.
    Peer(LeafArgs),
    /// Issue a client certificate (clientAuth; CN = the user name for CN-based auth).
    Client(LeafArgs),
    /// Write everything a TLS cluster needs: CA, member certificates, client certificate,
    /// one --config-file YAML per member.
    Cluster(ClusterArgs),
    /// Explain certificates and keys: names, SANs, usages, dates, chain, fitness, mistakes.
    Inspect(InspectArgs),
    /// Check that CA, certificate and key belong together, and diagnose a live TLS endpoint.
    Check(CheckArgs),
}

/// `kvd pki init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Key type of the CA key.
    #[arg(long, value_enum, default_value = "ecdsa-p256")]
    key_type: KeyType,
    /// CA validity from now: days (3650 or 3650d), years (10y), weeks or hours.
    #[arg(long, default_value = "10y", value_parser = parse_validity)]
    validity: Validity,
    /// Start of validity, RFC 3339 (default: 5 minutes ago).
    #[arg(long, value_parser = parse_time)]
    not_before: Option<OffsetDateTime>,
    /// End of validity, RFC 3339; overrides --validity.
    #[arg(long, value_parser = parse_time)]
    not_after: Option<OffsetDateTime>,
    /// The CA's common name (default: "kvd CA" and a random tag).
    #[arg(long)]
    cn: Option<String>,
}

/// `kvd pki server|peer|client`.
#[derive(Debug, Args)]
pub struct LeafArgs {
    /// Name of the certificate: the files are NAME.pem and NAME-key.pem (or NAME.crt and
    /// NAME.key), and the subject CN (for a client: the user name).
    #[arg(long)]
    name: String,
    /// Host names and IP addresses the certificate is valid for (SANs), comma-separated: IPs
    /// become IP SANs, names DNS SANs. Required for server and peer certificates.
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
    /// Also add localhost and 127.0.0.1 to the SANs.
    #[arg(long)]
    with_localhost: bool,
    /// Subject common name, if it should differ from --name.
    #[arg(long)]
    cn: Option<String>,
    /// CA certificate to sign with (default: ca.pem or ca.crt in --dir).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// CA key to sign with (default: ca-key.pem or ca.key in --dir).
    #[arg(long)]
    ca_key: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// Parses `args` (what follows `pki`) and runs the command; see [`super::run`].
pub fn run(args: Vec<OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("kvd pki")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // Printing help or the error to the terminal; nothing else to do if that fails.
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let now = OffsetDateTime::now_utc();
    let result = match &cli.cmd {
        Cmd::Init(a) => init(a, now),
        Cmd::Server(a) => leaf(Role::Server, a, now),
        Cmd::Peer(a) => leaf(Role::Peer, a, now),
        Cmd::Client(a) => leaf(Role::Client, a, now),
        Cmd::Cluster(a) => cluster::run(a, now).map(|()| 0),
        Cmd::Inspect(a) => inspect::run(a, now),
        Cmd::Check(a) => check::run(a, now),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kvd pki: error: {e}");
            1
        }
    }
}

fn init(a: &InitArgs, now: OffsetDateTime) -> Result<i32, PkiError> {
    let naming = a
        .common
        .naming
        .unwrap_or_else(|| Naming::detect(&a.common.dir));
    let cert_path = a.common.dir.join(naming.cert_file("ca"));
    let key_path = a.common.dir.join(naming.key_file("ca"));
    let window = Window::resolve(now, a.validity, a.not_before, a.not_after)?;
    let cn = match &a.cn {
        Some(cn) if !cn.trim().is_empty() => cn.clone(),
        Some(_) => return Err(PkiError::bad_flag("--cn", "the CA name must not be empty")),
        None => ca::default_common_name()?,
    };
    let replaced = cert_path.exists();
    let outputs = [
        Output::public(cert_path.clone(), String::new()),
        Output::private(key_path.clone(), String::new()),
    ];
    // Refuse before spending time on key generation.
    files::ensure_absent(&outputs, a.common.force)?;
    let new = ca::create(&cn, a.key_type, &window)?;
    let loaded = Ca::from_new(&new, &cert_path, &key_path, now)?;
    files::write_all(
        &[
            Output::public(cert_path.clone(), new.cert_pem),
            Output::private(key_path.clone(), new.key_pem),
        ],
        a.common.force,
    )?;
    println!(
        "wrote {} and {} (mode 0600): CA \"{}\", {}, valid until {}",
        cert_path.display(),
        key_path.display(),
        loaded.cert.display_name(),
        loaded.cert.key,
        times::rfc3339(loaded.cert.not_after)
    );
    if replaced {
        println!("note: the previous CA was replaced; certificates it issued do not verify against the new one: reissue them");
    }
    let dir = a.common.dir.display();
    println!("next: kvd pki server --dir {dir} --name NAME --hosts HOST,IP  |  kvd pki client --dir {dir} --name root  |  kvd pki cluster --dir {dir} --members NAME=https://IP:2380,...");
    Ok(0)
}

fn leaf(role: Role, a: &LeafArgs, now: OffsetDateTime) -> Result<i32, PkiError> {
    if !files::valid_stem(&a.name) {
        return Err(PkiError::bad_flag(
            "--name",
            format!("{:?} cannot name the files: use letters, digits, '-', '_', '.', '@' (and not \"ca\")", a.name),
        ));
    }
    let dir = &a.common.dir;
    let naming = a.common.naming.unwrap_or_else(|| Naming::detect(dir));
    let ca_cert = a
        .ca_cert
        .clone()
        .unwrap_or_else(|| dir.join(naming.cert_file("ca")));
    let ca_key = a
        .ca_key
        .clone()
        .unwrap_or_else(|| dir.join(naming.key_file("ca")));
    if !ca_cert.exists() {
        return Err(PkiError::bad_file(
            &ca_cert,
            format!(
                "no CA certificate here: create one with `kvd pki init --dir {}` or name an existing one with --ca-cert and --ca-key",
                dir.display()
            ),
        ));
    }
    let ca = Ca::load(&ca_cert, &ca_key, now)?;
    let hosts = issue::parse_hosts(&a.hosts, a.with_localhost)?;
    let cert_path = dir.join(naming.cert_file(&a.name));
    let key_path = dir.join(naming.key_file(&a.name));
    files::ensure_absent(
        &[
            Output::public(cert_path.clone(), String::new()),
            Output::private(key_path.clone(), String::new()),
        ],
        a.common.force,
    )?;
    let spec = LeafSpec {
        role,
        common_name: a.cn.clone().unwrap_or_else(|| a.name.clone()),
        hosts,
        key_type: a.key.key_type,
        window: Window::resolve(now, a.key.validity, a.key.not_before, a.key.not_after)?,
    };
    let issued = issue::issue(&ca, &spec)?;
    files::write_all(
        &[
            Output::public(cert_path.clone(), issued.cert_pem),
            Output::private(key_path.clone(), issued.key_pem),
        ],
        a.common.force,
    )?;
    let info = &issued.info;
    println!(
        "wrote {} and {} (mode 0600): {} certificate \"{}\"",
        cert_path.display(),
        key_path.display(),
        role.name(),
        info.display_name()
    );
    println!("  EKU:    {}", info.eku_list());
    println!("  SANs:   {}", info.san_list());
    println!(
        "  valid:  {} to {}",
        times::rfc3339(info.not_before),
        times::rfc3339(info.not_after)
    );
    println!(
        "  issuer: {} ({})",
        ca.cert.display_name(),
        ca.cert_path.display()
    );
    for n in &issued.notes {
        println!("  note: {n}");
    }
    if role == Role::Client {
        println!(
            "use with: etcdctl --cacert {} --cert {} --key {} ...",
            show(&ca.cert_path),
            show(&cert_path),
            show(&key_path)
        );
    }
    Ok(0)
}

fn show(p: &Path) -> String {
    cluster::shell_quote(&p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
