//! One line of `kvd pki check`'s report: a [`Finding`] and its [`Level`], made by the file
//! checks ([`super::check`]) and the live handshake ([`super::probe`]).

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Checked and fine.
    Ok,
    /// Works, but worth fixing.
    Warn,
    /// Broken: TLS will fail.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Severity.
    pub level: Level,
    /// The sentence.
    pub text: String,
}

impl Finding {
    /// A finding of level ok.
    pub fn ok(text: impl Into<String>) -> Self {
        Finding {
            level: Level::Ok,
            text: text.into(),
        }
    }
    /// A finding of level warn.
    pub fn warn(text: impl Into<String>) -> Self {
        Finding {
            level: Level::Warn,
            text: text.into(),
        }
    }
    /// A finding of level fail.
    pub fn fail(text: impl Into<String>) -> Self {
        Finding {
            level: Level::Fail,
            text: text.into(),
        }
    }
}
