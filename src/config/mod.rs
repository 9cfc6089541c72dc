//! kvd's configuration: what `kvd [flags]` means, read exactly as etcd 3.4 reads it.
//!
//! Owns the validated [`Config`] and [`load`], which turns argv and the environment into an
//! [`Invocation`]. Sources, as in etcd: either command-line flags plus `ETCD_*` variables
//! (a flag wins over its variable), or a YAML file given by `--config-file` /
//! `ETCD_CONFIG_FILE`, in which case every other flag and variable is ignored (kvd warns
//! about each one). Nothing past startup sees a raw value: [`Config`] holds real types.
//!
//! Module map:
//! - `flags.rs`: the table of every setting (flag name, `ETCD_*` name, YAML key, default,
//!   help, what kvd does with it) and the Go-style argv parser;
//! - `env.rs`: `ETCD_*` variables; `raw.rs`: the YAML file (the only user of serde_yaml);
//! - `settings.rs`: raw values and where they came from;
//! - `validate.rs`: raw values -> [`Config`], reporting every problem at once;
//! - `values.rs`, `urls.rs`, `security.rs`: value syntax, URLs, TLS names;
//! - `help.rs`: the `--help` text; `suggest.rs`: "did you mean"; `error.rs`: errors.
//!
//! This module must not import the server, TLS or storage layers: they read [`Config`].

mod env;
mod error;
mod flags;
mod help;
mod raw;
mod security;
mod settings;
mod suggest;
mod urls;
mod validate;
mod values;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, Problem, Warning, EXIT_INVALID, EXIT_USAGE};
pub use security::{TlsVersion, TransportSecurity};
pub use urls::{ListenUrl, Scheme};
/// Go's `time.ParseDuration`, for settings read outside this module (`--auth-token jwt,ttl=`).
pub(crate) use values::parse_duration;

use settings::{Entry, Mode, Origin, RawSettings, RawValue};

/// The default backend quota when `quota-backend-bytes` is 0: 2 GiB, as etcd.
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What the command line asks kvd to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Start a member with this configuration; print the warnings first.
    Run(Box<Config>, Vec<Warning>),
    /// `--version`: print the version and exit 0.
    Version,
    /// `-h`/`--help`: print this text (usage and every flag) to stdout and exit 0.
    Help(String),
}

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// Bootstrap a new cluster from `initial-cluster`.
    New,
    /// Join a cluster that already exists (the member was added with `member add`).
    Existing,
}

/// `--auto-compaction-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionMode {
    /// The retention is a duration.
    Periodic,
    /// The retention is a number of revisions.
    Revision,
}

/// Auto compaction, resolved from `auto-compaction-mode` and `auto-compaction-retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep this much history (`1h`, `30m`; a bare number means hours).
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(u64),
}

/// `--logger`: the log format etcd users ask for. kvd logs through `tracing` either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logger {
    /// etcd 3.4's default plain-text logger.
    Capnslog,
    /// Structured (JSON) logging.
    Zap,
}

/// `--log-format` (etcd 3.6): how `--logger zap` writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default).
    Json,
    /// zap's console encoding: tab-separated time, level, caller, message, then the fields
    /// as JSON.
    Console,
}

