//! Turns raw settings into a [`Config`], checking everything and reporting every problem.
//!
//! Owns the defaults (etcd 3.4's), the meaning of each value and the cross-setting rules:
//! election timeout versus heartbeat, advertise URLs required with explicit listen URLs,
//! this member in `initial-cluster`, TLS files for TLS URLs, cipher suites versus TLS
//! versions, and the warnings for deprecated, ignored or ineffective settings. Each message
//! names the flag, variable or file key the value came from.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{Problem, Warning};
use super::flags::{self, Status};
use super::security::{self, Cipher, TlsVersion, TransportSecurity};
use super::settings::{Entry, Mode, Origin, RawSettings, RawValue};
use super::suggest;
use super::urls::{self, ListenUrl, UrlError};
use super::values::{self, ValueError};
use super::{AutoCompaction, ClusterState, CompactionMode, Config, LogFormat, Logger};

/// etcd's largest election timeout, in milliseconds.
const MAX_ELECTION_MS: u64 = 50_000;
/// bcrypt's cost limits.
const BCRYPT_COSTS: std::ops::RangeInclusive<u64> = 4..=31;
/// The log levels etcd knows.
const LOG_LEVELS: &[&str] = &["debug", "info", "warn", "error", "panic", "fatal"];
/// The advertised URLs etcd uses when none are set.
const DEFAULT_CLIENT_URL: &str = "http://localhost:2379";
/// The peer URL etcd uses when none is set.
const DEFAULT_PEER_URL: &str = "http://localhost:2380";

/// Builds the configuration from `settings`, or returns every problem found.
pub(crate) fn build(settings: &RawSettings) -> Result<(Config, Vec<Warning>), Vec<Problem>> {
    let mut r = Resolver::new(settings);
    let config = r.config();
    r.statuses();
    if r.problems.is_empty() {
        Ok((config, r.warnings))
    } else {
        Err(r.problems)
    }
}

/// The state of one validation: the settings, and what was found wrong so far.
struct Resolver<'a> {
    settings: &'a RawSettings,
    /// `"c.yaml: "` when reading a file, so every message names it.
    prefix: String,
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
}

