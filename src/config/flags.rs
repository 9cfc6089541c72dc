//! The table of every setting kvd knows (etcd 3.4's flags, a few from etcd 3.5, kvd's own
//! YAML keys) and the command-line parser.
//!
//! Owns [`SPECS`]: one row per setting with its flag name (also the `ETCD_*` variable name),
//! its YAML key, default, help text and whether kvd acts on it. Owns [`parse_args`], which
//! reads argv with Go's `flag` package rules, as etcd does: `-flag value`, `--flag value`,
//! `-flag=value`, `--flag=value`; booleans bare or `-flag=true|false`; `-h`/`-help` stop
//! parsing. Values are kept as text here; `validate.rs` checks them.

use std::ffi::OsString;

use super::error::{Problem, Warning};
use super::suggest;

/// How a setting's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `true`/`false`; on the command line a bare flag means true.
    Bool,
    /// A non-negative whole number.
    Uint,
    /// A whole number that may be negative.
    Int,
    /// Free text or a file path.
    Str,
    /// A Go duration (`5s`, `2h`, `100ms`); in YAML an integer of nanoseconds, as etcd.
    Duration,
    /// A comma-separated list (a YAML sequence is accepted too).
    List,
    /// A comma-separated list of URLs (a YAML sequence is accepted too).
    Urls,
}

/// What kvd does with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// kvd acts on it.
    Used,
    /// Accepted and checked for etcd compatibility but without effect in kvd; setting it
    /// to anything but its default gives a warning that says why.
    Inert(&'static str),
    /// A feature kvd does not have; setting it to anything but its default is an error.
    Unsupported(&'static str),
    /// Works, but has a newer replacement named in the warning it gives.
    Deprecated(&'static str),
    /// A flag etcd 3.4 still accepts and ignores with a warning (`-v`, `-snapshot`, ...).
    Legacy,
}

/// Which etcd version introduced a setting (for the help text and the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Since {
    /// In etcd 3.4.
    Etcd34,
    /// Added in etcd 3.5; kvd accepts it too.
    Etcd35,
    /// Added in etcd 3.6; kvd accepts it too.
    Etcd36,
    /// Removed in etcd 3.4 (used by older guides); kvd accepts it.
    Etcd33,
    /// kvd's own.
    Kvd,
}

/// Where a setting lives in the YAML configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Yaml {
    /// Nowhere: flag only.
    None,
    /// A top-level key.
    Top(&'static str),
    /// A key inside `client-transport-security`.
    Client(&'static str),
    /// A key inside `peer-transport-security`.
    Peer(&'static str),
}

/// The help-text group of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// Member identity, storage and limits.
    Member,
    /// Cluster membership and bootstrap.
    Clustering,
    /// TLS.
    Security,
    /// Authentication.
    Auth,
    /// Profiling and monitoring.
    Monitoring,
    /// Logging.
    Logging,
    /// etcd's v2 proxy.
    Proxy,
    /// etcd's experimental flags.
    Experimental,
    /// Unsafe flags.
    Unsafe,
    /// Not shown in the help.
    Hidden,
}

impl Section {
    /// The help-text order of sections and their titles.
    pub(crate) const ORDER: &'static [(Section, &'static str)] = &[
        (Section::Member, "Member"),
        (Section::Clustering, "Clustering"),
        (Section::Security, "Security"),
        (Section::Auth, "Auth"),
        (Section::Monitoring, "Profiling and Monitoring"),
        (Section::Logging, "Logging"),
        (Section::Proxy, "v2 Proxy (accepted for etcd compatibility)"),
        (Section::Experimental, "Experimental feature"),
        (Section::Unsafe, "Unsafe feature"),
    ];
}

/// One known setting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The flag name without dashes (`listen-client-urls`); also the setting's key in
    /// [`super::settings::RawSettings`]. Settings that are not flags have a descriptive name.
    pub(crate) name: &'static str,
    /// Whether `--name` and `ETCD_NAME` exist.
    pub(crate) flag: bool,
    /// How the value is written.
    pub(crate) kind: Kind,
    /// The default, as the help text shows it.
    pub(crate) default: &'static str,
    /// Help-text group.
    pub(crate) section: Section,
    /// One-line description.
    pub(crate) help: &'static str,
    /// What kvd does with it.
    pub(crate) status: Status,
    /// Where it comes from.
    pub(crate) since: Since,
    /// Its place in the YAML file.
    pub(crate) yaml: Yaml,
}

