//! The one-line JSON result of `dump` and `restore`: printed on stdout and
//! written to the Kubernetes termination log, where the controller reads it
//! from the Pod's status. The data path fills a [`RunSummary`] from what it did
//! (`backup_data::run_summary`); this module only fixes its form and size.

use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::Path;

/// Kubernetes keeps at most this many bytes of a termination message.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;
/// The file Kubernetes reads unless the container says otherwise.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// What a successful run did, as the controller records it in the Backup's or Restore's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub location: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub run_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub server_version: String,
    /// How the artifact is compressed; absent from older Jobs. Boxed: the summary travels
    /// inside enums whose other variants are small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Box<CompressionReport>>,
    /// Run ids deleted by retention; present for `dump` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<Vec<String>>,
    /// How many pruned run ids were left out to fit the size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_omitted: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// How a run's artifact is compressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompressionReport {
    /// `ALGORITHM[:LEVEL]`, e.g. `zstd:1`.
    pub setting: String,
    /// Why it is not the default, when the Job fell back (an older server or older tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a run ended with. Untagged: a success has the summary's fields, a
/// failure only `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    Succeeded(RunSummary),
    Failed { error: String },
}

impl Outcome {
    /// One JSON line of at most [`TERMINATION_MESSAGE_LIMIT`] bytes. Too long
    /// an error keeps its end, where tools print the reason; too long a
    /// success drops pruned run ids and warnings and counts what it dropped.
    pub fn render(&self) -> String {
        render_within_limit(self, Self::shrink)
    }

    fn shrink(&mut self, excess: usize) {
        match self {
            Self::Failed { error } => *error = keep_end(error, excess),
            Self::Succeeded(summary) => {
                if let Some(pruned) = summary.pruned.as_mut().filter(|pruned| !pruned.is_empty()) {
                    pruned.pop();
                    *summary.pruned_omitted.get_or_insert(0) += 1;
                } else if let Some(warning) = summary.warnings.last_mut() {
                    if warning.len() > excess + "...".len() {
                        *warning = keep_end(warning, excess);
                    } else {
                        summary.warnings.pop();
                    }
                } else {
                    // Only absurdly long locations get here.
                    summary.location = keep_end(&summary.location, excess);
                }
            }
        }
    }

    /// Reads a termination message back, as the controller does.
    pub fn parse(message: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(message)
    }

    /// Prints the line on stdout and writes it to `termination_log` when
    /// that file can be opened for writing (it exists inside a Kubernetes
    /// container; elsewhere it is silently skipped).
    pub fn publish(&self, termination_log: &Path) {
        publish_line(&self.render(), termination_log);
    }
}

/// `value` as one JSON line of at most [`TERMINATION_MESSAGE_LIMIT`] bytes: `shrink` is told
/// how many bytes too long the line is until it fits.
pub(crate) fn render_within_limit<T: Serialize + Clone>(
    value: &T,
    mut shrink: impl FnMut(&mut T, usize),
) -> String {
    let mut value = value.clone();
    loop {
        let line = serde_json::to_string(&value).expect("outcomes always serialize");
        let excess = line.len().saturating_sub(TERMINATION_MESSAGE_LIMIT);
        if excess == 0 {
            return line;
        }
        shrink(&mut value, excess);
    }
}

/// Publishes any serializable result as one JSON line; one too long for a termination
/// message is replaced by `fallback`, which must fit.
pub fn publish_value<T: Serialize>(value: &T, fallback: &T, termination_log: &Path) {
    let line = serde_json::to_string(value).expect("results always serialize");
    let line = if line.len() <= TERMINATION_MESSAGE_LIMIT {
        line
    } else {
        serde_json::to_string(fallback).expect("results always serialize")
    };
    publish_line(&line, termination_log);
}

/// Prints a result line and writes it to the termination log when that can be opened.
pub(crate) fn publish_line(line: &str, termination_log: &Path) {
    println!("{line}");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(termination_log)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(error) = written {
        tracing::debug!(path = %termination_log.display(), %error, "termination log not written");
    }
}

/// Drops characters from the front of `text` until its JSON form is at
/// least `excess` bytes shorter, room for the `...` marker included. Counted
/// in escaped bytes: a newline costs two in JSON, a control character six.
pub(crate) fn keep_end(text: &str, excess: usize) -> String {
    let target = excess + "...".len();
    let mut removed = 0;
    let mut start = text.len();
    for (index, character) in text.char_indices() {
        if removed >= target {
            start = index;
            break;
        }
        removed += json_len(character);
    }
    format!("...{}", &text[start..])
}

fn json_len(character: char) -> usize {
    match character {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        control if control < ' ' => 6,
        other => other.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(pruned: usize) -> RunSummary {
        RunSummary {
            location: "s3://bucket/app/nightly/r1/dump.pgdump".into(),
            size_bytes: 10,
            sha256: "ab".repeat(32),
            run_id: "r1".into(),
            time: "2025-01-01T02:00:00Z".into(),
            server_version: "15.8".into(),
            compression: Some(Box::new(CompressionReport {
                setting: "zstd:1".into(),
                note: None,
            })),
            pruned: Some(
                (0..pruned)
                    .map(|i| format!("20250101T0200{i:04}Z"))
                    .collect(),
            ),
            pruned_omitted: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn success_has_the_documented_fields() {
        let json: serde_json::Value =
            serde_json::from_str(&Outcome::Succeeded(summary(1)).render()).unwrap();
        for field in [
            "location",
            "sizeBytes",
            "sha256",
            "runId",
            "time",
            "serverVersion",
            "pruned",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        assert!(json.get("warnings").is_none());
    }

    #[test]
    fn long_errors_keep_their_end_within_the_limit() {
        let error = format!("{}the reason ü", "x\n\"".repeat(5000));
        let line = Outcome::Failed { error }.render();
        assert!(
            line.len() <= TERMINATION_MESSAGE_LIMIT,
            "{} bytes",
            line.len()
        );
        assert!(!line.contains('\n'));
        match Outcome::parse(&line).unwrap() {
            Outcome::Failed { error } => {
                assert!(error.starts_with("...") && error.ends_with("the reason ü"))
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn many_pruned_runs_are_counted_instead_of_listed() {
        let line = Outcome::Succeeded(summary(1000)).render();
        assert!(
            line.len() <= TERMINATION_MESSAGE_LIMIT,
            "{} bytes",
            line.len()
        );
        let Outcome::Succeeded(parsed) = Outcome::parse(&line).unwrap() else {
            panic!("not a success: {line}");
        };
        let listed = parsed.pruned.unwrap().len();
        assert_eq!(listed + parsed.pruned_omitted.unwrap(), 1000);
    }

    #[test]
    fn success_and_failure_parse_back() {
        let success = Outcome::Succeeded(summary(2));
        assert_eq!(Outcome::parse(&success.render()).unwrap(), success);
        let failure = Outcome::Failed {
            error: "boom".into(),
        };
        assert_eq!(Outcome::parse(&failure.render()).unwrap(), failure);
    }
}