impl<'a> Resolver<'a> {
    fn new(settings: &'a RawSettings) -> Self {
        let prefix = match settings.mode() {
            Mode::Flags => String::new(),
            Mode::File(path) => format!("{}: ", path.display()),
        };
        Resolver {
            settings,
            prefix,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn file_mode(&self) -> bool {
        matches!(self.settings.mode(), Mode::File(_))
    }

    /// How messages name a setting: where its value came from, or else what the user
    /// would set (`--name` with flags, the YAML key with a file).
    fn label(&self, name: &str) -> String {
        if let Some(entry) = self.settings.get(name) {
            return entry.origin.label().to_string();
        }
        match self.settings.mode() {
            Mode::Flags => format!("--{name}"),
            Mode::File(_) => flags::spec(name)
                .and_then(flags::Spec::yaml_path)
                .unwrap_or_else(|| format!("--{name}")),
        }
    }

    fn invalid(&mut self, message: impl AsRef<str>) {
        let message = format!("{}{}", self.prefix, message.as_ref());
        self.problems.push(Problem::invalid(message));
    }

    fn warn(&mut self, message: impl AsRef<str>) {
        let message = format!("{}{}", self.prefix, message.as_ref());
        self.warnings.push(Warning::new(message));
    }

    /// Reports a value that does not parse, in etcd's words for its origin. A bad flag value
    /// is a usage problem (exit 2), as in Go's flag package.
    fn bad_value(&mut self, entry: &Entry, reason: impl std::fmt::Display) {
        let value = entry.value.display();
        match &entry.origin {
            Origin::Flag(label) => {
                let name = label.trim_start_matches('-');
                self.problems.push(Problem::usage(format!(
                    "invalid value {value:?} for flag -{name}: {reason}"
                )));
            }
            Origin::Env(var) => {
                self.invalid(format!("invalid value {value:?} for {var}: {reason}"))
            }
            Origin::File(key) => {
                self.invalid(format!("invalid value {value:?} for '{key}': {reason}"))
            }
        }
    }

    // ----- typed getters: the default when unset (or when the value is bad, after
    // reporting it).

    fn entry(&self, name: &str) -> Option<&'a Entry> {
        self.settings.get(name)
    }

    fn string(&mut self, name: &str, default: &str) -> String {
        self.opt_string(name).unwrap_or_else(|| default.to_string())
    }

    /// Text, or `None` when unset or empty.
    fn opt_string(&mut self, name: &str) -> Option<String> {
        let entry = self.entry(name)?;
        let text = match &entry.value {
            RawValue::Text(s) | RawValue::Number(s) => s.clone(),
            RawValue::Bool(b) => b.to_string(),
            RawValue::List(items) if items.len() == 1 => items[0].clone(),
            RawValue::List(_) => {
                self.bad_value(entry, "expected a single value, found a list");
                return None;
            }
        };
        (!text.is_empty()).then_some(text)
    }

    fn path(&mut self, name: &str) -> Option<PathBuf> {
        self.opt_string(name).map(PathBuf::from)
    }

    fn bool(&mut self, name: &str, default: bool) -> bool {
        let Some(entry) = self.entry(name) else {
            return default;
        };
        let parsed = match &entry.value {
            RawValue::Bool(b) => Some(*b),
            RawValue::Text(s) | RawValue::Number(s) => flags::parse_go_bool(s),
            RawValue::List(_) => None,
        };
        parsed.unwrap_or_else(|| {
            self.bad_value(entry, "expected true or false");
            default
        })
    }

    fn uint(&mut self, name: &str, default: u64) -> u64 {
        let Some(entry) = self.entry(name) else {
            return default;
        };
        match &entry.value {
            RawValue::Text(s) | RawValue::Number(s) => match values::parse_uint(s) {
                Ok(n) => n,
                Err(e) => {
                    self.bad_value(entry, format!("{e} (expected a whole number >= 0)"));
                    default
                }
            },
            _ => {
                self.bad_value(entry, "expected a whole number >= 0");
                default
            }
        }
    }

    fn uint32(&mut self, name: &str, default: u32) -> u32 {
        let Some(entry) = self.entry(name) else {
            return default;
        };
        let n = self.uint(name, u64::from(default));
        u32::try_from(n).unwrap_or_else(|_| {
            self.bad_value(
                entry,
                format!("{} (at most {})", ValueError::Range, u32::MAX),
            );
            default
        })
    }

    fn int(&mut self, name: &str, default: i64) -> i64 {
        let Some(entry) = self.entry(name) else {
            return default;
        };
        match &entry.value {
            RawValue::Text(s) | RawValue::Number(s) => match values::parse_int(s) {
                Ok(n) => n,
                Err(e) => {
                    self.bad_value(entry, format!("{e} (expected a whole number)"));
                    default
                }
            },
            _ => {
                self.bad_value(entry, "expected a whole number");
                default
            }
        }
    }

    /// A Go duration; a YAML number is nanoseconds, as etcd decodes `time.Duration`.
    fn duration(&mut self, name: &str, default: Duration) -> Duration {
        let Some(entry) = self.entry(name) else {
            return default;
        };
        let hint = "expected a duration such as 5s, 100ms or 2h";
        match &entry.value {
            RawValue::Text(s) => values::parse_duration(s).unwrap_or_else(|e| {
                self.bad_value(entry, format!("{e} ({hint})"));
                default
            }),
            RawValue::Number(s) => {
                match values::parse_uint(s) {
                    Ok(nanos) => Duration::from_nanos(nanos),
                    Err(e) => {
                        self.bad_value(entry, format!("{e} (a number here is nanoseconds; or write a duration such as 5s)"));
                        default
                    }
                }
            }
            _ => {
                self.bad_value(entry, hint);
                default
            }
        }
    }

    /// A list: comma-separated text or a YAML list; blanks trimmed, empty items dropped.
    fn list(&mut self, name: &str, default: &[&str]) -> Vec<String> {
        let Some(entry) = self.entry(name) else {
            return default.iter().map(|s| s.to_string()).collect();
        };
        let items = match &entry.value {
            RawValue::Text(s) | RawValue::Number(s) => urls::split_list(s),
            RawValue::Bool(b) => vec![b.to_string()],
            RawValue::List(items) => items.iter().flat_map(|s| urls::split_list(s)).collect(),
        };
        items.into_iter().filter(|s| !s.is_empty()).collect()
    }

    /// A value from a fixed set.
    fn choice(&mut self, name: &str, allowed: &[&str], default: &str) -> String {
        let value = self.string(name, default);
        if allowed.contains(&value.as_str()) {
            return value;
        }
        if let Some(entry) = self.entry(name) {
            self.bad_value(entry, format!("valid values are {}", quoted_list(allowed)));
        }
        default.to_string()
    }

    /// The URL items of a list setting, reporting an empty list with etcd's text.
    fn url_items(&mut self, name: &str, default: &str) -> Vec<String> {
        let items = self.list(name, &[default]);
        let items: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
        if items.is_empty() && !default.is_empty() {
            if let Some(entry) = self.entry(name) {
                self.bad_value(entry, UrlError::Empty);
            }
        }
        items
    }

    /// Reports a URL problem: syntax problems are bad values (exit 2 for flags, as etcd),
    /// the others are configuration problems.
    fn url_problem(&mut self, name: &str, error: UrlError) {
        let syntax = !matches!(error, UrlError::BindHost(_) | UrlError::EmptyHost(_));
        match self.entry(name) {
            Some(entry) if syntax => self.bad_value(entry, error),
            _ => {
                let label = self.label(name);
                self.invalid(format!("{label}: {error}"));
            }
        }
    }

    fn listen_urls(&mut self, name: &str, default: &str) -> Vec<ListenUrl> {
        let mut out: Vec<ListenUrl> = Vec::new();
        for item in self.url_items(name, default) {
            match urls::parse_listen_url(&item) {
                Ok(url) if out.iter().any(|u| u.raw == url.raw) => {}
                Ok(url) => out.push(url),
                Err(e) => self.url_problem(name, e),
            }
        }
        out
    }

    /// Advertised URLs, sorted and without duplicates (as etcd stores them).
    fn advertise_urls(&mut self, name: &str, default: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        for item in self.url_items(name, default) {
            match urls::parse_advertise_url(&item) {
                Ok(url) => {
                    out.insert(url);
                }
                Err(e) => self.url_problem(name, e),
            }
        }
        out.into_iter().collect()
    }

    // ----- the configuration

    fn config(&mut self) -> Config {
        self.aliases();
        let name = self.string("name", "default");
        if self.entry("name").is_some() && name.trim().is_empty() {
            let label = self.label("name");
            self.invalid(format!("{label} must not be empty"));
        }
        let data_dir = self
            .path("data-dir")
            .unwrap_or_else(|| PathBuf::from(format!("{name}.etcd")));

        let (heartbeat_interval, election_timeout) = self.timing();
        let listen_peer_urls = self.listen_urls("listen-peer-urls", DEFAULT_PEER_URL);
        let listen_client_urls = self.listen_urls("listen-client-urls", DEFAULT_CLIENT_URL);
        let listen_metrics_urls = self.listen_urls("listen-metrics-urls", "");
        let listen_client_http_urls = self.listen_urls("listen-client-http-urls", "");
        for url in &listen_client_http_urls {
            if listen_client_urls.iter().any(|c| c.raw == url.raw) {
                let (a, b) = (
                    self.label("listen-client-urls"),
                    self.label("listen-client-http-urls"),
                );
                self.invalid(format!(
                    "cannot bind both {a} and {b} on the same url {}",
                    url.raw
                ));
            }
        }
        let advertise_client_urls = self.advertise_client_urls();
        let initial_advertise_peer_urls =
            self.advertise_urls("initial-advertise-peer-urls", DEFAULT_PEER_URL);
        let initial_cluster_state = match self
            .choice("initial-cluster-state", &["new", "existing"], "new")
            .as_str()
        {
            "existing" => ClusterState::Existing,
            _ => ClusterState::New,
        };
        // As etcd with a WAL: a member that already exists ignores the initial-* settings, so
        // their bootstrap checks do not apply (an operator changes peer URLs with
        // `member update` and restarts with new flags).
        let bootstrapped = data_dir.join("member").join("kvd").is_dir();
        let initial_cluster = self.initial_cluster(
            &name,
            &initial_advertise_peer_urls,
            initial_cluster_state,
            bootstrapped,
        );
        let (auto_compaction_mode, auto_compaction_retention, auto_compaction) = self.compaction();

        let skip_san = self.bool("experimental-peer-skip-client-san-verification", false);
        let mut client_tls = self.transport(Port::Client);
        let mut peer_tls = self.transport(Port::Peer);
        peer_tls.skip_client_san_verification = skip_san;
        // The HTTP-only and https metrics URLs serve with the client port's TLS, as in etcd.
        let client_port_urls: Vec<ListenUrl> = listen_client_urls
            .iter()
            .chain(&listen_client_http_urls)
            .chain(listen_metrics_urls.iter().filter(|u| u.is_tls()))
            .cloned()
            .collect();
        self.check_transport(
            Port::Client,
            &mut client_tls,
            &client_port_urls,
            &advertise_client_urls,
        );
        self.check_transport(
            Port::Peer,
            &mut peer_tls,
            &listen_peer_urls,
            &initial_advertise_peer_urls,
        );
        let (tls_min_version, tls_max_version, cipher_suites) = self.tls_versions_and_ciphers();

        let (logger, log_level, log_outputs) = self.logging();
        let log_format = self.log_format();

        let checkpoint = self.bool("experimental-enable-lease-checkpoint", false);
        let checkpoint_persist = self.bool("experimental-enable-lease-checkpoint-persist", false);
        if checkpoint_persist && !checkpoint {
            let (a, b) = (
                self.label("experimental-enable-lease-checkpoint-persist"),
                self.label("experimental-enable-lease-checkpoint"),
            );
            self.invalid(format!("setting {a} requires {b}"));
        }

        let self_signed_cert_validity = self.uint32("self-signed-cert-validity", 1);
        if self_signed_cert_validity == 0 {
            let label = self.label("self-signed-cert-validity");
            self.invalid(format!("{label} must be at least 1 (year)"));
        }

        Config {
            config_file: match self.settings.mode() {
                Mode::File(path) => Some(path.clone()),
                Mode::Flags => None,
            },
            name,
            data_dir,
            wal_dir: self.path("wal-dir"),
            snapshot_count: self.uint("snapshot-count", 100_000),
            heartbeat_interval,
            election_timeout,
            initial_election_tick_advance: self.bool("initial-election-tick-advance", true),
            listen_peer_urls,
            listen_client_urls,
            listen_metrics_urls,
            listen_client_http_urls,
            max_snapshots: self.uint("max-snapshots", 5),
            max_wals: self.uint("max-wals", 5),
            quota_backend_bytes: self.quota(),
            backend_cache_bytes: self
                .uint("backend-cache-bytes", crate::storage::DEFAULT_CACHE_BYTES),
            backend_batch_interval: self.duration("backend-batch-interval", Duration::ZERO),
            backend_batch_limit: self.non_negative("backend-batch-limit"),
            max_txn_ops: self.uint32("max-txn-ops", 128),
            max_request_bytes: self.uint("max-request-bytes", 1_572_864),
            max_concurrent_streams: self.uint32("max-concurrent-streams", u32::MAX),
            grpc_keepalive_min_time: self
                .duration("grpc-keepalive-min-time", Duration::from_secs(5)),
            grpc_keepalive_interval: self
                .duration("grpc-keepalive-interval", Duration::from_secs(2 * 3600)),
            grpc_keepalive_timeout: self
                .duration("grpc-keepalive-timeout", Duration::from_secs(20)),
            advertise_client_urls,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_token: self.string("initial-cluster-token", "etcd-cluster"),
            initial_cluster_state,
            strict_reconfig_check: self.bool("strict-reconfig-check", true),
            pre_vote: self.bool("pre-vote", false),
            auto_compaction_mode,
            auto_compaction_retention,
            auto_compaction,
            enable_v2: self.bool("enable-v2", false),
            client_tls,
            peer_tls,
            cipher_suites,
            tls_min_version,
            tls_max_version,
            self_signed_cert_validity,
            experimental_peer_skip_client_san_verification: skip_san,
            cors: self.list("cors", &["*"]),
            host_whitelist: self.list("host-whitelist", &["*"]),
            auth_token: self.auth_token(),
            auth_token_ttl: self.uint32("auth-token-ttl", 300),
            bcrypt_cost: self.bcrypt_cost(),
            enable_grpc_gateway: self.bool("enable-grpc-gateway", !self.file_mode()),
            enable_pprof: self.bool("enable-pprof", false),
            metrics: self.choice("metrics", &["basic", "extensive"], "basic"),
            logger,
            log_level,
            log_outputs,
            log_format,
            experimental_initial_corrupt_check: self
                .bool("experimental-initial-corrupt-check", false),
            experimental_corrupt_check_time: self
                .duration("experimental-corrupt-check-time", Duration::ZERO),
            experimental_enable_lease_checkpoint: checkpoint,
            experimental_enable_lease_checkpoint_persist: checkpoint_persist,
            experimental_compaction_batch_limit: self
                .non_negative("experimental-compaction-batch-limit"),
            experimental_watch_progress_notify_interval: self.duration(
                "experimental-watch-progress-notify-interval",
                Duration::from_secs(600),
            ),
            experimental_warning_apply_duration: self.duration(
                "experimental-warning-apply-duration",
                Duration::from_millis(100),
            ),
            unsafe_no_fsync: self.bool("unsafe-no-fsync", false),
            force_new_cluster: self.bool("force-new-cluster", false),
        }
    }

    /// Expands the flags removed in etcd 3.4 that kvd still accepts: `ca-file` is
    /// `trusted-ca-file` plus `client-cert-auth` (and the same for the peer).
    fn aliases(&mut self) {
        for (alias, ca, auth) in [
            ("ca-file", "trusted-ca-file", "client-cert-auth"),
            (
                "peer-ca-file",
                "peer-trusted-ca-file",
                "peer-client-cert-auth",
            ),
        ] {
            let Some(entry) = self.entry(alias) else {
                continue;
            };
            let value = entry.value.display();
            let alias_label = entry.origin.label().to_string();
            let (ca_label, auth_label) = (self.label(ca), self.label(auth));
            if let Some(existing) = self.opt_string(ca) {
                if existing != value {
                    self.invalid(format!(
                        "{alias_label} {value:?} and {ca_label} {existing:?} disagree; set only {ca_label}"
                    ));
                }
            }
            if self.entry(auth).is_some() && !self.bool(auth, true) {
                self.invalid(format!(
                    "{alias_label} turns on {auth_label}, but {auth_label} is set to false; drop {alias_label} and use {ca_label}"
                ));
            }
            if self.file_mode() {
                self.warn(format!(
                    "'{alias_label}' is deprecated (etcd 3.4 removed it); kvd reads it as '{ca_label}: {value}' plus '{auth_label}: true'. Use those keys instead."
                ));
            } else {
                self.warn(format!(
                    "{alias_label} is deprecated (etcd 3.4 removed it); kvd reads it as --{ca}={value} --{auth}. Use those flags instead."
                ));
            }
        }
    }

    /// Heartbeat and election timeout, with etcd's checks and texts.
    fn timing(&mut self) -> (Duration, Duration) {
        let tick = self.uint("heartbeat-interval", 100);
        let election = self.uint("election-timeout", 1000);
        let (tick_label, election_label) = (
            self.label("heartbeat-interval"),
            self.label("election-timeout"),
        );
        if tick == 0 {
            self.invalid(format!("{tick_label} must be >0 (set to {tick}ms)"));
        }
        if election == 0 {
            self.invalid(format!("{election_label} must be >0 (set to {election}ms)"));
        }
        if tick > 0 && election > 0 && tick.saturating_mul(5) > election {
            self.invalid(format!(
                "{election_label}[{election}ms] should be at least as 5 times as {tick_label}[{tick}ms]"
            ));
        }
        if election > MAX_ELECTION_MS {
            self.invalid(format!(
                "{election_label}[{election}ms] is too long, and should be set less than {MAX_ELECTION_MS}ms"
            ));
        }
        (Duration::from_millis(tick), Duration::from_millis(election))
    }

    /// `advertise-client-urls`, which etcd requires when listen URLs are set by flag or
    /// variable. A file keeps the default, as in etcd, with a kvd warning.
    fn advertise_client_urls(&mut self) -> Vec<String> {
        let listen_set = self.settings.is_set("listen-client-urls");
        let advertise_set = self.settings.is_set("advertise-client-urls");
        if listen_set && !advertise_set {
            let listen_label = self.label("listen-client-urls");
            if self.file_mode() {
                self.warn(format!(
                    "'{listen_label}' is set but 'advertise-client-urls' is not: this member advertises {DEFAULT_CLIENT_URL}, as etcd does, and clients told that URL may not reach it; set 'advertise-client-urls'"
                ));
            } else {
                // etcd's exact words.
                self.invalid(format!(
                    "{} is required when {listen_label} is set explicitly",
                    self.label("advertise-client-urls")
                ));
                return Vec::new();
            }
        }
        self.advertise_urls("advertise-client-urls", DEFAULT_CLIENT_URL)
    }

    /// `initial-cluster` and etcd's bootstrap checks (skipped for a member that already exists).
    fn initial_cluster(
        &mut self,
        name: &str,
        advertise: &[String],
        state: ClusterState,
        bootstrapped: bool,
    ) -> Vec<(String, String)> {
        let label = self.label("initial-cluster");
        let members = match self.entry("initial-cluster") {
            None => advertise
                .iter()
                .map(|url| (name.to_string(), url.clone()))
                .collect(),
            Some(entry) => {
                let text = match &entry.value {
                    RawValue::List(items) => items.join(","),
                    other => other.display(),
                };
                match urls::parse_initial_cluster(&text) {
                    Ok(members) => members,
                    Err(errors) => {
                        for e in errors {
                            self.invalid(format!("{label}: {e}"));
                        }
                        return Vec::new();
                    }
                }
            }
        };
        if bootstrapped {
            return members;
        }
        if self.entry("initial-cluster").is_some() && !members.iter().any(|(n, _)| n == name) {
            let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
            let listed = if names.is_empty() {
                "it is empty".to_string()
            } else {
                format!("it lists {}", names.join(", "))
            };
            self.invalid(format!(
                "couldn't find local name {name:?} in the initial cluster configuration ({label}: {listed}; {} is {name:?})",
                self.label("name")
            ));
            return members;
        }
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (member, url) in &members {
            if let Some((other, _)) = seen.iter().find(|(_, u)| u == url) {
                let joined = cluster_string(&members);
                self.invalid(format!(
                    "initial cluster {joined} has duplicate url ({url} is given to {other} and {member}) in {label}"
                ));
                return members;
            }
            seen.push((member, url));
        }
        if state == ClusterState::New && !advertise.is_empty() {
            self.advertise_matches_cluster(name, advertise, &members);
        }
        members
    }

    /// etcd's check that this member's `initial-cluster` URLs are its advertised peer URLs.
    /// etcd resolves host names before comparing; kvd does no DNS here, so a difference
    /// that involves a host name is a warning, not an error.
    fn advertise_matches_cluster(
        &mut self,
        name: &str,
        advertise: &[String],
        members: &[(String, String)],
    ) {
        let mine: BTreeSet<&str> = members
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, u)| u.as_str())
            .collect();
        let ours: BTreeSet<&str> = advertise.iter().map(String::as_str).collect();
        if mine == ours {
            return;
        }
        let (cluster_label, advertise_label) = (
            self.label("initial-cluster"),
            self.label("initial-advertise-peer-urls"),
        );
        let only_cluster: Vec<&str> = mine.difference(&ours).copied().collect();
        let only_advertise: Vec<&str> = ours.difference(&mine).copied().collect();
        // Unless every differing URL may name the same address as one on the other side,
        // the lists cannot match whatever DNS says.
        let unmatched = |from: &[&str], to: &[&str]| {
            from.iter()
                .any(|a| !to.iter().any(|b| urls::may_match(a, b)))
        };
        let definite = mine.len() != ours.len()
            || unmatched(&only_cluster, &only_advertise)
            || unmatched(&only_advertise, &only_cluster);
        let advertised = advertise.join(",");
        let message = if !only_cluster.is_empty() {
            let missing: Vec<String> = only_cluster.iter().map(|u| format!("{name}={u}")).collect();
            format!(
                "{cluster_label} has {} but missing from {advertise_label}={advertised}",
                missing.join(",")
            )
        } else {
            let mine_string: Vec<String> =
                advertise.iter().map(|u| format!("{name}={u}")).collect();
            format!(
                "{advertise_label} has {} but missing from {cluster_label}={}",
                only_advertise.join(","),
                mine_string.join(",")
            )
        };
        if definite {
            self.invalid(message);
        } else {
            self.warn(format!(
                "{message} (kvd does not resolve host names at startup; make sure they name the same addresses)"
            ));
        }
    }

    /// Auto compaction mode and retention.
    fn compaction(&mut self) -> (CompactionMode, String, Option<AutoCompaction>) {
        let mode_text = self.string("auto-compaction-mode", "periodic");
        let mode = match mode_text.as_str() {
            "periodic" => CompactionMode::Periodic,
            "revision" => CompactionMode::Revision,
            other => {
                let label = self.label("auto-compaction-mode");
                self.invalid(format!(
                    "unknown auto-compaction-mode {other:?} in {label} (use 'periodic' or 'revision')"
                ));
                CompactionMode::Periodic
            }
        };
        let retention = self.string("auto-compaction-retention", "0");
        let label = self.label("auto-compaction-retention");
        let resolved = match mode {
            CompactionMode::Revision => match values::parse_uint(&retention) {
                Ok(0) => None,
                Ok(n) => Some(AutoCompaction::Revision(n)),
                Err(_) => {
                    self.invalid(format!(
                        "invalid {label} {retention:?}: with auto-compaction-mode 'revision' it is a whole number of revisions to keep"
                    ));
                    None
                }
            },
            CompactionMode::Periodic => {
                let parsed = match retention.bytes().all(|b| b.is_ascii_digit()) {
                    true => retention
                        .parse::<u64>()
                        .ok()
                        .and_then(|hours| hours.checked_mul(3600))
                        .map(Duration::from_secs)
                        .ok_or(ValueError::Range),
                    false => values::parse_duration(&retention),
                };
                match parsed {
                    Ok(d) if d.is_zero() => None,
                    Ok(d) => Some(AutoCompaction::Periodic(d)),
                    Err(e) => {
                        self.invalid(format!(
                            "invalid {label} {retention:?}: {e} (with auto-compaction-mode 'periodic' use a duration such as 1h or 30m, or a whole number of hours)"
                        ));
                        None
                    }
                }
            }
        };
        (mode, retention, resolved)
    }

    /// `quota-backend-bytes`: negative disables the quota, as in etcd.
    fn quota(&mut self) -> u64 {
        let quota = self.int("quota-backend-bytes", 0);
        u64::try_from(quota).unwrap_or(u64::MAX)
    }

    /// An etcd `int` setting that only makes sense non-negative.
    fn non_negative(&mut self, name: &str) -> u64 {
        let n = self.int(name, 0);
        u64::try_from(n).unwrap_or_else(|_| {
            let label = self.label(name);
            self.invalid(format!("{label} must not be negative (set to {n})"));
            0
        })
    }

    fn auth_token(&mut self) -> String {
        let token = self.string("auth-token", "simple");
        let label = self.label("auth-token");
        let mut parts = token.split(',');
        match parts.next().unwrap_or_default() {
            "simple" => {}
            "jwt" => {
                for option in parts {
                    if !option.contains('=') {
                        self.invalid(format!(
                            "{label}: jwt option {option:?} is not key=value (e.g. jwt,pub-key=app.rsa.pub,priv-key=app.rsa,sign-method=RS256)"
                        ));
                    }
                }
            }
            other => self.invalid(format!(
                "{label}: unknown token type {other:?} (use 'simple' or 'jwt,...')"
            )),
        }
        token
    }

    fn bcrypt_cost(&mut self) -> u32 {
        let cost = self.uint("bcrypt-cost", 10);
        if !BCRYPT_COSTS.contains(&cost) {
            let label = self.label("bcrypt-cost");
            self.invalid(format!(
                "{label} must be between {} and {} (set to {cost})",
                BCRYPT_COSTS.start(),
                BCRYPT_COSTS.end()
            ));
            return 10;
        }
        u32::try_from(cost).unwrap_or(10)
    }

    fn logging(&mut self) -> (Logger, String, Vec<String>) {
        let logger = match self.string("logger", "capnslog").as_str() {
            "capnslog" => Logger::Capnslog,
            "zap" => Logger::Zap,
            other => {
                let label = self.label("logger");
                self.invalid(format!(
                    "unknown logger option {other:?} in {label} (use 'zap' or 'capnslog')"
                ));
                Logger::Capnslog
            }
        };
        let mut level = self.string("log-level", "info");
        if !LOG_LEVELS.contains(&level.as_str()) {
            let label = self.label("log-level");
            self.invalid(format!(
                "{label}: unknown level {level:?} (use one of {})",
                LOG_LEVELS.join(", ")
            ));
            level = "info".to_string();
        }
        if self.bool("debug", false) {
            let (debug, log_level) = (self.label("debug"), self.label("log-level"));
            if self.entry("log-level").is_some() && level != "debug" {
                self.warn(format!(
                    "deprecated {debug} is set with inconsistent {log_level}={level}; using debug"
                ));
            }
            level = "debug".to_string();
        }
        let outputs = match (self.entry("log-output"), self.entry("log-outputs")) {
            (Some(_), Some(_)) => {
                let (old, new) = (self.label("log-output"), self.label("log-outputs"));
                self.invalid(format!("both {old} and {new} are set; only set {new}"));
                self.list("log-outputs", &["default"])
            }
            (Some(_), None) => self.list("log-output", &["default"]),
            _ => self.list("log-outputs", &["default"]),
        };
        if outputs.is_empty() {
            let label = self.label("log-outputs");
            self.invalid(format!("{label} must name at least one output"));
        }
        if outputs.len() > 1 && outputs.iter().any(|o| o == "default") {
            // etcd's own words.
            self.invalid(r#"multi logoutput for "default" is not supported yet"#);
        }
        (logger, level, outputs)
    }

    fn log_format(&mut self) -> LogFormat {
        match self.string("log-format", "json").as_str() {
            "json" | "" => LogFormat::Json,
            "console" => LogFormat::Console,
            other => {
                // etcd 3.6's words.
                self.invalid(format!(
                    "unknown log format: {other}, supported values json, console"
                ));
                LogFormat::Json
            }
        }
    }

    // ----- TLS

    fn transport(&mut self, port: Port) -> TransportSecurity {
        let n = port.names();
        TransportSecurity {
            cert_file: self.path(n.cert),
            key_file: self.path(n.key),
            client_cert_file: self.path(n.client_cert),
            client_key_file: self.path(n.client_key),
            client_cert_auth: self.bool(n.auth, false) || self.settings.is_set(n.alias),
            trusted_ca_file: self.path(n.ca).or_else(|| self.path(n.alias)),
            auto_tls: self.bool(n.auto, false),
            crl_file: self.path(n.crl),
            allowed_cn: self.opt_string(n.allowed_cn),
            allowed_hostname: self.list(n.allowed_hostname, &[]),
            skip_client_san_verification: false,
        }
    }

    fn check_transport(
        &mut self,
        port: Port,
        tls: &mut TransportSecurity,
        listen: &[ListenUrl],
        advertise: &[String],
    ) {
        let n = port.names();
        let (cert, key, auto) = (self.label(n.cert), self.label(n.key), self.label(n.auto));
        let listen_label = self.label(n.listen);
        for (a, b, a_set, b_set) in [
            (
                n.cert,
                n.key,
                tls.cert_file.is_some(),
                tls.key_file.is_some(),
            ),
            (
                n.client_cert,
                n.client_key,
                tls.client_cert_file.is_some(),
                tls.client_key_file.is_some(),
            ),
        ] {
            if a_set != b_set {
                let (a, b) = (self.label(a), self.label(b));
                let (given, missing) = if a_set { (a, b) } else { (b, a) };
                self.invalid(format!("{given} is set but {missing} is not: set both"));
            }
        }
        if tls.allowed_cn.is_some() && !tls.allowed_hostname.is_empty() {
            let (cn, host) = (self.label(n.allowed_cn), self.label(n.allowed_hostname));
            self.invalid(format!(
                "{cn} and {host} are mutually exclusive (cn={:?}, hostname={:?}): set only one",
                tls.allowed_cn.as_deref().unwrap_or_default(),
                tls.allowed_hostname.join(",")
            ));
        }
        if tls.auto_tls && tls.cert_file.is_some() {
            self.warn(format!(
                "ignoring {auto} since {cert} and {key} are given (as etcd)"
            ));
            tls.auto_tls = false;
        }
        if tls.auto_tls && tls.requires_client_cert() {
            let (auth, ca) = (self.label(n.auth), self.label(n.ca));
            self.warn(format!(
                "{auto} generates its own certificate, so {auth} and {ca} are ignored (as etcd): this port accepts connections without client certificates"
            ));
            tls.client_cert_auth = false;
            tls.trusted_ca_file = None;
        }
        if tls.client_cert_auth && tls.trusted_ca_file.is_none() {
            let (auth, ca) = (self.label(n.auth), self.label(n.ca));
            self.invalid(format!(
                "{auth} needs {ca}: without a trusted CA no client certificate can be verified"
            ));
        }
        let tls_urls: Vec<&str> = listen
            .iter()
            .filter(|u| u.is_tls())
            .map(|u| u.raw.as_str())
            .collect();
        if !tls_urls.is_empty() && !tls.can_serve_tls() && tls.cert_file.is_none() {
            self.invalid(format!(
                "{listen_label} has {} with TLS but no certificate is configured: set {cert} and {key}, or {auto}",
                tls_urls.join(",")
            ));
        }
        if tls_urls.is_empty() && !listen.is_empty() && (tls.is_configured() || tls.auto_tls) {
            let set: Vec<String> = [n.cert, n.key, n.ca, n.auth, n.crl, n.auto, n.alias]
                .iter()
                .filter(|name| self.settings.is_set(name))
                .map(|name| self.label(name))
                .collect();
            if !set.is_empty() {
                self.warn(format!(
                    "{} set but no {listen_label} URL uses https or unixs: that port serves plaintext and ignores these TLS settings",
                    set.join(", ")
                ));
            }
        }
        let listens_tls = !tls_urls.is_empty();
        let advertise_label = self.label(n.advertise);
        for url in advertise {
            let advertises_tls = url.starts_with("https://") || url.starts_with("unixs://");
            if advertises_tls && !listens_tls && !listen.is_empty() {
                self.warn(format!(
                    "{advertise_label} has {url} (TLS) but no {listen_label} URL uses TLS"
                ));
            } else if !advertises_tls && listens_tls && listen.iter().all(ListenUrl::is_tls) {
                self.warn(format!(
                    "{advertise_label} has {url} (plaintext) but every {listen_label} URL uses TLS"
                ));
            }
        }
    }

    /// A TLS version setting, or `None` when unset or bad (after reporting it).
    fn tls_version(&mut self, name: &str) -> Option<TlsVersion> {
        let text = self.opt_string(name)?;
        match TlsVersion::parse(&text) {
            Ok(v) => Some(v),
            Err(reason) => {
                let label = self.label(name);
                self.invalid(format!("{label}: {reason}"));
                None
            }
        }
    }

    fn tls_versions_and_ciphers(
        &mut self,
    ) -> (Option<TlsVersion>, Option<TlsVersion>, Vec<String>) {
        let min = self.tls_version("tls-min-version");
        let max = self.tls_version("tls-max-version");
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                let (a, b) = (self.label("tls-min-version"), self.label("tls-max-version"));
                self.invalid(format!(
                    "min version ({lo}) is greater than max version ({hi}): {a} must not exceed {b}"
                ));
            }
        }
        let names = self.list("cipher-suites", &[]);
        let label = self.label("cipher-suites");
        if !names.is_empty() && min == Some(TlsVersion::Tls13) {
            self.invalid(format!(
                "cipher suites cannot be configured when only TLS1.3 is enabled ({label} with {}=TLS1.3)",
                self.label("tls-min-version")
            ));
        }
        let mut suites: Vec<String> = Vec::new();
        let mut weak: Vec<String> = Vec::new();
        let mut unknown = false;
        for name in &names {
            match security::cipher(name) {
                Some(Cipher::Tls12(canonical) | Cipher::Tls13(canonical)) => {
                    if !suites.iter().any(|s| s == canonical) {
                        suites.push(canonical.to_string());
                    }
                }
                Some(Cipher::NotImplemented) => weak.push(name.clone()),
                None => {
                    unknown = true;
                    let near = suggest::nearest(name, security::implemented_tls12_suites())
                        .map(|n| format!(" (did you mean {n}?)"))
                        .unwrap_or_default();
                    self.invalid(format!(
                        "{label}: unexpected TLS cipher suite {name:?}{near}"
                    ));
                }
            }
        }
        if !weak.is_empty() {
            let choices = security::implemented_tls12_suites().join(", ");
            if suites.is_empty() && !unknown {
                self.invalid(format!(
                    "{label}: kvd implements none of {} (weak suites its TLS library leaves out); choose from {choices}",
                    weak.join(", ")
                ));
            } else if !suites.is_empty() {
                self.warn(format!(
                    "{label}: {} left out: kvd's TLS library does not implement these weak suites",
                    weak.join(", ")
                ));
            }
        }
        (min, max, suites)
    }

    // ----- settings kvd accepts but does not act on

    /// Warnings for inert and deprecated settings, errors for unsupported ones.
    fn statuses(&mut self) {
        let settings = self.settings;
        for (name, entry) in settings.iter() {
            let Some(spec) = flags::spec(name) else {
                continue;
            };
            let value = entry.value.display();
            let label = entry.origin.label();
            let is_default = value == spec.default || (value.is_empty() && spec.default.is_empty());
            match spec.status {
                Status::Inert(why) if !is_default => {
                    self.warn(format!(
                        "{label} has no effect in kvd ({why}); accepted for etcd compatibility"
                    ));
                }
                Status::Unsupported(why) if !is_default => {
                    self.invalid(format!("{label} is not supported: {why}"));
                }
                Status::Deprecated(instead) if name != "ca-file" && name != "peer-ca-file" => {
                    self.warn(format!("{label} is deprecated; use {instead} instead"));
                }
                _ => {}
            }
        }
    }
}

