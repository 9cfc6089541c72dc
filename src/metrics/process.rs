//! `process_*`, `os_fd_used` and `os_fd_limit`: the process's memory, CPU time, start time and
//! file descriptors, read from `/proc` at each scrape, as Go's process collector (which etcd
//! registers) and etcd's own fd gauges report them: CPU seconds with sub-second precision,
//! "unlimited" address space as 2^64.
//!
//! `etcdctl check datascale` reads `process_resident_memory_bytes` from `/metrics` on the
//! client URL to report the memory a load took.

use std::sync::LazyLock;

use parking_lot::Mutex;
use procfs::process::{LimitValue, Process};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Registry};

use super::{add, float_gauge};

/// Collects the process metrics when gathered.
#[derive(Clone)]
pub struct ProcessCollector {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    cpu: Counter,
    open_fds: Gauge,
    max_fds: Gauge,
    virtual_memory: Gauge,
    virtual_memory_max: Gauge,
    resident_memory: Gauge,
    start_time: Gauge,
    os_fd_used: Gauge,
    os_fd_limit: Gauge,
    /// Serialises collection: the CPU counter is advanced by the difference to the last read.
    lock: Mutex<()>,
}

static COLLECTOR: LazyLock<ProcessCollector> = LazyLock::new(ProcessCollector::new);

pub(super) fn register(r: &Registry) {
    add(r, COLLECTOR.clone());
}

impl ProcessCollector {
    fn new() -> ProcessCollector {
        ProcessCollector {
            inner: std::sync::Arc::new(Inner {
                cpu: Counter::new(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                )
                .expect("valid counter definition"),
                open_fds: float_gauge("process_open_fds", "Number of open file descriptors."),
                max_fds: float_gauge(
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                ),
                virtual_memory: float_gauge(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                ),
                virtual_memory_max: float_gauge(
                    "process_virtual_memory_max_bytes",
                    "Maximum amount of virtual memory available in bytes.",
                ),
                resident_memory: float_gauge(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                ),
                start_time: float_gauge(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                ),
                os_fd_used: float_gauge("os_fd_used", "The number of used file descriptors."),
                os_fd_limit: float_gauge("os_fd_limit", "The file descriptor limit."),
                lock: Mutex::new(()),
            }),
        }
    }

    fn parts(&self) -> [&dyn Collector; 9] {
        let i = &self.inner;
        [
            &i.cpu,
            &i.open_fds,
            &i.max_fds,
            &i.virtual_memory,
            &i.virtual_memory_max,
            &i.resident_memory,
            &i.start_time,
            &i.os_fd_used,
            &i.os_fd_limit,
        ]
    }

    /// Reads `/proc/self` into the gauges; what cannot be read keeps its last value.
    #[allow(clippy::cast_precision_loss)]
    fn refresh(&self) {
        let i = &self.inner;
        let _serial = i.lock.lock();
        let Ok(p) = Process::myself() else { return };
        if let Ok(n) = p.fd_count() {
            i.open_fds.set(n as f64);
            i.os_fd_used.set(n as f64);
        }
        if let Ok(limits) = p.limits() {
            let value = |l: LimitValue| match l {
                LimitValue::Value(v) => v as f64,
                LimitValue::Unlimited => u64::MAX as f64,
            };
            let fds = value(limits.max_open_files.soft_limit);
            i.max_fds.set(fds);
            i.os_fd_limit.set(fds);
            i.virtual_memory_max
                .set(value(limits.max_address_space.soft_limit));
        }
        if let Ok(stat) = p.stat() {
            let ticks = procfs::ticks_per_second().max(1) as f64;
            i.virtual_memory.set(stat.vsize as f64);
            i.resident_memory
                .set(stat.rss as f64 * procfs::page_size() as f64);
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            let seen = i.cpu.get();
            if cpu > seen {
                i.cpu.inc_by(cpu - seen);
            }
            if let Ok(boot) = procfs::boot_time_secs() {
                i.start_time
                    .set(boot as f64 + stat.starttime as f64 / ticks);
            }
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        self.parts().into_iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reports_memory_cpu_and_descriptors() {
        let c = ProcessCollector::new();
        let families = c.collect();
        let value = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .and_then(|f| f.get_metric().first())
                .map(|m| {
                    if m.get_counter().get_value() != 0.0 {
                        m.get_counter().get_value()
                    } else {
                        m.get_gauge().get_value()
                    }
                })
                .unwrap_or_default()
        };
        assert!(value("process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("os_fd_limit") >= value("os_fd_used"));
        assert!(value("process_start_time_seconds") > 1.5e9);
        assert!(value("process_virtual_memory_max_bytes") > 0.0);
    }
}