/// A member's validated configuration.
///
/// Paths are kept as given: relative ones are relative to the working directory, as in
/// etcd (not to the configuration file's directory).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file the configuration was read from, if any.
    pub config_file: Option<PathBuf>,

    // --- member
    /// `--name`: human-readable member name (default `default`).
    pub name: String,
    /// `--data-dir` (default `<name>.etcd`).
    pub data_dir: PathBuf,
    /// `--wal-dir`: a dedicated log directory.
    pub wal_dir: Option<PathBuf>,
    /// `--snapshot-count`: committed entries between snapshots (default 100000).
    pub snapshot_count: u64,
    /// `--heartbeat-interval` (default 100ms).
    pub heartbeat_interval: Duration,
    /// `--election-timeout` (default 1000ms; at least 5 heartbeats, at most 50s).
    pub election_timeout: Duration,
    /// `--initial-election-tick-advance` (default true).
    pub initial_election_tick_advance: bool,
    /// `--listen-peer-urls` (default `http://localhost:2380`).
    pub listen_peer_urls: Vec<ListenUrl>,
    /// `--listen-client-urls` (default `http://localhost:2379`).
    pub listen_client_urls: Vec<ListenUrl>,
    /// `--listen-metrics-urls`: extra URLs serving only /metrics and /health.
    pub listen_metrics_urls: Vec<ListenUrl>,
    /// `--listen-client-http-urls` (etcd 3.5): URLs serving the client HTTP endpoints (health,
    /// metrics, version, the JSON gateway); when set, the client URLs serve only gRPC.
    pub listen_client_http_urls: Vec<ListenUrl>,
    /// `--max-snapshots` (no effect in kvd).
    pub max_snapshots: u64,
    /// `--max-wals` (no effect in kvd).
    pub max_wals: u64,
    /// `--quota-backend-bytes`: 0 means [`DEFAULT_QUOTA_BACKEND_BYTES`], `u64::MAX` means no
    /// quota (etcd's negative values). Use [`Config::backend_quota`].
    pub quota_backend_bytes: u64,
    /// `--backend-cache-bytes` (kvd's own): the state backend's page cache.
    pub backend_cache_bytes: u64,
    /// `--backend-batch-interval` (no effect in kvd).
    pub backend_batch_interval: Duration,
    /// `--backend-batch-limit` (no effect in kvd).
    pub backend_batch_limit: u64,
    /// `--max-txn-ops` (default 128).
    pub max_txn_ops: u32,
    /// `--max-request-bytes` (default 1.5 MiB = 1572864).
    pub max_request_bytes: u64,
    /// `--max-concurrent-streams` per client connection (default `u32::MAX`).
    pub max_concurrent_streams: u32,
    /// `--grpc-keepalive-min-time` (default 5s).
    pub grpc_keepalive_min_time: Duration,
    /// `--grpc-keepalive-interval` (default 2h; zero disables).
    pub grpc_keepalive_interval: Duration,
    /// `--grpc-keepalive-timeout` (default 20s; zero disables).
    pub grpc_keepalive_timeout: Duration,

    // --- clustering
    /// `--advertise-client-urls`, sorted and without duplicates as etcd keeps them.
    pub advertise_client_urls: Vec<String>,
    /// `--initial-advertise-peer-urls`, sorted and without duplicates.
    pub initial_advertise_peer_urls: Vec<String>,
    /// `--initial-cluster` as (member name, peer URL) pairs in the order given; a name
    /// appears once per URL. Default: this member's name with each of its
    /// `initial-advertise-peer-urls`.
    pub initial_cluster: Vec<(String, String)>,
    /// `--initial-cluster-token` (default `etcd-cluster`).
    pub initial_cluster_token: String,
    /// `--initial-cluster-state` (default new).
    pub initial_cluster_state: ClusterState,
    /// `--strict-reconfig-check` (default true).
    pub strict_reconfig_check: bool,
    /// `--pre-vote` (default false).
    pub pre_vote: bool,
    /// `--auto-compaction-mode` (default periodic).
    pub auto_compaction_mode: CompactionMode,
    /// `--auto-compaction-retention` as given (default `0`).
    pub auto_compaction_retention: String,
    /// Auto compaction resolved from mode and retention; `None` when the retention is 0.
    pub auto_compaction: Option<AutoCompaction>,
    /// `--enable-v2` (kvd serves no v2 API).
    pub enable_v2: bool,

    // --- security
    /// Client port TLS (`--cert-file`, `--key-file`, `--client-cert-auth`,
    /// `--trusted-ca-file`, `--auto-tls`, `--client-crl-file`,
    /// `--client-cert-allowed-hostname`, ...).
    pub client_tls: TransportSecurity,
    /// Peer port TLS (`--peer-cert-file`, ..., `--peer-cert-allowed-cn`,
    /// `--peer-cert-allowed-hostname`).
    pub peer_tls: TransportSecurity,
    /// `--cipher-suites` for TLS 1.2 (and 1.3 names, if listed), canonical IANA names; empty
    /// means kvd's defaults. Names kvd does not implement were dropped with a warning.
    pub cipher_suites: Vec<String>,
    /// `--tls-min-version` (etcd 3.5); `None` means TLS 1.2.
    pub tls_min_version: Option<TlsVersion>,
    /// `--tls-max-version` (etcd 3.5); `None` means the highest (TLS 1.3).
    pub tls_max_version: Option<TlsVersion>,
    /// `--self-signed-cert-validity` in years for auto TLS certificates (default 1).
    pub self_signed_cert_validity: u32,
    /// `--experimental-peer-skip-client-san-verification` (also in
    /// `peer_tls.skip_client_san_verification`).
    pub experimental_peer_skip_client_san_verification: bool,
    /// `--cors` (no effect in kvd).
    pub cors: Vec<String>,
    /// `--host-whitelist` (no effect in kvd).
    pub host_whitelist: Vec<String>,

    // --- auth
    /// `--auth-token`: `simple` or `jwt,<options>` (default `simple`).
    pub auth_token: String,
    /// `--auth-token-ttl` in seconds (default 300).
    pub auth_token_ttl: u32,
    /// `--bcrypt-cost` (default 10, 4..=31).
    pub bcrypt_cost: u32,

    // --- monitoring and logging
    /// `--enable-grpc-gateway`: the JSON gateway on client URLs. True by default with flags,
    /// false by default with a configuration file, as in etcd.
    pub enable_grpc_gateway: bool,
    /// `--enable-pprof` (no effect in kvd).
    pub enable_pprof: bool,
    /// `--metrics`: `basic` or `extensive`.
    pub metrics: String,
    /// `--logger`.
    pub logger: Logger,
    /// `--log-level`: debug, info, warn, error, panic or fatal (`--debug` means debug).
    pub log_level: String,
    /// `--log-outputs`: `default`, `stderr`, `stdout`, `systemd/journal` or file paths.
    pub log_outputs: Vec<String>,
    /// `--log-format` (etcd 3.6): `json` or `console`.
    pub log_format: LogFormat,

    // --- experimental and unsafe
    /// `--experimental-initial-corrupt-check` (no effect in kvd).
    pub experimental_initial_corrupt_check: bool,
    /// `--experimental-corrupt-check-time` (no effect in kvd).
    pub experimental_corrupt_check_time: Duration,
    /// `--experimental-enable-lease-checkpoint`.
    pub experimental_enable_lease_checkpoint: bool,
    /// `--experimental-enable-lease-checkpoint-persist`.
    pub experimental_enable_lease_checkpoint_persist: bool,
    /// `--experimental-compaction-batch-limit` (0 means kvd's default).
    pub experimental_compaction_batch_limit: u64,
    /// `--experimental-watch-progress-notify-interval` (default 10m).
    pub experimental_watch_progress_notify_interval: Duration,
    /// `--experimental-warning-apply-duration` (default 100ms).
    pub experimental_warning_apply_duration: Duration,
    /// `--unsafe-no-fsync`.
    pub unsafe_no_fsync: bool,
    /// `--force-new-cluster`.
    pub force_new_cluster: bool,
}

