//! One line that names every cause of an error: for termination messages, conditions and
//! logs, in the operators and in the backup data path alike.

use std::error::Error;

/// Joins an error and its sources with `: `. Some libraries repeat their
/// source inside their own message; a cause already present in the text so far
/// is skipped so the line stays readable and within Kubernetes' 4 KiB limit.
pub fn describe(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = Outer(Middle(io));
        assert_eq!(describe(&error), "outer: middle: refused");
    }
}
