//! What the archiver tells the operator: a small JSON document at `/status` and
//! Prometheus metrics at `/metrics`, both rendered from one [`ArchiverStatus`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt::Write as _;

/// Why archiving is not keeping up, as a stable label for status, metrics and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorCategory {
    /// Listing or writing the destination failed; WAL waits in the spool (and the slot).
    StoreUnreachable,
    /// WAL the archive needs is gone from the server (slot lost or never there), or the
    /// spool's next segment does not follow the last archived one: recovery cannot cross it.
    Gap,
    /// The destination holds different bytes for a segment already archived.
    SegmentRefused,
    /// pg_receivewal cannot connect or was disconnected.
    ServerUnreachable,
}

impl ErrorCategory {
    pub const ALL: [ErrorCategory; 4] = [
        Self::StoreUnreachable,
        Self::Gap,
        Self::SegmentRefused,
        Self::ServerUnreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StoreUnreachable => "StoreUnreachable",
            Self::Gap => "Gap",
            Self::SegmentRefused => "SegmentRefused",
            Self::ServerUnreachable => "ServerUnreachable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub category: ErrorCategory,
    pub message: String,
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GapReport {
    /// The last segment archived before the gap, if any.
    pub after: Option<String>,
    /// The first segment archived (or requested) after it.
    pub next: Option<String>,
    pub message: String,
    pub detected_at: DateTime<Utc>,
}

/// The recoverability window (`recovery_prepare::window`) as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoverabilityReport {
    /// None until a base backup exists that the archived WAL makes usable.
    pub first_recoverable_time: Option<DateTime<Utc>>,
    pub last_recoverable_time: Option<DateTime<Utc>>,
    /// The timeline the newest base backup leads to.
    pub timeline: u32,
    /// Gaps splitting the window; a recovery cannot cross one.
    pub gaps: usize,
    /// The window, its gaps and unusable base backups in words.
    pub description: String,
    pub computed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiverStatus {
    /// Whether pg_receivewal is running now.
    pub streaming: bool,
    pub timeline: Option<u32>,
    /// How far WAL has been received, as the newest `.partial` shows it.
    pub received_lsn: Option<String>,
    pub last_archived_segment: Option<String>,
    pub last_archived_time: Option<DateTime<Utc>>,
    /// How far the newest uploaded `.partial` reaches.
    pub partial_written_to: Option<String>,
    pub partial_uploaded_time: Option<DateTime<Utc>>,
    pub archived_segments: u64,
    pub archived_bytes: u64,
    pub restarts: u64,
    /// Every gap seen since the archiver started; never cleared by later success.
    pub gaps: Vec<GapReport>,
    /// Cleared once the same category succeeds again.
    pub last_error: Option<LastError>,
    /// What the archive can restore to, recomputed now and then ([`super::recoverability`]):
    /// the operator has no storage access and copies it into the Backup's status.
    pub recoverability: Option<RecoverabilityReport>,
    #[serde(skip)]
    pub errors_by_category: [u64; 4],
}

impl ArchiverStatus {
    pub fn record_error(&mut self, category: ErrorCategory, message: String) {
        let index = ErrorCategory::ALL
            .iter()
            .position(|c| *c == category)
            .expect("every category is listed");
        self.errors_by_category[index] += 1;
        self.last_error = Some(LastError {
            category,
            message,
            time: Utc::now(),
        });
    }

    /// Forgets the last error once what failed works again.
    pub fn clear_error(&mut self, category: ErrorCategory) {
        if self.last_error.as_ref().map(|e| e.category) == Some(category) {
            self.last_error = None;
        }
    }

    pub fn record_gap(&mut self, gap: GapReport) {
        self.record_error(ErrorCategory::Gap, gap.message.clone());
        self.gaps.push(gap);
    }

    /// Prometheus text format.
    pub fn metrics(&self) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "backup_operator_wal_last_archived_timestamp_seconds",
            "gauge",
            "When the newest WAL segment was archived (Unix time); 0 before the first.",
            self.last_archived_time
                .map_or(0, |t| t.timestamp())
                .to_string(),
        );
        metric(
            "backup_operator_wal_archived_bytes_total",
            "counter",
            "Bytes of complete WAL segments and history files archived.",
            self.archived_bytes.to_string(),
        );
        metric(
            "backup_operator_wal_archived_segments_total",
            "counter",
            "Complete WAL segments archived.",
            self.archived_segments.to_string(),
        );
        metric(
            "backup_operator_wal_receiver_restarts_total",
            "counter",
            "Times pg_receivewal was started again after it stopped.",
            self.restarts.to_string(),
        );
        metric(
            "backup_operator_wal_gaps_total",
            "counter",
            "Gaps in the archived WAL detected; recovery cannot cross one.",
            self.gaps.len().to_string(),
        );
        metric(
            "backup_operator_wal_streaming",
            "gauge",
            "1 while pg_receivewal runs.",
            u8::from(self.streaming).to_string(),
        );
        let name = "backup_operator_wal_errors_total";
        let _ = writeln!(
            text,
            "# HELP {name} Archiving errors by category.\n# TYPE {name} counter"
        );
        for (category, count) in ErrorCategory::ALL.iter().zip(self.errors_by_category) {
            let _ = writeln!(text, "{name}{{category=\"{}\"}} {count}", category.as_str());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_category_and_cleared_by_success() {
        let mut status = ArchiverStatus::default();
        status.record_error(ErrorCategory::StoreUnreachable, "bucket down".into());
        assert_eq!(
            status.last_error.as_ref().unwrap().category,
            ErrorCategory::StoreUnreachable
        );
        status.clear_error(ErrorCategory::ServerUnreachable);
        assert!(status.last_error.is_some());
        status.clear_error(ErrorCategory::StoreUnreachable);
        assert!(status.last_error.is_none());
        let metrics = status.metrics();
        assert!(
            metrics.contains("backup_operator_wal_errors_total{category=\"StoreUnreachable\"} 1"),
            "{metrics}"
        );
        let json = serde_json::to_value(&status).unwrap();
        assert!(json.get("errorsByCategory").is_none());
        assert_eq!(json["restarts"], 0);
    }
}
