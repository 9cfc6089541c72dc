//! etcd's zap log lines from `tracing` events.
//!
//! JSON (etcd 3.5, and `--log-format json` in 3.6): `{"level":"info","ts":"2024-05-01T10:00:00.123456Z",
//! "caller":"server/mod.rs:120","msg":"...",` then the event's fields in the order they were
//! given. `ts` is local time as etcd writes it (`2006-01-02T15:04:05.999999Z0700`: microseconds
//! without trailing zeros, `Z` or `+hhmm`), `caller` the last directory and file with the line,
//! as zap's short caller encoder writes it.
//!
//! Console (`--log-format console`, etcd 3.6): zap's console encoder, fields separated by tabs:
//! time, level, caller, message, then the fields as JSON with a space after `:` and `,`.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::Outputs;
use crate::config::LogFormat;

/// A `tracing` layer writing every event as one zap line to the outputs.
pub struct ZapLayer {
    format: LogFormat,
    outputs: Arc<Outputs>,
}

impl ZapLayer {
    /// A layer writing `format` lines to `outputs`.
    pub fn new(format: LogFormat, outputs: Arc<Outputs>) -> Self {
        Self { format, outputs }
    }
}

impl<S: Subscriber> Layer<S> for ZapLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let caller = match (&fields.log_file, fields.log_line) {
            (Some(file), Some(line)) => short_caller(file, line),
            _ => match (meta.file(), meta.line()) {
                (Some(file), Some(line)) => short_caller(file, line),
                _ => "unknown".to_string(),
            },
        };
        let entry = Entry {
            level: level_name(*meta.level()),
            ts: timestamp(std::time::SystemTime::now()),
            caller,
            fields,
        };
        let line = match self.format {
            LogFormat::Json => entry.json(),
            LogFormat::Console => entry.console(),
        };
        self.outputs.write_all(line.as_bytes());
    }
}

/// zap's lower-case level names (`tracing`'s trace is debug).
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        _ => "debug",
    }
}

/// zap's short caller: the file's last directory and name, and the line.
fn short_caller(file: &str, line: u32) -> String {
    let parts: Vec<&str> = file.rsplit(['/', '\\']).take(2).collect();
    let short = match parts.as_slice() {
        [name, dir] => format!("{dir}/{name}"),
        [name] => (*name).to_string(),
        _ => file.to_string(),
    };
    format!("{short}:{line}")
}

/// Go's `2006-01-02T15:04:05.999999Z0700` in local time.
fn timestamp(at: std::time::SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = libc::time_t::try_from(since.as_secs()).unwrap_or(libc::time_t::MAX);
    // SAFETY: localtime_r only writes the `tm` it is given and reads the time zone, and is
    // safe to call from several threads.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            libc::gmtime_r(&secs, &mut tm);
        }
        tm
    };
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    );
    let micros = since.subsec_micros();
    if micros != 0 {
        let fraction = format!("{micros:06}");
        s.push('.');
        s.push_str(fraction.trim_end_matches('0'));
    }
    let offset = tm.tm_gmtoff;
    if offset == 0 {
        s.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.abs() / 60;
        let _ = write!(s, "{sign}{:02}{:02}", minutes / 60, minutes % 60);
    }
    s
}

