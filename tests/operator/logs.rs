//! etcd's logging flags: `--logger zap` JSON lines that log pipelines built for etcd parse
//! (one object per line, `level`, `ts`, `caller`, `msg` first, etcd's timestamp layout),
//! `--log-outputs` (files, stdout, stderr, `default`), `--log-level`, and etcd 3.6's
//! `--log-format console`, whose lines are checked against those of etcd 3.5's `etcdutl`
//! (which writes zap's console encoding).

use std::time::Duration;

use serde_json::Value;

use crate::harness::{etcd35_bin, etcdutl35_bin, http, kvd_bin, start, Node, Ports};

/// Checks one JSON log line the way a pipeline for etcd reads it; returns the object.
fn zap_json(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {line}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        line.find("\"level\"")
            .zip(line.find("\"ts\""))
            .zip(line.find("\"caller\""))
            .zip(line.find("\"msg\""))
            .map(|(((l, t), c), m)| l < t && t < c && c < m && l == 1),
        Some(true),
        "level, ts, caller, msg must come first, in that order: {line}"
    );
    assert!(keys.contains(&"msg"), "{line}");
    assert!(
        ["debug", "info", "warn", "error", "panic", "fatal"]
            .contains(&v["level"].as_str().unwrap_or("")),
        "{line}"
    );
    assert!(etcd_timestamp(v["ts"].as_str().unwrap_or("")), "{line}");
    let caller = v["caller"].as_str().unwrap_or("");
    let (file, number) = caller.rsplit_once(':').unwrap_or(("", ""));
    assert!(
        file.contains('/') && number.parse::<u32>().is_ok(),
        "{line}"
    );
    v
}

/// `2006-01-02T15:04:05[.999999](Z|±hhmm)`: etcd 3.5's layouts (milliseconds in 3.5.1,
/// microseconds without trailing zeros from 3.5.8).
fn etcd_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let layout = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let mut rest = &ts[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.chars().take_while(char::is_ascii_digit).count();
        if n == 0 || n > 6 {
            return false;
        }
        rest = &frac[n..];
    }
    let zone = rest == "Z"
        || (rest.len() == 5
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest[1..].chars().all(|c| c.is_ascii_digit()));
    layout && zone
}

