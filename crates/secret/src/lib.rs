//! A password or key held in memory, kept out of logs and error messages.

use std::fmt;

/// Holds a password or key. `Debug` and `Display` print a placeholder, so a settings struct
/// that derives `Debug` can be logged whole without leaking it. Reading the value takes
/// [`SecretString::expose_secret`], which a reviewer can grep for.
///
/// `From<String>` lets clap parse straight into it (`value_parser!` picks that up).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

/// What formatting prints instead of the value.
const PLACEHOLDER: &str = "[redacted]";

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: for the one place that must hand it on (an environment variable
    /// of a child process, a request signer), never for a message.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString({PLACEHOLDER})")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PLACEHOLDER)
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = SecretString::new("hunter2");
        for text in [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{secret}"),
            format!("{:?}", Some(&secret)),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(secret.expose_secret(), "hunter2");
    }
}
