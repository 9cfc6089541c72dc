//! The YAML configuration file (`--config-file`), in etcd's format.
//!
//! Owns every use of `serde_yaml` in kvd (the crate is archived; keeping it here makes a
//! swap a one-file change). Reads the file into a YAML tree and walks it against the key
//! table in `flags.rs` rather than deriving a struct: a derived struct stops at the first
//! wrong value, while kvd reports every bad key at once and warns about unknown keys with
//! the nearest known one. Values stay raw here; `validate.rs` checks them.
//!
//! Shape, as etcd: top-level keys named like the flags (`name`, `listen-client-urls`, ...),
//! plus the blocks `client-transport-security` and `peer-transport-security`. kvd also
//! accepts YAML lists where etcd wants comma-separated strings, numbers and booleans where
//! etcd wants strings, and treats `key:` with no value or an empty string as "not set".

use std::path::Path;

use serde_yaml::Value;

use super::error::{Problem, Warning};
use super::flags::{self, Spec, Yaml};
use super::settings::{Entry, Origin, RawValue};
use super::suggest;

/// The top-level key of the client TLS block.
const CLIENT_BLOCK: &str = "client-transport-security";
/// The top-level key of the peer TLS block.
const PEER_BLOCK: &str = "peer-transport-security";

/// The settings read from a configuration file.
#[derive(Debug, Default)]
pub(crate) struct FileSettings {
    /// Values found, with the key path as origin.
    pub(crate) values: Vec<(&'static Spec, Entry)>,
    /// Unknown keys and similar notes.
    pub(crate) warnings: Vec<Warning>,
}

/// Reads and parses the configuration file at `path`.
///
/// # Errors
///
/// Every problem found: the file cannot be read (with the OS reason), is not valid YAML
/// (with the line), is not a mapping, or has values of a shape no key accepts (a mapping
/// where a value belongs, a nested list).
pub(crate) fn load_file(path: &Path) -> Result<FileSettings, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::invalid(format!(
            "cannot read configuration file {}: {e}",
            path.display()
        ))]
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses configuration text; `file` names it in messages.
pub(crate) fn parse(text: &str, file: &str) -> Result<FileSettings, Vec<Problem>> {
    let document: Value = serde_yaml::from_str(text).map_err(|e| {
        let place = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        vec![Problem::invalid(format!(
            "{file}: invalid YAML{place}: {e}"
        ))]
    })?;
    let mut walk = Walk {
        file,
        out: FileSettings::default(),
        problems: Vec::new(),
    };
    match document {
        Value::Null => {}
        Value::Mapping(map) => walk.top(&map),
        other => walk.problems.push(Problem::invalid(format!(
            "{file}: the configuration must be a mapping of keys to values, found {}",
            kind(&other)
        ))),
    }
    if walk.problems.is_empty() {
        Ok(walk.out)
    } else {
        Err(walk.problems)
    }
}

/// State of one walk over a parsed file.
struct Walk<'a> {
    file: &'a str,
    out: FileSettings,
    problems: Vec<Problem>,
}