impl Config {
    /// The backend size quota in bytes, or `None` when the quota is disabled.
    pub fn backend_quota(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            0 => Some(DEFAULT_QUOTA_BACKEND_BYTES),
            u64::MAX => None,
            n => Some(n),
        }
    }

    /// The raft election timeout in heartbeat ticks (at least 5).
    pub fn election_ticks(&self) -> u64 {
        let tick = self.heartbeat_interval.as_millis().max(1);
        u64::try_from(self.election_timeout.as_millis() / tick).unwrap_or(u64::MAX)
    }
}

/// Reads the command line (`args` without argv\[0\]) and the environment (`env`, e.g.
/// `std::env::vars().collect::<Vec<_>>()`) the way etcd 3.4 does.
///
/// # Errors
///
/// A [`ConfigError`] listing every problem found; its [`ConfigError::exit_code`] is 2 for
/// an unparsable command line (unknown flag, bad flag value), 1 otherwise.
pub fn load(args: &[OsString], env: &[(String, String)]) -> Result<Invocation, ConfigError> {
    let parsed = flags::parse_args(args);
    if parsed.help {
        if parsed.problems.is_empty() {
            return Ok(Invocation::Help(help::text()));
        }
        return Err(ConfigError::new(parsed.problems));
    }
    if !parsed.problems.is_empty() {
        return Err(ConfigError::new(parsed.problems));
    }
    if parsed
        .last("version")
        .is_some_and(|v| flags::parse_go_bool(v) == Some(true))
    {
        return Ok(Invocation::Version);
    }
    let mut warnings = parsed.warnings.clone();

    let config_file = parsed
        .last("config-file")
        .filter(|f| !f.is_empty())
        .or_else(|| env::config_file(env))
        .map(str::to_string);
    let settings = match &config_file {
        Some(file) => {
            if let (Some(flag), Some(var)) = (parsed.last("config-file"), env::config_file(env)) {
                if flag != var {
                    warnings.push(Warning::new(format!(
                        "environment variable {} is ignored: --config-file {flag} wins",
                        env::CONFIG_FILE_VAR
                    )));
                }
            }
            warnings.extend(ignored_flags(&parsed, file));
            warnings.extend(env::ignored_by_config_file(env, file));
            from_file(Path::new(file), &mut warnings)?
        }
        None => from_flags(&parsed, env, &mut warnings),
    };
    match validate::build(&settings) {
        Ok((config, more)) => {
            warnings.extend(more);
            Ok(Invocation::Run(Box::new(config), warnings))
        }
        Err(problems) => Err(ConfigError::new(problems)),
    }
}

