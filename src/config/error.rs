//! The error and warning values that configuration loading hands back.
//!
//! Owns [`ConfigError`] (every problem found, plus the process exit code to use) and
//! [`Warning`] (a printable note about a setting that was accepted but deserves attention).
//! Must not import the other config modules: they all build these values.

use std::fmt;

/// Exit status for a command line that does not parse (unknown flag, bad flag value), as
/// Go's flag package and therefore etcd use.
pub const EXIT_USAGE: i32 = 2;

/// Exit status for every other configuration problem, as etcd uses.
pub const EXIT_INVALID: i32 = 1;

/// One configuration problem, already phrased for the user: it names the flag, variable or
/// file key at fault and says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    message: String,
    usage: bool,
}

impl Problem {
    /// A problem with the configuration's values (exit status 1).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            usage: false,
        }
    }

    /// A problem with the command line's syntax (exit status 2, as Go's flag package).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            usage: true,
        }
    }

    /// The text shown to the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when this is a command-line syntax problem (unknown flag, unparsable flag value).
    pub fn is_usage(&self) -> bool {
        self.usage
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why kvd refused to start: every problem found in the command line, the environment and
/// the configuration file, each on its own line.
///
/// `main` prints it to stderr and exits with [`ConfigError::exit_code`]: 2 when the command
/// line itself does not parse (as etcd), 1 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    /// Builds an error from the problems found. `problems` should not be empty.
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        ConfigError { problems }
    }

    /// Every problem found, in the order they were found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The process exit status to use: 2 for command-line syntax problems, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.problems.iter().any(Problem::is_usage) {
            EXIT_USAGE
        } else {
            EXIT_INVALID
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(problem.message())?;
        }
        if self.exit_code() == EXIT_USAGE {
            f.write_str("\nRun 'kvd --help' for the list of flags.")?;
        }
        Ok(())
    }
}

/// Something kvd accepted but the user should know about: a deprecated flag, an ignored
/// flag or variable, an unknown configuration key, a setting that has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    message: String,
}

impl Warning {
    /// Builds a warning from its text.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Warning {
            message: message.into(),
        }
    }

    /// The text shown to the user.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_two_when_any_problem_is_usage() {
        let err = ConfigError::new(vec![Problem::invalid("a"), Problem::usage("b")]);
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "a\nb\nRun 'kvd --help' for the list of flags."
        );
    }

    #[test]
    fn exit_code_is_one_for_value_problems() {
        let err = ConfigError::new(vec![Problem::invalid("a"), Problem::invalid("b")]);
        assert_eq!(err.exit_code(), 1);
        assert_eq!(err.to_string(), "a\nb");
    }
}
