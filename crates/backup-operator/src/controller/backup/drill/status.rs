//! What a drill's result does to the Backup's status (pure): `lastVerification`, the
//! drilled artifact's `verified` mark in the history, `lastVerifiedTime`, and the `Verified`
//! condition. A failed drill only marks its artifact unverified: nothing is removed.

use api::conditions::{self, VERIFIED};
use api::{BackupStatus, LastVerification, VerificationResult};
use backup_job::verify_report::VerifySummary;
use chrono::{DateTime, Utc};

use crate::controller::job_runs::{Finished, JobResult};
use crate::controller::time::{scheduled_time, to_time, to_timestamp};

pub const REASON_VERIFIED: &str = "Verified";
pub const REASON_FAILED: &str = "VerificationFailed";
pub const REASON_NOT_VERIFIED: &str = "NotVerified";

/// A finished drill Job, as gathered.
pub struct Drilled<'a> {
    pub job: &'a str,
    pub drill: &'a str,
    pub run_id: &'a str,
    /// Whether the drill ran on a schedule (its `drill` is then a scheduled time).
    pub scheduled: bool,
    pub finished: &'a Finished<VerifySummary>,
}

/// Records a finished drill into `status`.
pub fn record(status: &mut BackupStatus, drilled: &Drilled, now: DateTime<Utc>) {
    let finished = drilled.finished;
    let time = finished.finished.unwrap_or(now);
    let duration_seconds = finished.duration_seconds().map(|s| s.round() as i64);
    let mut last = LastVerification {
        run_id: drilled.run_id.into(),
        time: to_time(time),
        result: VerificationResult::Failed,
        job: drilled.job.into(),
        scheduled_time: drilled
            .scheduled
            .then(|| scheduled_time(drilled.drill))
            .flatten()
            .map(to_time),
        duration_seconds,
        tables_checked: None,
        rows_checked: None,
        row_counts_compared: None,
        error: None,
    };
    let passed = match &finished.result {
        JobResult::Succeeded(summary) if summary.run_id == drilled.run_id => {
            last.result = VerificationResult::Passed;
            last.tables_checked = Some(clamp(summary.tables_checked));
            last.rows_checked = Some(clamp(summary.rows_checked));
            last.row_counts_compared = Some(summary.row_counts_compared);
            status.last_verified_time = Some(to_time(time));
            true
        }
        JobResult::Succeeded(summary) => {
            last.error = Some(format!(
                "Job {} drilled run {} instead of {}",
                drilled.job, summary.run_id, drilled.run_id
            ));
            false
        }
        JobResult::Failed(error) => {
            last.error = Some(error.clone());
            false
        }
    };
    if let Some(record) = status
        .history
        .iter_mut()
        .find(|r| r.run_id == drilled.run_id)
    {
        record.verified = Some(passed);
    }
    status.last_verification = Some(last);
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Sets the `Verified` condition from the last result, or removes it without
/// `spec.verification`. `active` is the drill Job in flight, if any.
pub fn condition(
    status: &mut BackupStatus,
    configured: bool,
    invalid: Option<&str>,
    active: Option<&str>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    if !configured {
        conditions::remove(&mut status.conditions, VERIFIED);
        return;
    }
    let (verified, reason, message) = match (invalid, &status.last_verification) {
        (Some(invalid), _) => (false, "InvalidVerificationSchedule", invalid.to_string()),
        (None, None) => (
            false,
            REASON_NOT_VERIFIED,
            match active {
                Some(job) => format!("the first restore drill is running in Job {job}"),
                None => "no restore drill has run yet; one runs after the next successful backup or at the verification schedule".into(),
            },
        ),
        (None, Some(last)) => match last.result {
            VerificationResult::Passed => (
                true,
                REASON_VERIFIED,
                format!(
                    "run {} restored in a throwaway server: {} tables and {} rows checked{}",
                    last.run_id,
                    last.tables_checked.unwrap_or_default(),
                    last.rows_checked.unwrap_or_default(),
                    if last.row_counts_compared == Some(false) {
                        " (its manifest has no row counts to compare)"
                    } else {
                        ", row counts as at dump time"
                    }
                ),
            ),
            VerificationResult::Failed => (
                false,
                REASON_FAILED,
                format!(
                    "restore drill of run {} failed: {}",
                    last.run_id,
                    last.error.as_deref().unwrap_or("no reason was reported")
                ),
            ),
        },
    };
    conditions::set(
        &mut status.conditions,
        conditions::new(
            VERIFIED,
            verified,
            reason,
            message,
            generation,
            to_timestamp(now),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::time::parse_rfc3339;
    use api::BackupRecord;

    fn at(text: &str) -> DateTime<Utc> {
        parse_rfc3339(text).unwrap()
    }

    fn status() -> BackupStatus {
        let record = |run_id: &str| BackupRecord {
            run_id: run_id.into(),
            time: to_time(at("2026-01-02T02:00:09Z")),
            location: format!("pvc://c/shop/nightly/{run_id}/dump.pgdump"),
            size_bytes: 10,
            sha256: "ab".into(),
            verified: None,
            compression: None,
            compression_note: None,
        };
        BackupStatus {
            history: vec![record("r2"), record("r1")],
            ..BackupStatus::default()
        }
    }

    fn finished(result: JobResult<VerifySummary>) -> Finished<VerifySummary> {
        Finished {
            result,
            started: Some(at("2026-01-02T02:01:00Z")),
            finished: Some(at("2026-01-02T02:01:42Z")),
        }
    }

    fn summary(run_id: &str) -> VerifySummary {
        VerifySummary {
            run_id: run_id.into(),
            location: "/backups/x".into(),
            tables_checked: 4,
            rows_checked: 2000,
            row_counts_compared: true,
            query_checked: false,
            duration_seconds: 40,
        }
    }

    fn drilled<'a>(finished: &'a Finished<VerifySummary>) -> Drilled<'a> {
        Drilled {
            job: "nightly-verify-r2",
            drill: "r2",
            run_id: "r2",
            scheduled: false,
            finished,
        }
    }

    fn verified(status: &BackupStatus) -> (String, String) {
        let c = conditions::find(&status.conditions, VERIFIED).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_passed_drill_marks_its_artifact_verified() {
        let mut status = status();
        let done = finished(JobResult::Succeeded(summary("r2")));
        record(&mut status, &drilled(&done), at("2026-01-02T03:00:00Z"));
        condition(
            &mut status,
            true,
            None,
            None,
            Some(1),
            at("2026-01-02T03:00:00Z"),
        );

        let last = status.last_verification.as_ref().unwrap();
        assert_eq!(last.result, VerificationResult::Passed);
        assert_eq!(
            (last.tables_checked, last.rows_checked),
            (Some(4), Some(2000))
        );
        assert_eq!(last.duration_seconds, Some(42));
        assert_eq!(last.time, to_time(at("2026-01-02T02:01:42Z")));
        assert_eq!(
            status.last_verified_time,
            Some(to_time(at("2026-01-02T02:01:42Z")))
        );
        assert_eq!(status.history[0].verified, Some(true));
        assert_eq!(status.history[1].verified, None);
        assert_eq!(verified(&status), ("True".into(), REASON_VERIFIED.into()));
    }

    #[test]
    fn a_failed_drill_marks_its_artifact_unverified_and_keeps_it() {
        let mut status = status();
        status.last_verified_time = Some(to_time(at("2026-01-01T02:01:42Z")));
        let done = finished(JobResult::Failed(
            "row counts of run r2 differ from those recorded at dump time: public.t: 3 rows dumped, 2 restored".into(),
        ));
        record(&mut status, &drilled(&done), at("2026-01-02T03:00:00Z"));
        condition(
            &mut status,
            true,
            None,
            None,
            Some(1),
            at("2026-01-02T03:00:00Z"),
        );

        assert_eq!(status.history.len(), 2, "nothing is removed");
        assert_eq!(status.history[0].verified, Some(false));
        let last = status.last_verification.as_ref().unwrap();
        assert_eq!(last.result, VerificationResult::Failed);
        assert!(
            last.error
                .as_deref()
                .unwrap()
                .contains("public.t: 3 rows dumped, 2 restored")
        );
        assert_eq!(
            status.last_verified_time,
            Some(to_time(at("2026-01-01T02:01:42Z"))),
            "the last pass is kept"
        );
        assert_eq!(verified(&status), ("False".into(), REASON_FAILED.into()));
        let message = &conditions::find(&status.conditions, VERIFIED)
            .unwrap()
            .message;
        assert!(message.contains("public.t: 3 rows dumped"), "{message}");
    }

    #[test]
    fn a_result_for_another_run_is_a_failure() {
        let mut status = status();
        let done = finished(JobResult::Succeeded(summary("r1")));
        record(&mut status, &drilled(&done), at("2026-01-02T03:00:00Z"));
        assert_eq!(status.history[0].verified, Some(false));
        assert_eq!(status.last_verified_time, None);
    }

    #[test]
    fn the_condition_before_any_drill_and_without_verification() {
        let mut status = status();
        condition(
            &mut status,
            true,
            None,
            Some("nightly-verify-r2"),
            Some(1),
            at("2026-01-02T03:00:00Z"),
        );
        assert_eq!(
            verified(&status),
            ("False".into(), REASON_NOT_VERIFIED.into())
        );
        condition(
            &mut status,
            true,
            Some("bad cron"),
            None,
            Some(1),
            at("2026-01-02T03:00:00Z"),
        );
        assert_eq!(
            verified(&status),
            ("False".into(), "InvalidVerificationSchedule".into())
        );
        condition(
            &mut status,
            false,
            None,
            None,
            Some(1),
            at("2026-01-02T03:00:00Z"),
        );
        assert!(conditions::find(&status.conditions, VERIFIED).is_none());
    }
}