/// The settings of a start from flags and `ETCD_*` variables.
fn from_flags(
    parsed: &flags::ParsedArgs,
    env: &[(String, String)],
    warnings: &mut Vec<Warning>,
) -> RawSettings {
    let mut settings = RawSettings::new(Mode::Flags);
    let read = env::read(env, |name| parsed.last(name).is_some());
    warnings.extend(read.warnings);
    for value in read.values {
        settings.set(
            value.spec.name,
            Entry {
                value: RawValue::Text(value.value),
                origin: Origin::Env(value.var),
            },
        );
    }
    for value in &parsed.values {
        if value.spec.name == "version" || value.spec.name == "config-file" {
            continue;
        }
        settings.set(
            value.spec.name,
            Entry {
                value: RawValue::Text(value.value.clone()),
                origin: Origin::Flag(format!("--{}", value.spec.name)),
            },
        );
    }
    settings
}

/// The settings of a start from a configuration file.
fn from_file(path: &Path, warnings: &mut Vec<Warning>) -> Result<RawSettings, ConfigError> {
    let file = raw::load_file(path).map_err(ConfigError::new)?;
    warnings.extend(file.warnings);
    let mut settings = RawSettings::new(Mode::File(path.to_path_buf()));
    for (spec, entry) in file.values {
        settings.set(spec.name, entry);
    }
    Ok(settings)
}

/// Warnings for the flags a configuration file makes etcd (and kvd) ignore.
fn ignored_flags(parsed: &flags::ParsedArgs, file: &str) -> Vec<Warning> {
    let mut seen: Vec<&str> = Vec::new();
    parsed
        .values
        .iter()
        .filter(|v| v.spec.name != "config-file" && v.spec.name != "version")
        .filter(|v| {
            let first = !seen.contains(&v.spec.name);
            seen.push(v.spec.name);
            first
        })
        .map(|v| {
            let hint = v
                .spec
                .yaml_path()
                .map(|key| format!("; set '{key}' in the file instead"))
                .unwrap_or_else(|| "; the configuration file has no key for it".to_string());
            Warning::new(format!(
                "flag --{} is ignored because the configuration file {file} is used{hint}",
                v.spec.name
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
