//! The clap shapes `kvd pki` commands share or own: the file-writing and key/validity option
//! groups, and the arguments of `cluster`, `inspect` and `check`, with their value parsers.
//! The commands read these; [`super::cli`] parses them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use time::OffsetDateTime;

use super::certinfo::Role;
use super::files::Naming;
use super::keys::KeyType;
use super::times::{self, Validity};

/// `--validity` and `--ca-validity`.
pub(super) fn parse_validity(s: &str) -> Result<Validity, String> {
    Validity::parse(s)
}

/// `--not-before` and `--not-after`: RFC 3339.
pub(super) fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    times::parse_rfc3339(s)
}

/// `--timeout`: whole seconds, 1 to 600, with or without `s`.
pub(super) fn parse_timeout(s: &str) -> Result<Duration, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("x").is_err());
    }
}