/// A field's value, kept typed so that numbers and booleans stay JSON numbers and booleans.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl Value {
    fn write_json(&self, out: &mut String) {
        match self {
            Value::Str(s) => out.push_str(&json_string(s)),
            Value::I64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::U64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::F64(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            // zap writes non-finite floats as strings.
            Value::F64(v) => out.push_str(&json_string(&v.to_string())),
            Value::Bool(v) => {
                let _ = write!(out, "{v}");
            }
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// An event's message and fields, in order.
#[derive(Debug, Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, Value)>,
    /// The source location of a `log` record bridged into `tracing`.
    log_file: Option<String>,
    log_line: Option<u32>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::Str(s)) => self.message = s,
            ("log.file", Value::Str(s)) => self.log_file = Some(s),
            ("log.line", Value::U64(l)) => self.log_line = u32::try_from(l).ok(),
            ("log.line", Value::I64(l)) => self.log_line = u32::try_from(l).ok(),
            (name, _) if name.starts_with("log.") => {}
            (name, value) => self.fields.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Str(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::Str(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::Str(format!("{value:?}")));
    }
}

/// One log line's parts.
struct Entry {
    level: &'static str,
    ts: String,
    caller: String,
    fields: Fields,
}

impl Entry {
    fn json(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("{\"level\":");
        out.push_str(&json_string(self.level));
        out.push_str(",\"ts\":");
        out.push_str(&json_string(&self.ts));
        out.push_str(",\"caller\":");
        out.push_str(&json_string(&self.caller));
        out.push_str(",\"msg\":");
        out.push_str(&json_string(&self.fields.message));
        for (name, value) in &self.fields.fields {
            out.push(',');
            out.push_str(&json_string(name));
            out.push(':');
            value.write_json(&mut out);
        }
        out.push_str("}\n");
        out
    }

    fn console(&self) -> String {
        let mut out = format!(
            "{}\t{}\t{}\t{}",
            self.ts, self.level, self.caller, self.fields.message
        );
        if !self.fields.fields.is_empty() {
            out.push_str("\t{");
            for (i, (name, value)) in self.fields.fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&json_string(name));
                out.push_str(": ");
                value.write_json(&mut out);
            }
            out.push('}');
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            level: "info",
            ts: "2024-05-01T10:00:00.12345Z".to_string(),
            caller: "server/mod.rs:12".to_string(),
            fields: Fields {
                message: "serving \"client\" traffic".to_string(),
                fields: vec![
                    ("address", Value::Str("127.0.0.1:2379".to_string())),
                    ("took", Value::F64(0.5)),
                    ("count", Value::U64(3)),
                    ("tls", Value::Bool(false)),
                ],
                ..Fields::default()
            },
        }
    }

    #[test]
    fn json_lines_put_etcds_keys_first_then_the_fields() {
        assert_eq!(
            entry().json(),
            "{\"level\":\"info\",\"ts\":\"2024-05-01T10:00:00.12345Z\",\"caller\":\"server/mod.rs:12\",\"msg\":\"serving \\\"client\\\" traffic\",\"address\":\"127.0.0.1:2379\",\"took\":0.5,\"count\":3,\"tls\":false}\n"
        );
    }

    #[test]
    fn console_lines_are_zaps_tab_separated_form() {
        assert_eq!(
            entry().console(),
            "2024-05-01T10:00:00.12345Z\tinfo\tserver/mod.rs:12\tserving \"client\" traffic\t{\"address\": \"127.0.0.1:2379\", \"took\": 0.5, \"count\": 3, \"tls\": false}\n"
        );
    }

    #[test]
    fn callers_are_the_last_directory_and_file() {
        assert_eq!(short_caller("src/server/mod.rs", 7), "server/mod.rs:7");
        assert_eq!(short_caller("main.rs", 1), "main.rs:1");
        assert_eq!(
            short_caller("/home/u/.cargo/registry/src/x/sled-0.34.7/src/tree.rs", 9),
            "src/tree.rs:9"
        );
    }

    #[test]
    fn timestamps_are_gos_layout_with_microseconds_trimmed() {
        let ts = timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_500_000));
        // The offset depends on the machine's zone; the layout does not.
        let (date, rest) = ts.split_once('T').expect("date and time");
        assert_eq!(date.len(), 10, "{ts}");
        assert!(
            rest[..8].chars().all(|c| c.is_ascii_digit() || c == ':'),
            "{ts}"
        );
        assert_eq!(&rest[8..10], ".5", "{ts}");
        assert!(rest.ends_with('Z') || rest[10..].len() == 5, "{ts}");
        let whole = timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(2));
        assert!(!whole.contains('.'), "{whole}");
    }
}