/// The settings of one port, by name.
#[derive(Debug, Clone, Copy)]
enum Port {
    Client,
    Peer,
}

/// The setting names of one port's TLS.
struct PortNames {
    cert: &'static str,
    key: &'static str,
    client_cert: &'static str,
    client_key: &'static str,
    auth: &'static str,
    ca: &'static str,
    alias: &'static str,
    auto: &'static str,
    crl: &'static str,
    allowed_cn: &'static str,
    allowed_hostname: &'static str,
    listen: &'static str,
    advertise: &'static str,
}

impl Port {
    fn names(self) -> PortNames {
        match self {
            Port::Client => PortNames {
                cert: "cert-file",
                key: "key-file",
                client_cert: "client-cert-file",
                client_key: "client-key-file",
                auth: "client-cert-auth",
                ca: "trusted-ca-file",
                alias: "ca-file",
                auto: "auto-tls",
                crl: "client-crl-file",
                allowed_cn: "client-cert-allowed-cn",
                allowed_hostname: "client-cert-allowed-hostname",
                listen: "listen-client-urls",
                advertise: "advertise-client-urls",
            },
            Port::Peer => PortNames {
                cert: "peer-cert-file",
                key: "peer-key-file",
                client_cert: "peer-client-cert-file",
                client_key: "peer-client-key-file",
                auth: "peer-client-cert-auth",
                ca: "peer-trusted-ca-file",
                alias: "peer-ca-file",
                auto: "peer-auto-tls",
                crl: "peer-crl-file",
                allowed_cn: "peer-cert-allowed-cn",
                allowed_hostname: "peer-cert-allowed-hostname",
                listen: "listen-peer-urls",
                advertise: "initial-advertise-peer-urls",
            },
        }
    }
}

/// `a=url,b=url` in the order given.
fn cluster_string(members: &[(String, String)]) -> String {
    members
        .iter()
        .map(|(n, u)| format!("{n}={u}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `'a', 'b' or 'c'`.
fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}