impl Spec {
    /// The `ETCD_*` variable that sets this flag.
    pub(crate) fn env_name(&self) -> String {
        format!("ETCD_{}", self.name.to_ascii_uppercase().replace('-', "_"))
    }

    /// The YAML key path (`client-transport-security.cert-file`), if the file can set it.
    pub(crate) fn yaml_path(&self) -> Option<String> {
        match self.yaml {
            Yaml::None => None,
            Yaml::Top(key) => Some(key.to_string()),
            Yaml::Client(key) => Some(format!("client-transport-security.{key}")),
            Yaml::Peer(key) => Some(format!("peer-transport-security.{key}")),
        }
    }

    const fn yaml(mut self, yaml: Yaml) -> Spec {
        self.yaml = yaml;
        self
    }

    const fn status(mut self, status: Status) -> Spec {
        self.status = status;
        self
    }

    const fn since(mut self, since: Since) -> Spec {
        self.since = since;
        self
    }

    const fn not_a_flag(mut self) -> Spec {
        self.flag = false;
        self
    }
}

/// A flag that is also a top-level YAML key of the same name.
const fn f(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    section: Section,
    help: &'static str,
) -> Spec {
    Spec {
        name,
        flag: true,
        kind,
        default,
        section,
        help,
        status: Status::Used,
        since: Since::Etcd34,
        yaml: Yaml::Top(name),
    }
}

/// An etcd flag that was already ignored by etcd 3.4.
const fn legacy(name: &'static str) -> Spec {
    f(name, Kind::Bool, "", Section::Hidden, "")
        .yaml(Yaml::None)
        .status(Status::Legacy)
}

use Kind::{Bool, Duration, Int, List, Str, Uint, Urls};
use Section::{
    Auth, Clustering, Experimental, Logging, Member, Monitoring, Proxy, Security, Unsafe,
};

const NO_V2: &str = "kvd serves only the v3 API";
const NO_BOLT: &str = "kvd does not store data in bbolt, WAL and snapshot files";
const NO_PROXY: &str = "kvd has no v2 proxy";