#[test]
fn the_timestamp_check_takes_etcds_layouts() {
    assert!(etcd_timestamp("2024-05-01T10:00:00.123Z"));
    assert!(etcd_timestamp("2024-05-01T10:00:00.12345+0200"));
    assert!(etcd_timestamp("2024-05-01T10:00:00Z"));
    assert!(!etcd_timestamp("2024-05-01 10:00:00Z"));
    assert!(!etcd_timestamp("1714557600.123"));
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn zap_lines_parse_as_etcds_do() {
    require_etcd35!();
    // etcd 3.5.1 (zap is its default logger) as the reference for the shape.
    let (mut etcd, _) = start(&etcd35_bin(), &["--logger", "zap"]);
    etcd.stop();
    // (etcd's gRPC library also writes plain `WARNING:` lines of its own there.)
    let theirs = etcd.stderr();
    let reference: Vec<&str> = lines(&theirs)
        .into_iter()
        .filter(|l| l.starts_with('{'))
        .collect();
    assert!(reference.len() >= 10, "{theirs}");
    for l in reference {
        zap_json(l);
    }
    let (mut kvd, p) = start(&kvd_bin(), &["--logger", "zap"]);
    // A warning with fields: an exclusion that names no check.
    http(&format!("{}/readyz?exclude=nothing", p.client_url()), &[]);
    kvd.stop();
    let err = kvd.stderr();
    let all: Vec<Value> = lines(&err).into_iter().map(zap_json).collect();
    assert!(all.len() >= 4, "{err}");
    let warn = all
        .iter()
        .find(|v| v["msg"] == "some health checks cannot be excluded")
        .unwrap_or_else(|| panic!("no warning line in:\n{err}"));
    assert_eq!(warn["level"], "warn");
    assert_eq!(warn["missing_health_checks"], "\"nothing\"");
    assert!(kvd.stdout().is_empty(), "stdout: {}", kvd.stdout());
}

#[test]
fn outputs_go_to_every_file_and_stdout_and_levels_filter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = dir.path().join("a.log");
    let outputs = format!("{},stdout", a.display());
    let (mut kvd, p) = start(
        &kvd_bin(),
        &[
            "--logger",
            "zap",
            "--log-level",
            "warn",
            "--log-outputs",
            &outputs,
        ],
    );
    http(&format!("{}/readyz?exclude=nothing", p.client_url()), &[]);
    kvd.stop();
    let file = std::fs::read_to_string(&a).expect("log file");
    assert_eq!(file, kvd.stdout(), "the file and stdout get the same lines");
    let levels: Vec<String> = lines(&file)
        .into_iter()
        .map(|l| {
            zap_json(l)["level"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(levels.contains(&"warn".to_string()), "{file}");
    assert!(
        levels.iter().all(|l| l == "warn" || l == "error"),
        "{levels:?}"
    );
    assert!(kvd.stderr().is_empty(), "stderr: {}", kvd.stderr());
}

/// zap's console line: time, level, caller, message, then the fields as JSON, tab-separated.
fn console_line(line: &str) {
    let parts: Vec<&str> = line.split('\t').collect();
    assert!(parts.len() == 4 || parts.len() == 5, "{line}");
    assert!(etcd_timestamp(parts[0]), "{line}");
    assert!(
        ["debug", "info", "warn", "error"].contains(&parts[1]),
        "{line}"
    );
    assert!(parts[2].contains('/') && parts[2].contains(':'), "{line}");
    if let Some(fields) = parts.get(4) {
        let v: Value = serde_json::from_str(fields).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object(), "{line}");
        // zap's console encoder spaces its JSON: `{"k": "v", "n": 1}`.
        assert!(fields.contains("\": "), "{line}");
    }
}

#[test]
fn console_lines_read_as_zaps() {
    require_etcd35!();
    // etcd 3.5's etcdutl logs with zap's console encoder: the reference for the shape.
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut etcd, ep) = start(&etcd35_bin(), &[]);
    let db = dir.path().join("s.db");
    crate::harness::ctl(
        &crate::harness::etcdctl35_bin(),
        &ep.endpoint(),
        &["snapshot", "save", &db.display().to_string()],
    )
    .ok();
    etcd.stop();
    let restore = std::process::Command::new(etcdutl35_bin())
        .args([
            "snapshot",
            "restore",
            &db.display().to_string(),
            "--data-dir",
        ])
        .arg(dir.path().join("restored"))
        .output()
        .expect("etcdutl");
    let reference = String::from_utf8_lossy(&restore.stderr).to_string();
    assert!(!lines(&reference).is_empty());
    for l in lines(&reference) {
        console_line(l);
    }
    let (mut kvd, _) = start(&kvd_bin(), &["--logger", "zap", "--log-format", "console"]);
    kvd.stop();
    let err = kvd.stderr();
    assert!(lines(&err).len() >= 4, "{err}");
    for l in lines(&err) {
        console_line(l);
    }
}

#[test]
fn bad_logging_flags_are_refused_with_etcds_words() {
    for (flags, words) in [
        (
            vec!["--log-outputs", "default,stdout"],
            r#"multi logoutput for "default" is not supported yet"#,
        ),
        (
            vec!["--log-format", "xml"],
            "unknown log format: xml, supported values json, console",
        ),
        (
            vec!["--log-outputs", "/no/such/dir/kvd.log"],
            "cannot open log output /no/such/dir/kvd.log",
        ),
    ] {
        let p = Ports::new("m1");
        let mut node = Node::new(&kvd_bin(), Vec::new());
        let mut args = p.flags(&node.dir().join("data"), "");
        args.extend(flags.iter().map(|s| s.to_string()));
        *node.args_mut() = args;
        node.launch();
        let code = node.wait_exit(Duration::from_secs(20));
        assert!(matches!(code, Some(c) if c != 0), "{flags:?}: {code:?}");
        assert!(
            node.stderr().contains(words),
            "{flags:?}: {}",
            node.stderr()
        );
    }
}