impl Walk<'_> {
    fn top(&mut self, map: &serde_yaml::Mapping) {
        for (key, value) in map {
            let Some(key) = self.key(key, None) else {
                continue;
            };
            match key {
                CLIENT_BLOCK | PEER_BLOCK => self.block(key, value),
                _ => match flags::SPECS
                    .iter()
                    .find(|s| matches!(s.yaml, Yaml::Top(k) if k == key))
                {
                    Some(spec) => self.value(spec, key.to_string(), value),
                    None => self.unknown_top(key),
                },
            }
        }
    }

    fn block(&mut self, block: &str, value: &Value) {
        let map = match value {
            Value::Null => return,
            Value::Mapping(map) => map,
            other => {
                self.problems.push(Problem::invalid(format!(
                    "{}: '{block}' must be a mapping (cert-file: ..., key-file: ...), found {}",
                    self.file,
                    kind(other)
                )));
                return;
            }
        };
        let in_block = |s: &Spec, key: &str| match s.yaml {
            Yaml::Client(k) => block == CLIENT_BLOCK && k == key,
            Yaml::Peer(k) => block == PEER_BLOCK && k == key,
            _ => false,
        };
        for (key, value) in map {
            let Some(key) = self.key(key, Some(block)) else {
                continue;
            };
            let path = format!("{block}.{key}");
            match flags::SPECS.iter().find(|s| in_block(s, key)) {
                Some(spec) => self.value(spec, path, value),
                None => {
                    let keys = flags::SPECS.iter().filter_map(|s| match s.yaml {
                        Yaml::Client(k) if block == CLIENT_BLOCK => Some(k),
                        Yaml::Peer(k) if block == PEER_BLOCK => Some(k),
                        _ => None,
                    });
                    let hint = suggest::nearest(key, keys)
                        .map(|k| format!(" (did you mean '{block}.{k}'?)"))
                        .unwrap_or_default();
                    self.out.warnings.push(Warning::new(format!(
                        "{}: unknown key '{path}' ignored{hint}",
                        self.file
                    )));
                }
            }
        }
    }

    /// The text of a mapping key, or a problem when it is not a string.
    fn key<'v>(&mut self, key: &'v Value, block: Option<&str>) -> Option<&'v str> {
        match key {
            Value::String(s) => Some(s.as_str()),
            other => {
                let place = block.map(|b| format!(" in '{b}'")).unwrap_or_default();
                self.problems.push(Problem::invalid(format!(
                    "{}: keys must be strings, found {}{place}",
                    self.file,
                    kind(other)
                )));
                None
            }
        }
    }

    fn unknown_top(&mut self, key: &str) {
        // A flag name used as a key: say where the file keeps that setting.
        let hint = match flags::flag_spec(key).and_then(Spec::yaml_path) {
            Some(path) => Some(path),
            None => suggest::nearest(
                key,
                flags::SPECS
                    .iter()
                    .filter_map(|s| match s.yaml {
                        Yaml::Top(k) => Some(k),
                        _ => None,
                    })
                    .chain([CLIENT_BLOCK, PEER_BLOCK]),
            )
            .map(str::to_string),
        };
        let hint = hint
            .map(|k| format!(" (did you mean '{k}'?)"))
            .unwrap_or_default();
        self.out.warnings.push(Warning::new(format!(
            "{}: unknown key '{key}' ignored{hint}",
            self.file
        )));
    }

    fn value(&mut self, spec: &'static Spec, path: String, value: &Value) {
        let raw = match value {
            Value::Null => return,
            Value::String(s) if s.trim().is_empty() => return,
            Value::Sequence(items) => {
                let mut list = Vec::new();
                for item in items {
                    match scalar(item) {
                        Some(Some(s)) => list.push(s),
                        Some(None) => {}
                        None => {
                            self.problems.push(Problem::invalid(format!(
                                "{}: '{path}' must be a list of plain values, found an item that is {}",
                                self.file,
                                kind(item)
                            )));
                            return;
                        }
                    }
                }
                RawValue::List(list)
            }
            Value::Bool(b) => RawValue::Bool(*b),
            Value::Number(n) => RawValue::Number(n.to_string()),
            Value::String(s) => RawValue::Text(s.clone()),
            Value::Mapping(_) | Value::Tagged(_) => {
                self.problems.push(Problem::invalid(format!(
                    "{}: '{path}' must be a plain value, found {}",
                    self.file,
                    kind(value)
                )));
                return;
            }
        };
        self.out.values.push((
            spec,
            Entry {
                value: raw,
                origin: Origin::File(path),
            },
        ));
    }
}

/// A scalar list item as text: `Some(None)` for null, `None` for a non-scalar.
fn scalar(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::Bool(b) => Some(Some(b.to_string())),
        Value::Number(n) => Some(Some(n.to_string())),
        Value::String(s) => Some(Some(s.trim().to_string())),
        Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => None,
    }
}

