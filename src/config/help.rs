//! The `kvd --help` text, generated from the setting table so it never drifts from what the
//! parser accepts.
//!
//! Owns only formatting: usage lines like etcd's, then each flag with its default and
//! description, grouped as etcd groups them, with notes for flags kvd accepts but does not
//! act on.

use super::flags::{Section, Since, Spec, Status, SPECS};

/// The usage lines printed before the flags.
const USAGE: &str = "\
Usage:

  kvd [flags]
    Start a kvd member (an etcd-compatible key-value server).

  kvd --version
    Show the version of kvd.

  kvd -h | --help
    Show the help information about kvd.

  kvd --config-file FILE
    Path to the server configuration file (etcd's YAML format). Note that if a configuration file is provided, other command line flags and environment variables will be ignored.

Flags are written -flag value, --flag value, -flag=value or --flag=value; boolean flags are
given bare (--client-cert-auth) or as --flag=true / --flag=false. Lists are comma separated.
Every flag can also be set by an environment variable: ETCD_ and the flag name in upper case
with '-' as '_' (ETCD_DATA_DIR, ETCD_PEER_TRUSTED_CA_FILE); a flag on the command line wins.
";

/// The full help text.
pub(crate) fn text() -> String {
    let mut out = String::from(USAGE);
    for (section, title) in Section::ORDER {
        out.push('\n');
        out.push_str(title);
        out.push_str(":\n");
        for spec in SPECS.iter().filter(|s| s.flag && s.section == *section) {
            push_flag(&mut out, spec);
        }
    }
    out
}

fn push_flag(out: &mut String, spec: &Spec) {
    let default = if spec.kind == super::flags::Kind::Bool || !spec.default.is_empty() {
        format!(" '{}'", spec.default)
    } else {
        " ''".to_string()
    };
    out.push_str(&format!("  --{}{default}\n    {}\n", spec.name, spec.help));
    let note = match spec.status {
        Status::Inert(why) => Some(format!(
            "[accepted for etcd compatibility, no effect: {why}]"
        )),
        Status::Unsupported(why) => Some(format!("[not supported: {why}]")),
        Status::Deprecated(instead) => Some(format!("[deprecated: use {instead}]")),
        Status::Used | Status::Legacy => None,
    };
    if let Some(note) = note {
        out.push_str(&format!("    {note}\n"));
    }
    if spec.since == Since::Etcd35 {
        out.push_str("    [from etcd 3.5]\n");
    }
    if spec.since == Since::Etcd36 {
        out.push_str("    [from etcd 3.6]\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_flag_once_with_its_default() {
        let text = text();
        assert!(text.starts_with("Usage:\n"));
        for spec in SPECS {
            let line = format!("\n  --{} ", spec.name);
            let shown = spec.flag && spec.section != Section::Hidden;
            assert_eq!(
                text.matches(&line).count(),
                usize::from(shown),
                "{}",
                spec.name
            );
        }
        assert!(text.contains("  --name 'default'\n    Human-readable name for this member.\n"));
        assert!(text.contains("  --data-dir '${name}.etcd'\n"));
        assert!(text.contains("  --client-cert-auth 'false'\n"));
        assert!(text.contains("  --ca-file ''\n"));
        assert!(text.contains("[deprecated: use --trusted-ca-file and --client-cert-auth]"));
        assert!(text.contains("--config-file FILE"));
        assert!(!text.contains("--cluster-active-size"));
    }
}
