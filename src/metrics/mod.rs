//! Prometheus metrics under etcd 3.5's names, types, labels, help texts and histogram buckets,
//! so that dashboards and alert rules written for etcd (etcd-mixin) read kvd unchanged.
//!
//! Owns the one [`registry`] of the process and the metric definitions, grouped by what they
//! describe: [`server`] (raft, proposals, health, identity), [`disk`] (fsync and commit
//! latencies), [`mvcc`] (keys, revisions, operations, watchers), [`lease`], [`network`] (peer
//! and client traffic), [`grpc`] (go-grpc-prometheus's per-method counters, as a tower layer),
//! [`process`] (memory, CPU, file descriptors) and [`tls`] (kvd's own: certificate expiry and
//! refused handshakes).
//!
//! The rest of kvd only calls into this module (one line at the place an event happens, e.g.
//! `metrics::server::PROPOSALS_FAILED.inc()`); values that are state rather than events (the
//! leader, the revision, the database size) are sampled when `/metrics` is scraped
//! ([`server::Sample`]). Like etcd's, the metrics are per process: one member per process.
//! This module must not import kvd's other modules except `proto` (method names) and `tls`
//! (the refusal kinds).

pub mod disk;
pub mod grpc;
pub mod lease;
pub mod mvcc;
pub mod network;
pub mod process;
pub mod server;
pub mod tls;

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// The content type of the text exposition format `/metrics` answers with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let r = Registry::new();
    server::register(&r);
    disk::register(&r);
    mvcc::register(&r);
    lease::register(&r);
    network::register(&r);
    grpc::register(&r);
    process::register(&r);
    tls::register(&r);
    r
});

/// The registry every kvd metric is in (created, with every family, on first use).
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// Every metric in Prometheus's text format, numbers written as Go's client writes them.
pub fn render() -> String {
    let families = registry().gather();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|e| format!("# metrics encoding failed: {e}\n"));
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(&go_numbers(line));
        out.push('\n');
    }
    out
}

/// A sample line with its value and its `le` bound in Go's `%g` form (`1.048576e+06`, as
/// etcd's exposition has them): bucket bounds are label values, compared as text by
/// selectors, so they must read exactly as etcd's.
fn go_numbers(line: &str) -> String {
    if line.starts_with('#') {
        return line.to_string();
    }
    let Some((series, value)) = line.rsplit_once(' ') else {
        return line.to_string();
    };
    let series = match series.find("le=\"") {
        Some(i) => {
            let start = i + 4;
            match series[start..].find('"') {
                Some(len) => {
                    let bound = &series[start..start + len];
                    let go = bound.parse::<f64>().map_or(bound.to_string(), go_float);
                    format!("{}{go}{}", &series[..start], &series[start + len..])
                }
                None => series.to_string(),
            }
        }
        None => series.to_string(),
    };
    let value = value.parse::<f64>().map_or(value.to_string(), go_float);
    format!("{series} {value}")
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits, in exponent form when the
/// exponent is below -4 or at least 6 (`+Inf`, `-Inf` and `NaN` as Prometheus writes them).
fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        v.to_string()
    }
}

/// Adds `c` to the registry. A metric is defined once, so a second registration (the same
/// static, e.g. a second in-process member starting) is not an error.
fn add(r: &Registry, c: impl Collector + Clone + 'static) {
    let _ = r.register(Box::new(c));
}

// Constructors: the names, help texts and labels are facts of etcd's exposition, so a wrong
// one is a programming error caught by the first scrape in any test.

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid counter definition")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter definition")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid gauge definition")
}

fn float_gauge(name: &str, help: &str) -> Gauge {
    Gauge::new(name, help).expect("valid gauge definition")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge definition")
}

fn float_gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge definition")
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid histogram definition")
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid histogram definition")
}

/// Go's `prometheus.ExponentialBuckets(start, factor, count)`: the same repeated
/// multiplication, so the `le` labels print exactly as etcd's.
fn exponential(start: f64, factor: f64, count: usize) -> Vec<f64> {
    prometheus::exponential_buckets(start, factor, count).expect("valid bucket definition")
}

/// Observes the time from its creation to its drop into a histogram (a one-line hook at the
/// start of the measured scope).
#[must_use = "the duration is recorded when the timer is dropped"]
pub struct Timer {
    histogram: &'static LazyLock<Histogram>,
    start: std::time::Instant,
}

impl Timer {
    fn start(histogram: &'static LazyLock<Histogram>) -> Timer {
        Timer {
            histogram,
            start: std::time::Instant::now(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_print_as_etcds() {
        let printed: Vec<String> = exponential(0.001, 2.0, 14)
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(printed.first().map(String::as_str), Some("0.001"));
        assert_eq!(printed.last().map(String::as_str), Some("8.192"));
        let rtt: Vec<String> = exponential(0.0001, 2.0, 16)
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(
            rtt,
            [
                "0.0001", "0.0002", "0.0004", "0.0008", "0.0016", "0.0032", "0.0064", "0.0128",
                "0.0256", "0.0512", "0.1024", "0.2048", "0.4096", "0.8192", "1.6384", "3.2768"
            ]
        );
    }

    #[test]
    fn numbers_read_as_gos() {
        assert_eq!(go_float(1_048_576.0), "1.048576e+06");
        assert_eq!(go_float(2_147_483_648.0), "2.147483648e+09");
        assert_eq!(go_float(u64::MAX as f64), "1.8446744073709552e+19");
        assert_eq!(go_float(100_000.0), "100000");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00005), "5e-05");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(-3.0), "-3");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
        assert_eq!(
            go_numbers("x_bucket{a=\"b\",le=\"8388608\"} 3"),
            "x_bucket{a=\"b\",le=\"8.388608e+06\"} 3"
        );
        assert_eq!(go_numbers("q 2147483648"), "q 2.147483648e+09");
        assert_eq!(
            go_numbers("# HELP q 12345678 things"),
            "# HELP q 12345678 things"
        );
    }

    #[test]
    fn every_family_renders_with_help_and_type() {
        let text = render();
        for name in [
            "etcd_server_has_leader",
            "etcd_disk_wal_fsync_duration_seconds",
            "etcd_mvcc_db_total_size_in_bytes",
            "etcd_network_client_grpc_sent_bytes_total",
            "grpc_server_handled_total",
            "process_resident_memory_bytes",
            "os_fd_used",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing from:\n{text}"
            );
        }
    }
}