/// A YAML value's kind, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn values(s: &FileSettings) -> Vec<(&str, RawValue, &str)> {
        s.values
            .iter()
            .map(|(spec, e)| (spec.name, e.value.clone(), e.origin.label()))
            .collect()
    }

    #[test]
    fn reads_top_level_keys_and_blocks() {
        let text = "\
name: n1
heartbeat-interval: 100
initial-election-tick-advance: false
listen-client-urls: https://127.0.0.1:2379,https://127.0.0.1:22379
listen-peer-urls: [https://127.0.0.1:2380, 'https://127.0.0.1:22380']
log-outputs: [stderr]
wal-dir:
data-dir: ''
client-transport-security:
  cert-file: certs/server.crt
  client-cert-auth: true
  crl-file: certs/crl.pem
peer-transport-security:
  trusted-ca-file: certs/ca.crt
  allowed-cn: member
";
        let s = parse(text, "c.yaml").unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(
            values(&s),
            vec![
                ("name", RawValue::Text("n1".into()), "name"),
                (
                    "heartbeat-interval",
                    RawValue::Number("100".into()),
                    "heartbeat-interval"
                ),
                (
                    "initial-election-tick-advance",
                    RawValue::Bool(false),
                    "initial-election-tick-advance"
                ),
                (
                    "listen-client-urls",
                    RawValue::Text("https://127.0.0.1:2379,https://127.0.0.1:22379".into()),
                    "listen-client-urls"
                ),
                (
                    "listen-peer-urls",
                    RawValue::List(vec![
                        "https://127.0.0.1:2380".into(),
                        "https://127.0.0.1:22380".into()
                    ]),
                    "listen-peer-urls"
                ),
                (
                    "log-outputs",
                    RawValue::List(vec!["stderr".into()]),
                    "log-outputs"
                ),
                (
                    "cert-file",
                    RawValue::Text("certs/server.crt".into()),
                    "client-transport-security.cert-file"
                ),
                (
                    "client-cert-auth",
                    RawValue::Bool(true),
                    "client-transport-security.client-cert-auth"
                ),
                (
                    "client-crl-file",
                    RawValue::Text("certs/crl.pem".into()),
                    "client-transport-security.crl-file"
                ),
                (
                    "peer-trusted-ca-file",
                    RawValue::Text("certs/ca.crt".into()),
                    "peer-transport-security.trusted-ca-file"
                ),
                (
                    "peer-cert-allowed-cn",
                    RawValue::Text("member".into()),
                    "peer-transport-security.allowed-cn"
                ),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_warnings_with_the_nearest_key() {
        let text = "\
advertise-client-url: https://10.0.0.1:2379
peer-cert-file: p.crt
totally-unrelated-thing: 1
client-transport-security:
  cert-fil: a
";
        let s = parse(text, "c.yaml").unwrap();
        let w: Vec<&str> = s.warnings.iter().map(Warning::message).collect();
        assert_eq!(
            w,
            vec![
                "c.yaml: unknown key 'advertise-client-url' ignored (did you mean 'advertise-client-urls'?)",
                "c.yaml: unknown key 'peer-cert-file' ignored (did you mean 'peer-transport-security.cert-file'?)",
                "c.yaml: unknown key 'totally-unrelated-thing' ignored",
                "c.yaml: unknown key 'client-transport-security.cert-fil' ignored (did you mean 'client-transport-security.cert-file'?)",
            ]
        );
        assert!(s.values.is_empty());
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let problems = parse("name: a\n  bad: [\n", "c.yaml").unwrap_err();
        assert_eq!(problems.len(), 1);
        let m = problems[0].message();
        assert!(
            m.starts_with("c.yaml: invalid YAML (line 2, column 6): "),
            "{m}"
        );
        let problems = parse("name: a\nname: b\n", "c.yaml").unwrap_err();
        assert!(problems[0]
            .message()
            .contains("duplicate entry with key \"name\""));
    }

    #[test]
    fn shape_errors_are_all_reported() {
        let text = "\
name: {a: 1}
client-transport-security: 5
listen-client-urls: [[a]]
";
        let problems = parse(text, "c.yaml").unwrap_err();
        let m: Vec<&str> = problems.iter().map(Problem::message).collect();
        assert_eq!(
            m,
            vec![
                "c.yaml: 'name' must be a plain value, found a mapping",
                "c.yaml: 'client-transport-security' must be a mapping (cert-file: ..., key-file: ...), found a number",
                "c.yaml: 'listen-client-urls' must be a list of plain values, found an item that is a list",
            ]
        );
    }

    #[test]
    fn empty_and_non_mapping_documents() {
        assert!(parse("", "c.yaml").unwrap().values.is_empty());
        assert!(parse("# only a comment\n", "c.yaml")
            .unwrap()
            .values
            .is_empty());
        let problems = parse("- a\n", "c.yaml").unwrap_err();
        assert_eq!(
            problems[0].message(),
            "c.yaml: the configuration must be a mapping of keys to values, found a list"
        );
    }

    #[test]
    fn unreadable_file_names_file_and_os_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.yaml");
        let problems = load_file(&path).unwrap_err();
        let m = problems[0].message();
        assert!(m.starts_with(&format!(
            "cannot read configuration file {}: ",
            path.display()
        )));
        assert!(m.contains("No such file or directory"), "{m}");
    }
}