/// Every setting kvd knows, in help-text order. One row per setting, so not reformatted.
#[rustfmt::skip]
pub(crate) const SPECS: &[Spec] = &[
    f("config-file", Str, "", Section::Hidden, "Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.").yaml(Yaml::None),
    // Member
    f("name", Str, "default", Member, "Human-readable name for this member."),
    f("data-dir", Str, "${name}.etcd", Member, "Path to the data directory."),
    f("wal-dir", Str, "", Member, "Path to the dedicated wal directory."),
    f("snapshot-count", Uint, "100000", Member, "Number of committed transactions to trigger a snapshot to disk."),
    f("heartbeat-interval", Uint, "100", Member, "Time (in milliseconds) of a heartbeat interval."),
    f("election-timeout", Uint, "1000", Member, "Time (in milliseconds) for an election to timeout. It must be at least 5 times --heartbeat-interval and at most 50000."),
    f("initial-election-tick-advance", Bool, "true", Member, "Whether to fast-forward initial election ticks on boot for faster election."),
    f("listen-peer-urls", Urls, "http://localhost:2380", Member, "List of URLs to listen on for peer traffic."),
    f("listen-client-urls", Urls, "http://localhost:2379", Member, "List of URLs to listen on for client traffic."),
    f("listen-client-http-urls", Urls, "", Member, "List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.").since(Since::Etcd35),
    f("max-snapshots", Uint, "5", Member, "Maximum number of snapshot files to retain (0 is unlimited).").status(Status::Inert(NO_BOLT)),
    f("max-wals", Uint, "5", Member, "Maximum number of wal files to retain (0 is unlimited).").status(Status::Inert(NO_BOLT)),
    f("quota-backend-bytes", Int, "0", Member, "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB)."),
    f("backend-batch-interval", Duration, "0s", Member, "The maximum time before committing the backend transaction.").status(Status::Inert(NO_BOLT)),
    f("backend-batch-limit", Int, "0", Member, "The maximum operations before committing the backend transaction.").status(Status::Inert(NO_BOLT)),
    f("backend-cache-bytes", Uint, "67108864", Member, "Memory for the state backend's page cache, in bytes (kvd's own; etcd leaves its database to the OS page cache).").since(Since::Kvd),
    f("max-txn-ops", Uint, "128", Member, "Maximum number of operations permitted in a transaction."),
    f("max-request-bytes", Uint, "1572864", Member, "Maximum client request size in bytes the server will accept."),
    f("max-concurrent-streams", Uint, "4294967295", Member, "Maximum concurrent streams that each client can open at a time."),
    f("grpc-keepalive-min-time", Duration, "5s", Member, "Minimum duration interval that a client should wait before pinging server."),
    f("grpc-keepalive-interval", Duration, "2h", Member, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable)."),
    f("grpc-keepalive-timeout", Duration, "20s", Member, "Additional duration of wait before closing a non-responsive connection (0 to disable)."),
    // Clustering
    f("initial-advertise-peer-urls", Urls, "http://localhost:2380", Clustering, "List of this member's peer URLs to advertise to the rest of the cluster."),
    f("initial-cluster", Str, "default=http://localhost:2380", Clustering, "Initial cluster configuration for bootstrapping: name=peer-url pairs, comma separated (default: this member's name with its --initial-advertise-peer-urls)."),
    f("initial-cluster-state", Str, "new", Clustering, "Initial cluster state ('new' or 'existing')."),
    f("initial-cluster-token", Str, "etcd-cluster", Clustering, "Initial cluster token for the cluster during bootstrap."),
    f("advertise-client-urls", Urls, "http://localhost:2379", Clustering, "List of this member's client URLs to advertise to the public. Required when --listen-client-urls is set."),
    f("discovery", Str, "", Clustering, "Discovery URL used to bootstrap the cluster.").status(Status::Unsupported("kvd bootstraps only from --initial-cluster")),
    f("discovery-fallback", Str, "proxy", Clustering, "Expected behavior ('exit' or 'proxy') when discovery services fails.").status(Status::Inert("kvd has no discovery")),
    f("discovery-proxy", Str, "", Clustering, "HTTP proxy to use for traffic to discovery service.").status(Status::Inert("kvd has no discovery")),
    f("discovery-srv", Str, "", Clustering, "DNS srv domain used to bootstrap the cluster.").status(Status::Unsupported("kvd bootstraps only from --initial-cluster")),
    f("discovery-srv-name", Str, "", Clustering, "Suffix to the dns srv name queried when bootstrapping.").status(Status::Unsupported("kvd bootstraps only from --initial-cluster")),
    f("strict-reconfig-check", Bool, "true", Clustering, "Reject reconfiguration requests that would cause quorum loss."),
    f("pre-vote", Bool, "false", Clustering, "Enable to run an additional Raft election phase."),
    f("auto-compaction-retention", Str, "0", Clustering, "Auto compaction retention length. 0 means disable auto compaction."),
    f("auto-compaction-mode", Str, "periodic", Clustering, "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention."),
    f("enable-v2", Bool, "false", Clustering, "Accept etcd V2 client requests.").status(Status::Inert(NO_V2)),
    // Security
    f("cert-file", Str, "", Security, "Path to the client server TLS cert file.").yaml(Yaml::Client("cert-file")),
    f("key-file", Str, "", Security, "Path to the client server TLS key file.").yaml(Yaml::Client("key-file")),
    f("client-cert-auth", Bool, "false", Security, "Enable client cert authentication.").yaml(Yaml::Client("client-cert-auth")),
    f("client-crl-file", Str, "", Security, "Path to the client certificate revocation list file.").yaml(Yaml::Client("crl-file")),
    f("client-cert-allowed-hostname", List, "", Security, "Allowed TLS hostname for client cert authentication.").yaml(Yaml::Client("allowed-hostname")),
    f("client-cert-allowed-cn", Str, "", Security, "Allowed CN for client certs connecting to the client endpoint.").yaml(Yaml::Client("allowed-cn")).not_a_flag().since(Since::Kvd),
    f("trusted-ca-file", Str, "", Security, "Path to the client server TLS trusted CA cert file. Setting it also requires client certificates.").yaml(Yaml::Client("trusted-ca-file")),
    f("auto-tls", Bool, "false", Security, "Client TLS using generated certificates.").yaml(Yaml::Client("auto-tls")),
    f("client-cert-file", Str, "", Security, "Path to the client certificate kvd presents when it dials its own client URLs (defaults to --cert-file).").yaml(Yaml::Client("client-cert-file")).since(Since::Etcd35),
    f("client-key-file", Str, "", Security, "Path to the key of --client-cert-file.").yaml(Yaml::Client("client-key-file")).since(Since::Etcd35),
    f("peer-cert-file", Str, "", Security, "Path to the peer server TLS cert file.").yaml(Yaml::Peer("cert-file")),
    f("peer-key-file", Str, "", Security, "Path to the peer server TLS key file.").yaml(Yaml::Peer("key-file")),
    f("peer-client-cert-auth", Bool, "false", Security, "Enable peer client cert authentication.").yaml(Yaml::Peer("client-cert-auth")),
    f("peer-trusted-ca-file", Str, "", Security, "Path to the peer server TLS trusted CA file.").yaml(Yaml::Peer("trusted-ca-file")),
    f("peer-cert-allowed-cn", Str, "", Security, "Required CN for client certs connecting to the peer endpoint.").yaml(Yaml::Peer("allowed-cn")),
    f("peer-cert-allowed-hostname", List, "", Security, "Allowed TLS hostname for inter peer authentication.").yaml(Yaml::Peer("allowed-hostname")),
    f("peer-auto-tls", Bool, "false", Security, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.").yaml(Yaml::Peer("auto-tls")),
    f("peer-crl-file", Str, "", Security, "Path to the peer certificate revocation list file.").yaml(Yaml::Peer("crl-file")),
    f("peer-client-cert-file", Str, "", Security, "Path to the client certificate kvd presents when it dials other members (defaults to --peer-cert-file).").yaml(Yaml::Peer("client-cert-file")).since(Since::Etcd35),
    f("peer-client-key-file", Str, "", Security, "Path to the key of --peer-client-cert-file.").yaml(Yaml::Peer("client-key-file")).since(Since::Etcd35),
    f("cipher-suites", List, "", Security, "Comma-separated list of supported TLS cipher suites between client/server and peers (empty means kvd's defaults)."),
    f("tls-min-version", Str, "TLS1.2", Security, "Minimum TLS version supported by kvd: TLS1.2 or TLS1.3.").since(Since::Etcd35),
    f("tls-max-version", Str, "", Security, "Maximum TLS version supported by kvd: TLS1.2 or TLS1.3 (empty means the highest).").since(Since::Etcd35),
    f("self-signed-cert-validity", Uint, "1", Security, "The validity period, in years, of the certificates made by --auto-tls and --peer-auto-tls.").since(Since::Etcd35),
    f("cors", List, "*", Security, "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).").status(Status::Inert("kvd's HTTP gateway sends no CORS headers")),
    f("host-whitelist", List, "*", Security, "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).").status(Status::Inert("kvd does not filter HTTP Host headers")),
    f("ca-file", Str, "", Security, "Removed in etcd 3.4: the same as --trusted-ca-file FILE --client-cert-auth.").yaml(Yaml::Client("ca-file")).status(Status::Deprecated("--trusted-ca-file and --client-cert-auth")).since(Since::Etcd33),
    f("peer-ca-file", Str, "", Security, "Removed in etcd 3.4: the same as --peer-trusted-ca-file FILE --peer-client-cert-auth.").yaml(Yaml::Peer("ca-file")).status(Status::Deprecated("--peer-trusted-ca-file and --peer-client-cert-auth")).since(Since::Etcd33),
    // Auth
    f("auth-token", Str, "simple", Auth, "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
    f("bcrypt-cost", Uint, "10", Auth, "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31."),
    f("auth-token-ttl", Uint, "300", Auth, "Time (in seconds) of the auth-token-ttl."),
    // Profiling and monitoring
    f("enable-pprof", Bool, "false", Monitoring, "Enable runtime profiling data via HTTP server.").status(Status::Inert("kvd is not a Go program and has no pprof endpoints")),
    f("metrics", Str, "basic", Monitoring, "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics."),
    f("listen-metrics-urls", Urls, "", Monitoring, "List of URLs to listen on for the metrics and health endpoints."),
    f("enable-grpc-gateway", Bool, "true", Monitoring, "Enable the JSON gateway (/v3/...) on the client URLs (default true with flags, false with a configuration file)."),
    // Logging
    f("logger", Str, "capnslog", Logging, "Specify 'zap' for structured logging or 'capnslog'."),
    f("log-outputs", List, "default", Logging, "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."),
    f("log-level", Str, "info", Logging, "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
    f("log-format", Str, "json", Logging, "Configures the log format of --logger zap. Only supports json, console.").since(Since::Etcd36),
    f("log-output", List, "default", Logging, "Deprecated: use --log-outputs.").status(Status::Deprecated("--log-outputs")),
    f("debug", Bool, "false", Logging, "Deprecated: enable debug-level logging; use --log-level=debug.").status(Status::Deprecated("--log-level=debug")),
    f("log-package-levels", Str, "", Logging, "Deprecated: per-package log levels (capnslog only).").status(Status::Inert("kvd has no per-package log levels; use --log-level")),
    // v2 proxy
    f("proxy", Str, "off", Proxy, "Proxy mode setting ('off', 'readonly' or 'on').").status(Status::Unsupported(NO_PROXY)),
    f("proxy-failure-wait", Uint, "5000", Proxy, "Time (in milliseconds) an endpoint will be held in a failed state.").status(Status::Inert(NO_PROXY)),
    f("proxy-refresh-interval", Uint, "30000", Proxy, "Time (in milliseconds) of the endpoints refresh interval.").status(Status::Inert(NO_PROXY)),
    f("proxy-dial-timeout", Uint, "1000", Proxy, "Time (in milliseconds) for a dial to timeout.").status(Status::Inert(NO_PROXY)),
    f("proxy-write-timeout", Uint, "5000", Proxy, "Time (in milliseconds) for a write to timeout.").status(Status::Inert(NO_PROXY)),
    f("proxy-read-timeout", Uint, "0", Proxy, "Time (in milliseconds) for a read to timeout.").status(Status::Inert(NO_PROXY)),
    // Experimental
    f("experimental-initial-corrupt-check", Bool, "false", Experimental, "Enable to check data corruption before serving any client/peer traffic.").status(Status::Inert("kvd has no corruption check yet")),
    f("experimental-corrupt-check-time", Duration, "0s", Experimental, "Duration of time between cluster corruption check passes.").status(Status::Inert("kvd has no corruption check yet")),
    f("experimental-enable-v2v3", Str, "", Experimental, "Serve v2 requests through the v3 backend under a given prefix.").status(Status::Inert(NO_V2)),
    f("experimental-backend-bbolt-freelist-type", Str, "array", Experimental, "The type of freelist that boltdb backend uses (array and map are supported types).").status(Status::Inert(NO_BOLT)),
    f("experimental-enable-lease-checkpoint", Bool, "false", Experimental, "Enable the leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change."),
    f("experimental-enable-lease-checkpoint-persist", Bool, "false", Experimental, "Enable persisting remaining TTL to prevent indefinite auto-renewal of long lived leases. Requires --experimental-enable-lease-checkpoint."),
    f("experimental-compaction-batch-limit", Int, "0", Experimental, "Sets the maximum revisions deleted in each compaction batch (0 means kvd's default)."),
    f("experimental-peer-skip-client-san-verification", Bool, "false", Experimental, "Skip verification of SAN field in client certificate for peer connections."),
    f("experimental-watch-progress-notify-interval", Duration, "10m", Experimental, "Duration of periodical watch progress notification."),
    f("experimental-warning-apply-duration", Duration, "100ms", Experimental, "Warning is generated if requests take more than this duration."),
    // Unsafe
    f("unsafe-no-fsync", Bool, "false", Unsafe, "Disables fsync, unsafe, will cause data loss."),
    f("force-new-cluster", Bool, "false", Unsafe, "Force to create a new one-member cluster."),
    // Not settings: handled by the parser.
    f("version", Bool, "false", Section::Hidden, "Print the version and exit.").yaml(Yaml::None),
    legacy("cluster-active-size"),
    legacy("cluster-remove-delay"),
    legacy("cluster-sync-interval"),
    legacy("config"),
    legacy("force"),
    legacy("max-result-buffer"),
    legacy("max-retry-attempts"),
    legacy("peer-heartbeat-interval"),
    legacy("peer-election-timeout"),
    legacy("retry-interval"),
    legacy("snapshot"),
    legacy("v"),
    legacy("vv"),
];

/// The row of the flag `--name` (settings that are not flags are not found).
pub(crate) fn flag_spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.flag && s.name == name)
}

/// The row of the setting `name`, flag or not.
pub(crate) fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Flag names worth suggesting for a typo (not the legacy ones etcd ignores).
pub(crate) fn suggestable_flags() -> impl Iterator<Item = &'static str> {
    SPECS
        .iter()
        .filter(|s| s.flag && s.status != Status::Legacy)
        .map(|s| s.name)
}

