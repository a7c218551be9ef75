//! The one-line JSON result of `verify` (a restore drill), left in the termination message
//! like the result of `dump` ([`crate::report`]), which the controller records in the
//! Backup's `status.lastVerification`.

use crate::report::{keep_end, publish_line, render_within_limit};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a passed drill checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySummary {
    /// The run whose artifact was restored.
    pub run_id: String,
    pub location: String,
    pub tables_checked: u64,
    pub rows_checked: u64,
    /// False when the artifact's manifest has no row counts (written by an older version).
    pub row_counts_compared: bool,
    pub query_checked: bool,
    pub duration_seconds: u64,
}

/// What a drill ended with. Untagged like [`crate::report::Outcome`]: a pass has the
/// summary's fields, a failure only `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerifyOutcome {
    Passed(VerifySummary),
    Failed { error: String },
}

impl VerifyOutcome {
    /// One JSON line of at most [`crate::report::TERMINATION_MESSAGE_LIMIT`] bytes; a long
    /// error keeps its end. A summary is small; only an absurd location is cut.
    pub fn render(&self) -> String {
        render_within_limit(self, |outcome, excess| match outcome {
            Self::Failed { error } => *error = keep_end(error, excess),
            Self::Passed(summary) => summary.location = keep_end(&summary.location, excess),
        })
    }

    pub fn parse(message: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(message)
    }

    pub fn publish(&self, termination_log: &Path) {
        publish_line(&self.render(), termination_log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TERMINATION_MESSAGE_LIMIT;

    fn summary() -> VerifySummary {
        VerifySummary {
            run_id: "20260102T020000Z".into(),
            location: "/backups/shop/nightly/20260102T020000Z/dump.pgdump".into(),
            tables_checked: 3,
            rows_checked: 2000,
            row_counts_compared: true,
            query_checked: false,
            duration_seconds: 12,
        }
    }

    #[test]
    fn passes_and_failures_parse_back_and_are_told_apart() {
        let passed = VerifyOutcome::Passed(summary());
        assert_eq!(VerifyOutcome::parse(&passed.render()).unwrap(), passed);
        let failed = VerifyOutcome::Failed {
            error: "row counts differ".into(),
        };
        assert_eq!(VerifyOutcome::parse(&failed.render()).unwrap(), failed);
        let json: serde_json::Value = serde_json::from_str(&passed.render()).unwrap();
        for field in [
            "runId",
            "tablesChecked",
            "rowsChecked",
            "rowCountsCompared",
            "durationSeconds",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
    }

    #[test]
    fn long_errors_keep_their_end_within_the_limit() {
        let error = format!("{}the table is missing", "x".repeat(10_000));
        let line = VerifyOutcome::Failed { error }.render();
        assert!(line.len() <= TERMINATION_MESSAGE_LIMIT);
        let VerifyOutcome::Failed { error } = VerifyOutcome::parse(&line).unwrap() else {
            panic!("not a failure: {line}");
        };
        assert!(error.ends_with("the table is missing"));
    }
}
