//! From what the archiver reports to the Backup's status (pure): `status.archive`,
//! `status.recoverability` and the `ArchiveHealthy` condition.
//!
//! Writes happen only on change, and the archiver's volatile numbers are made coarse so a
//! steady state writes nothing: `lagSeconds` is rounded down to a whole minute (an archive
//! keeping up reports 0; an idle Database's lag grows, written once a minute at most), and
//! the window's end moves only when the archiver recomputed it (at most every 30 s, and only
//! when new WAL was archived).

use api::{ArchiveStatus, RecoverabilityWindow};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::controller::time::to_time;

/// The archiver's `GET /status`, as far as the operator reads it (WAL-ARCHIVING.md).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchiverReport {
    #[serde(default)]
    pub streaming: bool,
    pub timeline: Option<u32>,
    pub last_archived_segment: Option<String>,
    pub last_archived_time: Option<DateTime<Utc>>,
    pub partial_uploaded_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub restarts: u64,
    #[serde(default)]
    pub gaps: Vec<GapSeen>,
    pub last_error: Option<ErrorSeen>,
    pub recoverability: Option<WindowSeen>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GapSeen {
    pub after: Option<String>,
    pub next: Option<String>,
    pub detected_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorSeen {
    pub category: String,
    pub message: String,
    pub time: DateTime<Utc>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WindowSeen {
    pub first_recoverable_time: Option<DateTime<Utc>>,
    pub last_recoverable_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub gaps: usize,
    #[serde(default)]
    pub description: String,
}

/// What the operator could learn about the archiver in this reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    Report(ArchiverReport),
    /// No Pod, not running, or `/status` did not answer: why.
    NotRunning(String),
}

/// Reasons of `ArchiveHealthy`.
pub const STREAMING: &str = "Streaming";
pub const ARCHIVER_NOT_RUNNING: &str = "ArchiverNotRunning";
pub const SERVER_UNREACHABLE: &str = "ServerUnreachable";
/// The categories the archiver reports in `lastError`, which become the reason as is.
const CATEGORIES: [&str; 4] = [
    "StoreUnreachable",
    "Gap",
    "SegmentRefused",
    SERVER_UNREACHABLE,
];

/// `ArchiveHealthy` as (status, reason, message).
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub healthy: bool,
    pub reason: &'static str,
    pub message: String,
}

/// True while base backups may start: the archiver streams, so the WAL between a base
/// backup's start and its end will be archived (WAL-ARCHIVING.md, "Order").
pub fn streaming(seen: &Seen) -> bool {
    matches!(seen, Seen::Report(report) if report.streaming)
}

pub fn health(seen: &Seen, previous: Option<&ArchiveStatus>) -> Health {
    let last = previous
        .and_then(|a| a.last_archived_time.as_ref())
        .map_or("nothing archived yet".to_string(), |t| {
            format!("last segment archived at {}", t.0)
        });
    let report = match seen {
        Seen::NotRunning(why) => {
            return Health {
                healthy: false,
                reason: ARCHIVER_NOT_RUNNING,
                message: format!("the WAL archiver is not running: {why}; {last}"),
            };
        }
        Seen::Report(report) => report,
    };
    let gaps = gaps_text(report);
    if let Some(error) = &report.last_error {
        let reason = CATEGORIES
            .into_iter()
            .find(|c| *c == error.category)
            .unwrap_or(SERVER_UNREACHABLE);
        return Health {
            healthy: false,
            reason,
            message: format!(
                "{} since {}: {}{gaps}",
                error.category,
                error.time.to_rfc3339(),
                error.message
            ),
        };
    }
    if !report.streaming {
        return Health {
            healthy: false,
            reason: SERVER_UNREACHABLE,
            message: format!(
                "pg_receivewal is not streaming (started again {} times); {last}{gaps}",
                report.restarts
            ),
        };
    }
    let timeline = report
        .timeline
        .map_or(String::new(), |t| format!(" on timeline {t}"));
    let segment = match (&report.last_archived_segment, report.last_archived_time) {
        (Some(segment), Some(at)) => format!("; newest segment {segment} at {}", at.to_rfc3339()),
        _ => String::new(),
    };
    Health {
        healthy: true,
        reason: STREAMING,
        message: format!("streaming{timeline}{segment}{gaps}"),
    }
}

