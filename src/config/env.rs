//! `ETCD_*` environment variables.
//!
//! Owns the mapping from variables to flags (`ETCD_PEER_TRUSTED_CA_FILE` sets
//! `--peer-trusted-ca-file`) and etcd's rules: an empty variable is ignored, a flag on the
//! command line wins over its variable, unknown `ETCD_*` variables are reported. Takes the
//! environment as a slice so tests never touch the process environment.

use super::error::Warning;
use super::flags::{self, Spec, Status};
use super::suggest;

/// The variable naming the configuration file; read separately because it decides whether
/// the other variables count at all.
pub(crate) const CONFIG_FILE_VAR: &str = "ETCD_CONFIG_FILE";

/// The prefix of the variables kvd reads.
const PREFIX: &str = "ETCD_";

/// A flag value taken from a variable.
#[derive(Debug, Clone)]
pub(crate) struct EnvValue {
    /// The flag's row.
    pub(crate) spec: &'static Spec,
    /// The variable's name.
    pub(crate) var: String,
    /// Its value (never empty).
    pub(crate) value: String,
}

/// The flags that `ETCD_*` variables set, and warnings about the others.
#[derive(Debug, Default)]
pub(crate) struct EnvSettings {
    /// Values to use, in environment order.
    pub(crate) values: Vec<EnvValue>,
    /// Shadowed, unknown and legacy variables.
    pub(crate) warnings: Vec<Warning>,
}

/// The flag row a variable name belongs to.
fn spec_for_var(var: &str) -> Option<&'static Spec> {
    flags::SPECS.iter().find(|s| s.flag && s.env_name() == var)
}

/// The value of `ETCD_CONFIG_FILE`, if set and not empty.
pub(crate) fn config_file(env: &[(String, String)]) -> Option<&str> {
    env.iter()
        .rev()
        .find(|(k, v)| k == CONFIG_FILE_VAR && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Reads the `ETCD_*` variables for a start from flags.
///
/// `on_command_line` says whether a flag was given on the command line: its variable is
/// then not used, and kvd warns with etcd's words (etcd 3.4 makes this fatal; kvd lets the
/// flag win). `ETCD_CONFIG_FILE` is left to the caller; `ETCD_VERSION` is ignored (Docker
/// images often set it to a version string, which made etcd 3.4 refuse to start).
pub(crate) fn read(
    env: &[(String, String)],
    on_command_line: impl Fn(&str) -> bool,
) -> EnvSettings {
    let mut out = EnvSettings::default();
    for (var, value) in env {
        if !var.starts_with(PREFIX) || var == CONFIG_FILE_VAR || var == "ETCD_VERSION" {
            continue;
        }
        let Some(spec) = spec_for_var(var) else {
            out.warnings.push(unknown(var, value));
            continue;
        };
        if on_command_line(spec.name) {
            out.warnings.push(Warning::new(format!(
                "conflicting environment variable {var:?} is shadowed by corresponding command-line flag (either unset environment variable or disable flag); kvd uses --{}",
                spec.name
            )));
            continue;
        }
        if value.is_empty() {
            continue;
        }
        if spec.status == Status::Legacy {
            out.warnings.push(Warning::new(format!(
                "flag \"-{}\" is no longer supported - ignoring {var}.",
                spec.name
            )));
            continue;
        }
        out.values.push(EnvValue {
            spec,
            var: var.clone(),
            value: value.clone(),
        });
    }
    out
}

/// Warnings for every `ETCD_*` variable when a configuration file is used: etcd ignores
/// them silently, kvd says so.
pub(crate) fn ignored_by_config_file(env: &[(String, String)], file: &str) -> Vec<Warning> {
    env.iter()
        .filter(|(var, _)| {
            var.starts_with(PREFIX) && var != CONFIG_FILE_VAR && var != "ETCD_VERSION"
        })
        .map(|(var, _)| {
            let hint = spec_for_var(var)
                .and_then(Spec::yaml_path)
                .map(|key| format!("; set '{key}' in the file instead"))
                .unwrap_or_default();
            Warning::new(format!(
                "environment variable {var} is ignored because the configuration file {file} is used{hint}"
            ))
        })
        .collect()
}

/// The warning for an `ETCD_*` variable that matches no flag (etcd's text plus a suggestion).
fn unknown(var: &str, value: &str) -> Warning {
    let mut message = format!("unrecognized environment variable {var}={value}");
    let names: Vec<String> = flags::suggestable_flags()
        .map(|name| {
            flags::flag_spec(name)
                .map(Spec::env_name)
                .unwrap_or_default()
        })
        .collect();
    if let Some(near) = suggest::nearest(var, names.iter().map(String::as_str)) {
        message.push_str(&format!(" (did you mean {near}?)"));
    }
    Warning::new(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn maps_variables_to_flags() {
        let e = env(&[
            ("ETCD_NAME", "n1"),
            ("ETCD_PEER_TRUSTED_CA_FILE", "ca.crt"),
            ("ETCD_CLIENT_CERT_AUTH", "true"),
            ("PATH", "/bin"),
            ("ETCDCTL_API", "3"),
        ]);
        let read = read(&e, |_| false);
        assert!(read.warnings.is_empty());
        let got: Vec<(&str, &str)> = read
            .values
            .iter()
            .map(|v| (v.spec.name, v.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("name", "n1"),
                ("peer-trusted-ca-file", "ca.crt"),
                ("client-cert-auth", "true"),
            ]
        );
    }

    #[test]
    fn command_line_wins_with_etcds_warning() {
        let read = read(&env(&[("ETCD_NAME", "x")]), |name| name == "name");
        assert!(read.values.is_empty());
        assert_eq!(
            read.warnings[0].message(),
            "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag); kvd uses --name"
        );
    }

    #[test]
    fn unknown_variables_are_warned_about() {
        let read = read(&env(&[("ETCD_DATADIR", "/d"), ("ETCD_FOO", "x")]), |_| {
            false
        });
        assert!(read.values.is_empty());
        assert_eq!(
            read.warnings[0].message(),
            "unrecognized environment variable ETCD_DATADIR=/d (did you mean ETCD_DATA_DIR?)"
        );
        assert_eq!(
            read.warnings[1].message(),
            "unrecognized environment variable ETCD_FOO=x"
        );
    }

    #[test]
    fn empty_variables_and_special_ones_are_skipped() {
        let read = read(
            &env(&[
                ("ETCD_NAME", ""),
                ("ETCD_VERSION", "v3.4.23"),
                ("ETCD_CONFIG_FILE", "c.yaml"),
            ]),
            |_| false,
        );
        assert!(read.values.is_empty());
        assert!(read.warnings.is_empty());
    }

    #[test]
    fn config_file_variable() {
        assert_eq!(
            config_file(&env(&[("ETCD_CONFIG_FILE", "c.yaml")])),
            Some("c.yaml")
        );
        assert_eq!(config_file(&env(&[("ETCD_CONFIG_FILE", "")])), None);
        let warnings = ignored_by_config_file(
            &env(&[
                ("ETCD_CERT_FILE", "a"),
                ("ETCD_CONFIG_FILE", "c.yaml"),
                ("HOME", "/"),
            ]),
            "c.yaml",
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].message(),
            "environment variable ETCD_CERT_FILE is ignored because the configuration file c.yaml is used; set 'client-transport-security.cert-file' in the file instead"
        );
    }
}
