//! `/health`, `/livez` and `/readyz` as etcd 3.5.11+ serves them.
//!
//! - `/health`: JSON `{"health":"true","reason":""}`; false (503) on an alarm (`?exclude=NOSPACE`
//!   skips one), no leader, or a failed read (`?serializable=true` reads locally and does not
//!   need a leader).
//! - `/livez` (the process serves local reads) and `/readyz` (it serves the cluster's reads):
//!   `ok`, the checks one per line with `?verbose`, `?exclude=NAME` skips a check, and each
//!   check has its own path (`/readyz/linearizable_read`). A failing check answers 503 with the
//!   list, the failing one as `[-]NAME failed: REASON`.
//!
//! One difference: etcd lists the checks in Go's random map order; kvd always lists them in
//! the order below.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::{debug, error, warn};

use crate::api::Core;
use crate::metrics::server::{HEALTHCHECK, HEALTHCHECKS, HEALTH_FAILURES, HEALTH_SUCCESS};
use crate::proto::etcdserverpb::{AlarmType, RangeRequest};

/// The parameters of one query string (`?a=1&b&a=2`), in order.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The non-empty values of parameter `name`.
fn values(pairs: &[(String, String)], name: &str) -> BTreeSet<String> {
    pairs
        .iter()
        .filter(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect()
}

/// Go's `http.Error`: the text and a newline, as plain text that browsers must not sniff.
fn go_error(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{text}\n"),
    )
        .into_response()
}

fn method_not_allowed() -> Response {
    let mut r = go_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    r
}

/// A local (`serializable`) or linearizable read of one key, as etcd's checks read: as root,
/// so that auth never fails it.
async fn read(core: &Core, serializable: bool) -> Result<(), String> {
    let message = |e: crate::api::ApiError| tonic::Status::from(e).message().to_string();
    if !serializable {
        core.read_barrier().await.map_err(message)?;
    }
    let request = RangeRequest {
        key: vec![0],
        keys_only: true,
        limit: 1,
        serializable,
        ..Default::default()
    };
    let store = core.state.mvcc.read();
    crate::mvcc::range(&*store, &request)
        .map(|_| ())
        .map_err(|e| message(e.into()))
}

/// The JSON body of `/health`.
fn health_json(healthy: bool, reason: &str) -> String {
    serde_json::json!({ "health": if healthy { "true" } else { "false" }, "reason": reason })
        .to_string()
}

/// `/health`.
pub async fn health(
    State(core): State<Arc<Core>>,
    method: Method,
    RawQuery(query): RawQuery,
) -> Response {
    if method != Method::GET {
        warn!(status_code = 405, "/health error");
        return method_not_allowed();
    }
    let pairs = query_pairs(query.as_deref());
    let excluded = values(&pairs, "exclude");
    let serializable = pairs
        .iter()
        .any(|(k, v)| k == "serializable" && v == "true");
    let outcome = check_health(&core, &excluded, serializable).await;
    match outcome {
        Ok(()) => {
            HEALTH_SUCCESS.inc();
            debug!(status_code = 200, "/health OK");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                health_json(true, ""),
            )
                .into_response()
        }
        Err(reason) => {
            HEALTH_FAILURES.inc();
            let body = health_json(false, &reason);
            warn!(output = %body, status_code = 503, "/health error");
            go_error(StatusCode::SERVICE_UNAVAILABLE, &body)
        }
    }
}

async fn check_health(
    core: &Core,
    excluded: &BTreeSet<String>,
    serializable: bool,
) -> Result<(), String> {
    for alarm in core.state.alarms.read().list() {
        let name = AlarmType::try_from(alarm.alarm)
            .map(|a| a.as_str_name())
            .unwrap_or("UNKNOWN");
        if excluded.contains(name) {
            debug!(alarm = name, "/health excluded alarm");
            continue;
        }
        warn!(alarm = name, "serving /health false due to an alarm");
        return Err(match AlarmType::try_from(alarm.alarm) {
            Ok(AlarmType::Nospace) => "ALARM NOSPACE".to_string(),
            Ok(AlarmType::Corrupt) => "ALARM CORRUPT".to_string(),
            _ => "ALARM UNKNOWN".to_string(),
        });
    }
    if !serializable && core.raft.status().leader == 0 {
        warn!("serving /health false; no leader");
        return Err("RAFT NO LEADER".to_string());
    }
    if let Err(e) = read(core, serializable).await {
        warn!(error = %e, "serving /health false; Range fails");
        return Err(format!("RANGE ERROR:{e}"));
    }
    debug!("serving /health true");
    Ok(())
}

