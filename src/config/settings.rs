//! The raw, not yet validated settings gathered from flags, `ETCD_*` variables or a YAML file.
//!
//! Owns [`RawValue`] (a value as written), [`Origin`] (where it was written, for messages)
//! and [`RawSettings`] (the merged map from setting name to value). Knows nothing about
//! what a value means: `validate.rs` turns these into real types.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A setting's value as written by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawValue {
    /// Text: every flag and variable value, and YAML strings.
    Text(String),
    /// A YAML number, in YAML's own spelling after parsing (`16` for `0x10`).
    Number(String),
    /// A YAML boolean.
    Bool(bool),
    /// A YAML sequence of scalars.
    List(Vec<String>),
}

impl RawValue {
    /// The value as one line of text, for messages (`a,b` for lists).
    pub(crate) fn display(&self) -> String {
        match self {
            RawValue::Text(s) | RawValue::Number(s) => s.clone(),
            RawValue::Bool(b) => b.to_string(),
            RawValue::List(items) => items.join(","),
        }
    }
}

/// Where a value came from; its label is how messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A command-line flag; the label is `--name` (the flag actually typed, so an alias
    /// such as `--ca-file` is named as such).
    Flag(String),
    /// An environment variable such as `ETCD_NAME`.
    Env(String),
    /// A key of the configuration file, as a dotted path
    /// (`client-transport-security.cert-file`).
    File(String),
}

impl Origin {
    /// The name of the flag, variable or key, as messages show it.
    pub(crate) fn label(&self) -> &str {
        match self {
            Origin::Flag(s) | Origin::Env(s) | Origin::File(s) => s,
        }
    }
}

/// One value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The value as written.
    pub(crate) value: RawValue,
    /// Where it was written.
    pub(crate) origin: Origin,
}

/// Where the settings come from: etcd reads either the command line and environment, or a
/// configuration file and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Flags and `ETCD_*` variables.
    Flags,
    /// The YAML file at this path.
    File(PathBuf),
}

/// The settings gathered from one mode, keyed by setting name (the flag name).
#[derive(Debug, Clone)]
pub(crate) struct RawSettings {
    mode: Mode,
    entries: BTreeMap<&'static str, Entry>,
}

impl RawSettings {
    /// No settings yet.
    pub(crate) fn new(mode: Mode) -> Self {
        RawSettings {
            mode,
            entries: BTreeMap::new(),
        }
    }

    /// Where these settings come from.
    pub(crate) fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Sets `name`, replacing an earlier value (the last flag given wins, as in Go).
    pub(crate) fn set(&mut self, name: &'static str, entry: Entry) {
        self.entries.insert(name, entry);
    }

    /// The value of `name`, if the user gave one.
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// True when the user gave a value for `name`.
    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Every value given, by setting name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &Entry)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }
}