/// Gaps are never hidden: the archiver's own since it started and the window's.
fn gaps_text(report: &ArchiverReport) -> String {
    let mut text = String::new();
    if let Some(gap) = report.gaps.last() {
        text.push_str(&format!(
            "; {} gap(s) in the archived WAL since the archiver started, the newest after {} detected at {}: recovery cannot cross a gap, take a new base backup",
            report.gaps.len(),
            gap.after.as_deref().unwrap_or("the start"),
            gap.detected_at.to_rfc3339()
        ));
    }
    if let Some(window) = report.recoverability.as_ref().filter(|w| w.gaps > 0) {
        text.push_str(&format!("; recoverability window: {}", window.description));
    }
    text
}

/// `status.archive` from the report; the previous one while the archiver is not running.
pub fn archive_status(
    seen: &Seen,
    previous: Option<&ArchiveStatus>,
    now: DateTime<Utc>,
) -> Option<ArchiveStatus> {
    let Seen::Report(report) = seen else {
        return previous.cloned();
    };
    let newest_write = report.last_archived_time.max(report.partial_uploaded_time);
    Some(ArchiveStatus {
        last_archived_segment: report.last_archived_segment.clone(),
        last_archived_time: report.last_archived_time.map(to_time),
        timeline: report.timeline.map(i64::from),
        lag_seconds: newest_write.map(|at| coarse_lag((now - at).num_seconds())),
    })
}

/// Lag rounded down to a whole minute: below a minute (keeping up) it is 0, and a lag that
/// keeps growing changes status once a minute, not on every poll.
fn coarse_lag(seconds: i64) -> i64 {
    seconds.max(0) / 60 * 60
}

