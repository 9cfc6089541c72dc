//! What one finished command produced, with the checks every suite makes on it.

use serde_json::Value;

/// What one finished command (`etcdctl`, `kvd`, `curl`, ...) produced.
#[derive(Clone, Debug)]
pub struct Output {
    /// Exit code (128 + signal if killed; 124 if it hit the harness timeout).
    pub status: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// The command line, for messages.
    pub cmd: String,
}

impl Output {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(
            self.status, 0,
            "`{}` failed (exit {}):\nstdout: {}\nstderr: {}",
            self.cmd, self.status, self.stdout, self.stderr
        );
        self
    }

    /// stderr without etcdctl's JSON (zap) log lines and blank lines.
    pub fn err_lines(&self) -> Vec<String> {
        user_stderr(&self.stderr)
    }

    /// Parses stdout as JSON (panics with the text if it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("`{}`: stdout is not JSON ({e}): {}", self.cmd, self.stdout))
    }
}

/// stderr lines a user reads: drops zap JSON log lines and blank lines.
pub fn user_stderr(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('{'))
        .map(str::to_string)
        .collect()
}
