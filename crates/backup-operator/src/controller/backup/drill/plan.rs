//! Whether a restore drill is due (pure): after each successful run without a schedule, at
//! the scheduled times with one. Only the newest artifact is drilled, one drill at a time,
//! and never while a backup run is in flight (its retention may delete the artifact).

use std::time::Duration;

use api::{BackupRecord, LastVerification};
use chrono::{DateTime, Utc};

use super::job::Drill;
use crate::controller::time::{from_time, run_id};
use crate::schedule::{Due, Schedule, due};

pub struct Inputs<'a> {
    /// `None` without a verification schedule: drill each new artifact.
    pub schedule: Option<&'a Schedule>,
    /// The artifacts, newest first.
    pub history: &'a [BackupRecord],
    pub last: Option<&'a LastVerification>,
    /// The drill Jobs that exist, as `(drill, run id, active)`.
    pub jobs: &'a [(String, String, bool)],
    pub backup_in_flight: bool,
    /// When a scheduled drill was last started (from its Job) or recorded.
    pub since: DateTime<Utc>,
    pub starting_deadline: Duration,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub start: Option<Drill>,
    /// When a scheduled drill is next due.
    pub next: Option<DateTime<Utc>>,
}

pub fn decide(inputs: &Inputs) -> Plan {
    let timing = inputs.schedule.map(|schedule| {
        due(
            schedule,
            inputs.since,
            inputs.now,
            Some(inputs.starting_deadline),
        )
    });
    let next = match &timing {
        Some(Due::Run { next, .. } | Due::Missed { next, .. } | Due::Wait { next }) => *next,
        None => None,
    };
    let busy = inputs.backup_in_flight || inputs.jobs.iter().any(|(_, _, active)| *active);
    let Some(newest) = inputs.history.first().filter(|_| !busy) else {
        return Plan { start: None, next };
    };
    let start = match timing {
        None => {
            let drilled = newest.verified.is_some()
                || inputs.last.is_some_and(|last| last.run_id == newest.run_id)
                || inputs.jobs.iter().any(|(_, run, _)| *run == newest.run_id);
            (!drilled).then(|| Drill {
                drill: newest.run_id.clone(),
                run_id: newest.run_id.clone(),
            })
        }
        Some(Due::Run { scheduled, .. }) => Some(Drill {
            drill: run_id(scheduled),
            run_id: newest.run_id.clone(),
        }),
        Some(_) => None,
    };
    Plan { start, next }
}

/// The scheduled time of the newest scheduled drill: from a drill Job (named after it) or
/// the last recorded result, else the Backup's creation.
pub fn since(
    last: Option<&LastVerification>,
    job_drills: &[String],
    created: DateTime<Utc>,
) -> DateTime<Utc> {
    let recorded = last.and_then(|l| l.scheduled_time.as_ref()).map(from_time);
    let from_jobs = job_drills
        .iter()
        .filter_map(|d| crate::controller::time::scheduled_time(d))
        .max();
    [Some(created), recorded, from_jobs]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::time::{parse_rfc3339, to_time};
    use api::VerificationResult;

    fn at(text: &str) -> DateTime<Utc> {
        parse_rfc3339(text).unwrap()
    }

    fn record(run_id: &str, verified: Option<bool>) -> BackupRecord {
        BackupRecord {
            run_id: run_id.into(),
            time: to_time(at("2026-01-02T02:00:09Z")),
            location: format!("pvc://c/shop/nightly/{run_id}/dump.pgdump"),
            size_bytes: 10,
            sha256: "ab".into(),
            verified,
            compression: None,
            compression_note: None,
        }
    }

    fn last(run_id: &str) -> LastVerification {
        LastVerification {
            run_id: run_id.into(),
            time: to_time(at("2026-01-02T02:10:00Z")),
            result: VerificationResult::Passed,
            job: format!("nightly-verify-{run_id}"),
            scheduled_time: None,
            duration_seconds: None,
            tables_checked: None,
            rows_checked: None,
            row_counts_compared: None,
            error: None,
        }
    }

    fn inputs<'a>(
        history: &'a [BackupRecord],
        last: Option<&'a LastVerification>,
        jobs: &'a [(String, String, bool)],
    ) -> Inputs<'a> {
        Inputs {
            schedule: None,
            history,
            last,
            jobs,
            backup_in_flight: false,
            since: at("2026-01-01T00:00:00Z"),
            starting_deadline: Duration::from_secs(600),
            now: at("2026-01-02T03:00:00Z"),
        }
    }

    #[test]
    fn without_a_schedule_each_new_artifact_is_drilled_once() {
        let fresh = [record("r2", None), record("r1", Some(true))];
        let drilled = [record("r2", Some(false))];
        let last_r2 = last("r2");
        let active = [("r2".to_string(), "r2".to_string(), true)];
        let finished = [("r2".to_string(), "r2".to_string(), false)];
        // (history, last, jobs, backup in flight, drill started)
        type Row<'a> = (
            &'a [BackupRecord],
            Option<&'a LastVerification>,
            &'a [(String, String, bool)],
            bool,
            Option<&'a str>,
        );
        let rows: [Row; 7] = [
            (&fresh, None, &[], false, Some("r2")),
            (&fresh, None, &[], true, None),
            (&fresh, None, &active, false, None),
            (&fresh, None, &finished, false, None),
            (&fresh, Some(&last_r2), &[], false, None),
            // A failed drill is not repeated for the same artifact: the next run's is.
            (&drilled, None, &[], false, None),
            (&[], None, &[], false, None),
        ];
        for (i, (history, last, jobs, in_flight, want)) in rows.into_iter().enumerate() {
            let plan = decide(&Inputs {
                backup_in_flight: in_flight,
                ..inputs(history, last, jobs)
            });
            assert_eq!(
                plan.start.map(|d| d.drill),
                want.map(str::to_string),
                "row {i}"
            );
            assert_eq!(plan.next, None);
        }
    }

    #[test]
    fn with_a_schedule_the_newest_artifact_is_drilled_at_the_scheduled_time() {
        let schedule = Schedule::parse("0 5 * * 0", None).unwrap();
        // Sunday 2026-01-04 05:00 is the first scheduled time after `since`.
        let history = [record("r2", Some(true)), record("r1", Some(true))];
        let mut row = inputs(&history, None, &[]);
        row.schedule = Some(&schedule);
        row.now = at("2026-01-04T04:59:00Z");
        let before = decide(&row);
        assert_eq!(before.start, None);
        assert_eq!(before.next, Some(at("2026-01-04T05:00:00Z")));

        row.now = at("2026-01-04T05:00:30Z");
        let due = decide(&row);
        assert_eq!(
            due.start,
            Some(Drill {
                drill: "20260104T050000Z".into(),
                run_id: "r2".into()
            }),
            "already verified artifacts are drilled again on schedule"
        );
        assert_eq!(due.next, Some(at("2026-01-11T05:00:00Z")));

        // Started (its Job names the time) or recorded: not again.
        row.since = since(
            None,
            &["20260104T050000Z".into()],
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(decide(&row).start, None);
        // Missed by more than the starting deadline: skipped.
        row.since = at("2026-01-01T00:00:00Z");
        row.now = at("2026-01-04T06:00:00Z");
        assert_eq!(decide(&row).start, None);
    }
}
