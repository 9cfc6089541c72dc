//! Logging set-up from etcd's flags: `--logger`, `--log-level`, `--log-outputs` and
//! `--log-format`.
//!
//! `--logger zap` writes etcd 3.5's structured lines: one JSON object per line with `level`,
//! `ts`, `caller` and `msg` first, then the event's fields (`zap`); `--log-format console`
//! (etcd 3.6) writes zap's tab-separated console lines instead. The default (`capnslog`, etcd
//! 3.4's default logger) is human-readable text. Every line goes to each of the
//! `--log-outputs` (`outputs`). `KVD_LOG` (a `tracing` filter such as `kvd=debug,raft=info`)
//! overrides `--log-level`.

mod outputs;
mod zap;

use std::sync::Arc;

use thiserror::Error;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Logger};
pub use outputs::Outputs;

/// Why logging could not be set up.
#[derive(Debug, Error)]
pub enum LogError {
    /// A `--log-outputs` file could not be opened for appending.
    #[error("cannot open log output {path}: {reason}")]
    Output {
        /// The file.
        path: String,
        /// The reason.
        reason: std::io::Error,
    },
}

/// The `tracing` level of an etcd log level (panic and fatal log as errors).
pub fn level_filter(level: &str) -> &'static str {
    match level {
        "debug" => "debug",
        "warn" => "warn",
        "error" | "panic" | "fatal" => "error",
        _ => "info",
    }
}

/// Installs the global logger as `--logger`, `--log-level`, `--log-outputs` and `--log-format`
/// ask. Returns the notes to log once it is up (e.g. how an output
/// kvd has no direct support for is served).
///
/// # Errors
/// An output file that cannot be opened.
pub fn init(cfg: &Config) -> Result<Vec<String>, LogError> {
    let (outputs, notes) = Outputs::open(&cfg.log_outputs)?;
    let outputs = Arc::new(outputs);
    let filter = EnvFilter::try_from_env("KVD_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{},raft=warn", level_filter(&cfg.log_level))));
    let registry = tracing_subscriber::registry().with(filter);
    match cfg.logger {
        Logger::Zap => registry
            .with(zap::ZapLayer::new(cfg.log_format, outputs))
            .init(),
        Logger::Capnslog => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(outputs.is_terminal())
                    .with_writer(outputs::SharedOutputs(outputs)),
            )
            .init(),
    }
    Ok(notes)
}