/// A flag value found on the command line.
#[derive(Debug, Clone)]
pub(crate) struct FlagValue {
    /// The flag's row.
    pub(crate) spec: &'static Spec,
    /// The value as text (`"true"` for a bare boolean flag).
    pub(crate) value: String,
}

/// What the command line says.
#[derive(Debug, Default)]
pub(crate) struct ParsedArgs {
    /// Flag values in command-line order (a later value of the same flag wins).
    pub(crate) values: Vec<FlagValue>,
    /// `-h`, `-help` or `--help` was given (parsing stopped there, as in Go).
    pub(crate) help: bool,
    /// Syntax problems and unknown flags.
    pub(crate) problems: Vec<Problem>,
    /// Notes about flags etcd 3.4 ignores.
    pub(crate) warnings: Vec<Warning>,
}

impl ParsedArgs {
    /// The last value given for flag `name`.
    pub(crate) fn last(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|v| v.spec.name == name)
            .map(|v| v.value.as_str())
    }
}

/// Parses Go's boolean spellings (`strconv.ParseBool`).
pub(crate) fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Reads argv (without argv\[0\]) with the rules of Go's `flag` package.
///
/// Unlike Go, it does not stop at the first problem: it goes on so that every problem can be
/// reported at once. After an unknown flag without `=value` it skips the next argument when
/// that does not look like a flag, taking it for the unknown flag's value.
pub(crate) fn parse_args(args: &[OsString]) -> ParsedArgs {
    let mut out = ParsedArgs::default();
    let mut i = 0;
    // The previous argument was a boolean flag without `=`: a following "true"/"false"
    // is a common mistake worth explaining.
    let mut bare_bool: Option<&'static str> = None;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            out.problems.push(Problem::usage(format!(
                "argument {:?} is not valid UTF-8",
                args[i].to_string_lossy()
            )));
            i += 1;
            continue;
        };
        i += 1;
        let previous_bare_bool = bare_bool.take();
        if arg == "--" {
            for rest in &args[i..] {
                out.problems
                    .push(positional(&rest.to_string_lossy(), None, i == 1));
            }
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            out.problems
                .push(positional(arg, previous_bare_bool, i == 1));
            continue;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            out.problems
                .push(Problem::usage(format!("bad flag syntax: {arg}")));
            continue;
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            out.help = true;
            break;
        }
        let Some(spec) = flag_spec(name) else {
            out.problems.push(unknown_flag(name));
            if inline.is_none()
                && args
                    .get(i)
                    .and_then(|a| a.to_str())
                    .is_some_and(|a| !a.starts_with('-'))
            {
                i += 1;
            }
            continue;
        };
        match spec.kind {
            _ if spec.status == Status::Legacy => {
                out.warnings.push(Warning::new(format!(
                    "flag \"-{name}\" is no longer supported - ignoring."
                )));
            }
            Kind::Bool => {
                let value = inline.unwrap_or("true");
                if parse_go_bool(value).is_none() {
                    out.problems.push(Problem::usage(format!(
                        "invalid boolean value {value:?} for -{name}: parse error (use -{name}, -{name}=true or -{name}=false)"
                    )));
                    continue;
                }
                if inline.is_none() {
                    bare_bool = Some(spec.name);
                }
                out.values.push(FlagValue {
                    spec,
                    value: value.to_string(),
                });
            }
            _ => {
                let value = match inline {
                    Some(v) => v.to_string(),
                    None => match args.get(i) {
                        Some(next) => {
                            i += 1;
                            next.to_string_lossy().into_owned()
                        }
                        None => {
                            out.problems
                                .push(Problem::usage(format!("flag needs an argument: -{name}")));
                            continue;
                        }
                    },
                };
                out.values.push(FlagValue { spec, value });
            }
        }
    }
    out
}

