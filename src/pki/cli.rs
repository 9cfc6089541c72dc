//! The `kvd pki` command line (clap derive) and the small commands `init`, `server`, `peer`
//! and `client`; `cluster`, `inspect` and `check` live in their own modules.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;

use super::ca::{self, Ca};
use super::certinfo::Role;
use super::files::{self, Naming, Output};
use super::issue::{self, LeafSpec, Window};
use super::keys::KeyType;
use super::times::{self, Validity};
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

fn parse_validity(s: &str) -> Result<Validity, String> {
    Validity::parse(s)
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    times::parse_rfc3339(s)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let digits = s.strip_suffix('s').unwrap_or(s);
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && n <= 600 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{s:?} is not a timeout in seconds between 1 and 600, e.g. 5s"
        )),
    }
}

/// Options shared by the commands that write files.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Directory to write to (and to read the CA from).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// File naming: cfssl (ca.pem, ca-key.pem, NAME.pem, NAME-key.pem) or etcd (ca.crt,
    /// ca.key, NAME.crt, NAME.key). Default: that of the CA already in --dir, else cfssl.
    #[arg(long, value_enum)]
    pub naming: Option<Naming>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// Key and validity options of issued certificates.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Key type of the new key.
    #[arg(long, value_enum, default_value = "ecdsa-p256")]
    pub key_type: KeyType,
    /// Validity from now: days (365 or 365d), weeks (52w), years (1y) or hours (8760h).
    #[arg(long, default_value = "1y", value_parser = parse_validity)]
    pub validity: Validity,
    /// Start of validity, RFC 3339 (default: 5 minutes ago, for clock skew).
    #[arg(long, value_parser = parse_time)]
    pub not_before: Option<OffsetDateTime>,
    /// End of validity, RFC 3339; overrides --validity (a date in the past makes an expired
    /// certificate, for tests).
    #[arg(long, value_parser = parse_time)]
    pub not_after: Option<OffsetDateTime>,
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

/// `kvd pki cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The members and their peer URLs: NAME=https://HOST:PORT,... (peer port default 2380).
    #[arg(long, value_delimiter = ',', required = true)]
    pub members: Vec<String>,
    /// Client URLs for members whose client port is not HOST:2379: NAME=https://HOST:PORT,...
    #[arg(long, value_delimiter = ',')]
    pub client_urls: Vec<String>,
    /// User name (CN) of the client certificate for etcdctl.
    #[arg(long, default_value = "root")]
    pub client_name: String,
    /// Also make member certificates valid for localhost and 127.0.0.1 (and listen there).
    #[arg(long)]
    pub with_localhost: bool,
    /// Validity of a new CA (an existing CA in --dir is reused).
    #[arg(long, default_value = "10y", value_parser = parse_validity)]
    pub ca_validity: Validity,
    /// Common name of a new CA.
    #[arg(long)]
    pub ca_cn: Option<String>,
    /// initial-cluster-token (default: a random kvd-cluster-XXXXXXXX).
    #[arg(long)]
    pub token: Option<String>,
    /// Directory where the members will read the certificate files, as written in the YAML
    /// (default: the absolute path of --dir).
    #[arg(long)]
    pub remote_dir: Option<PathBuf>,
    /// Data directory of each member; {name} is replaced by the member name (default:
    /// REMOTE_DIR/{name}.etcd). Without {name}, it is the parent of NAME.etcd.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Key and validity of the issued certificates.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `kvd pki inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Certificate and key files (PEM or DER); give the CA too to see the chain.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `kvd pki check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The trusted CA file (as etcdctl's --cacert or etcd's --trusted-ca-file).
    #[arg(long)]
    pub cacert: PathBuf,
    /// The certificate to check (as etcdctl's --cert).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Its private key (as etcdctl's --key).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// What the certificate is for: client (default, as with etcdctl), server or peer.
    #[arg(long, value_enum, default_value = "client")]
    pub role: Role,
    /// Hosts the certificate must be valid for (checked against its SANs), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Endpoints to connect to, comma-separated (https://HOST:PORT): a real TLS handshake
    /// with --cacert, --cert and --key, and the exact reason when it fails.
    #[arg(long, value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Timeout per endpoint, in seconds.
    #[arg(long, default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
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

    #[test]
    fn timeouts_parse() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("x").is_err());
    }
}