/// Which endpoint a check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/livez`.
    Livez,
    /// `/readyz`.
    Readyz,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Livez => "livez",
            Kind::Readyz => "readyz",
        }
    }

    /// The checks of this endpoint, in the order they run and are listed.
    pub fn checks(self) -> &'static [&'static str] {
        match self {
            Kind::Livez => &["serializable_read"],
            Kind::Readyz => &[
                "data_corruption",
                "serializable_read",
                "linearizable_read",
                "non_learner",
            ],
        }
    }
}

async fn run_check(core: &Core, name: &str) -> Result<(), String> {
    match name {
        "data_corruption" => {
            if core.state.alarms.read().has(AlarmType::Corrupt as i32) {
                return Err("alarm activated: CORRUPT".to_string());
            }
            Ok(())
        }
        "serializable_read" => read(core, true).await,
        "linearizable_read" => read(core, false).await,
        "non_learner" => {
            if core.is_learner() {
                return Err("not supported for learner".to_string());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Runs `names` in order; returns whether all passed and the per-check lines.
async fn run_checks(core: &Core, kind: Kind, names: &[&str]) -> (bool, String) {
    let mut ok = true;
    let mut lines = String::new();
    for name in names {
        let status = match run_check(core, name).await {
            Ok(()) => {
                lines.push_str(&format!("[+]{name} ok\n"));
                "success"
            }
            Err(e) => {
                ok = false;
                lines.push_str(&format!("[-]{name} failed: {e}\n"));
                "error"
            }
        };
        HEALTHCHECK
            .with_label_values(&[kind.name(), name])
            .set(i64::from(status == "success"));
        HEALTHCHECKS
            .with_label_values(&[kind.name(), name, status])
            .inc();
    }
    (ok, lines)
}

fn checks_response(path: &str, ok: bool, lines: &str, verbose: bool) -> Response {
    if !ok {
        error!(
            path,
            reason = lines,
            status_code = 503,
            "Health check error"
        );
        return go_error(StatusCode::SERVICE_UNAVAILABLE, lines);
    }
    debug!(path, reason = lines, status_code = 200, "Health check OK");
    let body = if verbose {
        format!("{lines}ok\n")
    } else {
        "ok\n".to_string()
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `/livez` or `/readyz`: every check not excluded.
pub async fn checks(
    core: Arc<Core>,
    kind: Kind,
    method: Method,
    query: Option<String>,
) -> Response {
    let path = format!("/{}", kind.name());
    if method != Method::GET {
        warn!(path, status_code = 405, "Health request error");
        return method_not_allowed();
    }
    let pairs = query_pairs(query.as_deref());
    let mut excluded = values(&pairs, "exclude");
    let names: Vec<&str> = kind
        .checks()
        .iter()
        .copied()
        .filter(|c| !excluded.remove(*c))
        .collect();
    if !excluded.is_empty() {
        let missing: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
        warn!(
            missing_health_checks = missing.join(","),
            "some health checks cannot be excluded"
        );
    }
    let verbose = pairs.iter().any(|(k, _)| k == "verbose");
    let (ok, lines) = run_checks(&core, kind, &names).await;
    checks_response(&path, ok, &lines, verbose)
}

/// `/livez/NAME` or `/readyz/NAME`: that check alone.
pub async fn one_check(
    core: Arc<Core>,
    kind: Kind,
    name: &'static str,
    method: Method,
    query: Option<String>,
) -> Response {
    let path = format!("/{}/{name}", kind.name());
    if method != Method::GET {
        warn!(path, status_code = 405, "Health request error");
        return method_not_allowed();
    }
    let verbose = query_pairs(query.as_deref())
        .iter()
        .any(|(k, _)| k == "verbose");
    let (ok, lines) = run_checks(&core, kind, &[name]).await;
    checks_response(&path, ok, &lines, verbose)
}