/// `status.recoverability`; kept while the archiver is not running or has none yet.
pub fn window(
    seen: &Seen,
    previous: Option<&RecoverabilityWindow>,
) -> Option<RecoverabilityWindow> {
    let from_report = match seen {
        Seen::Report(report) => report.recoverability.as_ref().and_then(|w| {
            Some(RecoverabilityWindow {
                first_recoverable_time: to_time(w.first_recoverable_time?),
                last_recoverable_time: to_time(w.last_recoverable_time?),
            })
        }),
        Seen::NotRunning(_) => None,
    };
    from_report.or_else(|| previous.cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::time::parse_rfc3339;
    use serde_json::json;

    fn report(doc: serde_json::Value) -> Seen {
        Seen::Report(serde_json::from_value(doc).unwrap())
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn the_condition_from_each_kind_of_status_document() {
        let gap = json!({"after": "000000010000000000000007", "next": "00000001000000000000000A",
            "message": "removed", "detectedAt": "2026-12-06T07:00:00Z"});
        // (document, healthy, reason, words the message must hold)
        let rows = [
            (
                json!({"streaming": true, "timeline": 2, "lastArchivedSegment": "000000020000000000000004",
                    "lastArchivedTime": "2026-12-06T07:00:01.123Z"}),
                true,
                STREAMING,
                vec!["timeline 2", "000000020000000000000004"],
            ),
            (
                json!({"streaming": true, "lastError": {"category": "StoreUnreachable",
                    "message": "bucket gone", "time": "2026-12-06T07:00:00Z"}}),
                false,
                "StoreUnreachable",
                vec!["since 2026-12-06T07:00:00", "bucket gone"],
            ),
            (
                json!({"streaming": true, "gaps": [gap], "lastError": {"category": "Gap",
                    "message": "requested WAL segment has already been removed", "time": "2026-12-06T07:00:00Z"}}),
                false,
                "Gap",
                vec![
                    "already been removed",
                    "000000010000000000000007",
                    "1 gap(s)",
                ],
            ),
            (
                json!({"streaming": true, "lastError": {"category": "SegmentRefused",
                    "message": "different bytes", "time": "2026-12-06T07:00:00Z"}}),
                false,
                "SegmentRefused",
                vec!["different bytes"],
            ),
            (
                json!({"streaming": false, "restarts": 3}),
                false,
                SERVER_UNREACHABLE,
                vec!["not streaming", "3 times"],
            ),
            // A gap that healed still shows: streaming, but the message says so.
            (
                json!({"streaming": true, "gaps": [gap],
                    "recoverability": {"firstRecoverableTime": "2026-12-06T06:00:00Z",
                        "lastRecoverableTime": "2026-12-06T07:10:00Z", "gaps": 1,
                        "description": "timeline 1: … gaps: 000000010000000000000008"}}),
                true,
                STREAMING,
                vec!["1 gap(s)", "gaps: 000000010000000000000008"],
            ),
        ];
        for (i, (doc, healthy, reason, words)) in rows.into_iter().enumerate() {
            let got = health(&report(doc), None);
            assert_eq!(
                (got.healthy, got.reason),
                (healthy, reason),
                "row {i}: {got:?}"
            );
            for word in words {
                assert!(
                    got.message.contains(word),
                    "row {i}: {word:?} in {}",
                    got.message
                );
            }
        }
        let down = health(&Seen::NotRunning("Pod pitr-wal-0 is Pending".into()), None);
        assert_eq!((down.healthy, down.reason), (false, ARCHIVER_NOT_RUNNING));
        assert!(
            down.message.contains("pitr-wal-0 is Pending"),
            "{}",
            down.message
        );
        assert!(
            down.message.contains("nothing archived yet"),
            "{}",
            down.message
        );
    }

    #[test]
    fn base_backups_wait_for_streaming() {
        assert!(streaming(&report(json!({"streaming": true}))));
        assert!(!streaming(&report(json!({"streaming": false}))));
        assert!(!streaming(&Seen::NotRunning("no Pod".into())));
    }

    #[test]
    fn lag_is_coarse_so_a_steady_state_writes_nothing() {
        let doc = json!({"streaming": true, "lastArchivedSegment": "000000010000000000000003",
            "lastArchivedTime": "2026-12-06T07:00:00Z", "partialUploadedTime": "2026-12-06T07:00:30Z"});
        let seen = report(doc);
        let lag = |now| archive_status(&seen, None, at(now)).unwrap().lag_seconds;
        // Polls 10 s apart while keeping up give the same status.
        assert_eq!(lag("2026-12-06T07:00:35Z"), Some(0));
        assert_eq!(lag("2026-12-06T07:00:45Z"), Some(0));
        assert_eq!(
            archive_status(&seen, None, at("2026-12-06T07:00:35Z")),
            archive_status(&seen, None, at("2026-12-06T07:01:25Z"))
        );
        // Lagging, it moves a minute at a time.
        assert_eq!(lag("2026-12-06T07:03:40Z"), Some(180));
        assert_eq!(lag("2026-12-06T07:03:50Z"), Some(180));
        // The Pod gone, the last known status stays.
        let previous = archive_status(&seen, None, at("2026-12-06T07:00:35Z"));
        assert_eq!(
            archive_status(
                &Seen::NotRunning("x".into()),
                previous.as_ref(),
                at("2026-12-06T08:00:00Z")
            ),
            previous
        );
    }

    #[test]
    fn the_window_is_copied_when_the_archiver_has_one() {
        let seen = report(json!({"streaming": true, "recoverability": {
            "firstRecoverableTime": "2026-12-06T06:00:00Z", "lastRecoverableTime": "2026-12-06T07:10:00Z"}}));
        let got = window(&seen, None).unwrap();
        assert_eq!(
            got.last_recoverable_time,
            to_time(at("2026-12-06T07:10:00Z"))
        );
        // Before the first base backup there is none, and a previous one is kept.
        assert_eq!(window(&report(json!({"streaming": true})), None), None);
        assert_eq!(
            window(&Seen::NotRunning("x".into()), Some(&got)),
            Some(got.clone())
        );
    }
}