/// The problem for a flag nobody defined, with etcd's text and a suggestion.
fn unknown_flag(name: &str) -> Problem {
    let mut message = format!("flag provided but not defined: -{name}");
    if let Some(near) = suggest::nearest(name, suggestable_flags()) {
        message.push_str(&format!(" (did you mean --{near}?)"));
    }
    Problem::usage(message)
}

/// The problem for an argument that is not a flag (etcd: "'x' is not a valid flag").
fn positional(arg: &str, after_bool: Option<&str>, first: bool) -> Problem {
    let mut message = format!("'{arg}' is not a valid flag");
    if let (Some(flag), Some(_)) = (after_bool, parse_go_bool(arg)) {
        message.push_str(&format!(
            " (boolean flags take their value after '=': --{flag}={arg})"
        ));
    } else if first && (arg == "gateway" || arg == "grpc-proxy") {
        message.push_str(&format!(" (kvd does not implement etcd's '{arg}' command)"));
    }
    Problem::invalid(message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn values(parsed: &ParsedArgs) -> Vec<(&str, &str)> {
        parsed
            .values
            .iter()
            .map(|v| (v.spec.name, v.value.as_str()))
            .collect()
    }

    #[test]
    fn table_has_unique_names_env_names_and_yaml_keys() {
        let mut names = HashSet::new();
        let mut yaml = HashSet::new();
        for spec in SPECS {
            assert!(names.insert(spec.name), "duplicate {}", spec.name);
            if let Some(path) = spec.yaml_path() {
                assert!(yaml.insert(path.clone()), "duplicate yaml key {path}");
            }
            if spec.status == Status::Legacy {
                assert_eq!(spec.kind, Kind::Bool);
            }
        }
        assert_eq!(flag_spec("data-dir").unwrap().env_name(), "ETCD_DATA_DIR");
        assert_eq!(
            flag_spec("peer-trusted-ca-file").unwrap().env_name(),
            "ETCD_PEER_TRUSTED_CA_FILE"
        );
        assert!(flag_spec("client-cert-allowed-cn").is_none());
        assert!(spec("client-cert-allowed-cn").is_some());
    }

    #[test]
    fn accepts_every_go_flag_form() {
        for form in [
            &["--name", "x"][..],
            &["--name=x"][..],
            &["-name", "x"][..],
            &["-name=x"][..],
        ] {
            let parsed = parse_args(&args(form));
            assert!(parsed.problems.is_empty(), "{form:?}");
            assert_eq!(values(&parsed), vec![("name", "x")], "{form:?}");
        }
    }

    #[test]
    fn booleans_are_bare_or_take_an_equals_value() {
        let parsed = parse_args(&args(&[
            "-client-cert-auth",
            "--auto-tls=false",
            "-peer-auto-tls=1",
            "--pre-vote",
            "-enable-v2=F",
        ]));
        assert!(parsed.problems.is_empty());
        assert_eq!(
            values(&parsed),
            vec![
                ("client-cert-auth", "true"),
                ("auto-tls", "false"),
                ("peer-auto-tls", "1"),
                ("pre-vote", "true"),
                ("enable-v2", "F"),
            ]
        );
    }

    #[test]
    fn a_bool_flag_does_not_take_the_next_argument() {
        let parsed = parse_args(&args(&["--client-cert-auth", "true", "--name", "a"]));
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(
            parsed.problems[0].message(),
            "'true' is not a valid flag (boolean flags take their value after '=': --client-cert-auth=true)"
        );
        assert!(!parsed.problems[0].is_usage());
        assert_eq!(
            values(&parsed),
            vec![("client-cert-auth", "true"), ("name", "a")]
        );
    }

    #[test]
    fn bad_boolean_value_is_a_usage_error() {
        let parsed = parse_args(&args(&["--client-cert-auth=maybe"]));
        assert_eq!(
            parsed.problems[0].message(),
            "invalid boolean value \"maybe\" for -client-cert-auth: parse error (use -client-cert-auth, -client-cert-auth=true or -client-cert-auth=false)"
        );
        assert!(parsed.problems[0].is_usage());
    }

    #[test]
    fn a_value_may_start_with_a_dash() {
        let parsed = parse_args(&args(&["--name", "-x", "--initial-cluster-token=a=b"]));
        assert!(parsed.problems.is_empty());
        assert_eq!(
            values(&parsed),
            vec![("name", "-x"), ("initial-cluster-token", "a=b")]
        );
    }

    #[test]
    fn unknown_flags_are_reported_with_etcds_text_and_a_suggestion() {
        let parsed = parse_args(&args(&[
            "--ca-fil",
            "ca.crt",
            "-advertise-client-url=x",
            "--name",
            "n",
        ]));
        let messages: Vec<&str> = parsed.problems.iter().map(Problem::message).collect();
        assert_eq!(
            messages,
            vec![
                "flag provided but not defined: -ca-fil (did you mean --ca-file?)",
                "flag provided but not defined: -advertise-client-url (did you mean --advertise-client-urls?)",
            ]
        );
        assert!(parsed.problems.iter().all(Problem::is_usage));
        // The value after the unknown flag was skipped, and parsing went on.
        assert_eq!(values(&parsed), vec![("name", "n")]);
        let parsed = parse_args(&args(&["--zzzzzzzz"]));
        assert_eq!(
            parsed.problems[0].message(),
            "flag provided but not defined: -zzzzzzzz"
        );
    }

    #[test]
    fn syntax_errors_match_go() {
        let parsed = parse_args(&args(&["---name", "x", "--name"]));
        let messages: Vec<&str> = parsed.problems.iter().map(Problem::message).collect();
        assert_eq!(
            messages,
            vec![
                "bad flag syntax: ---name",
                "'x' is not a valid flag",
                "flag needs an argument: -name",
            ]
        );
        assert!(parse_args(&args(&["-=x"])).problems[0].message() == "bad flag syntax: -=x");
    }

    #[test]
    fn positional_arguments_and_double_dash() {
        let parsed = parse_args(&args(&["gateway", "start"]));
        assert_eq!(
            parsed.problems[0].message(),
            "'gateway' is not a valid flag (kvd does not implement etcd's 'gateway' command)"
        );
        let parsed = parse_args(&args(&["--name", "a", "--", "b"]));
        assert_eq!(parsed.problems[0].message(), "'b' is not a valid flag");
        assert!(parse_args(&args(&["--name", "a", "--"]))
            .problems
            .is_empty());
    }

    #[test]
    fn help_stops_parsing() {
        for h in ["-h", "--help", "-help", "-h=false"] {
            let parsed = parse_args(&args(&[h, "--bogus"]));
            assert!(parsed.help, "{h}");
            assert!(parsed.problems.is_empty(), "{h}");
        }
        let parsed = parse_args(&args(&["--bogus", "-h"]));
        assert!(parsed.help);
        assert_eq!(parsed.problems.len(), 1);
    }

    #[test]
    fn legacy_flags_are_ignored_with_etcds_warning() {
        let parsed = parse_args(&args(&["-v", "--name", "a"]));
        assert!(parsed.problems.is_empty());
        assert_eq!(
            parsed.warnings[0].message(),
            "flag \"-v\" is no longer supported - ignoring."
        );
        assert_eq!(values(&parsed), vec![("name", "a")]);
    }

    #[test]
    fn last_value_wins() {
        let parsed = parse_args(&args(&["--name", "a", "-name=b"]));
        assert_eq!(parsed.last("name"), Some("b"));
        assert_eq!(parsed.last("data-dir"), None);
    }

    #[test]
    fn non_utf8_arguments_are_reported() {
        use std::os::unix::ffi::OsStringExt;
        let parsed = parse_args(&[OsString::from_vec(vec![b'-', 0xff])]);
        assert!(parsed.problems[0].message().contains("not valid UTF-8"));
    }
}
