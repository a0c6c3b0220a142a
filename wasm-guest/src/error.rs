use std::fmt;

/// Why a policy could not reach a decision: the request or the settings did
/// not have the shape the policy reads. The host reports it as a failure of
/// the policy, decided by the policy's `failurePolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    /// Wraps a JSON error with what was being read.
    pub(crate) fn json(what: &str, err: serde_json::Error) -> Self {
        Self::new(format!("cannot read {what}: {err}"))
    }

    /// Says which object of the request the error is about.
    pub(crate) fn within(self, what: &str) -> Self {
        Self::new(format!("cannot read {what} as a Pod: {}", self.message))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
