//! The Restore's status from the step it is at (pure).

use api::conditions::{self, PROGRESSING, RESTORED};
use api::{Restore, RestorePhase, RestoreStatus};
use chrono::{DateTime, Utc};

use super::decide::Step;
use crate::controller::job_runs::JobResult;
use crate::controller::time::{to_time, to_timestamp};
use backup_job::recovery_report::RecoverySummary;

pub const RESTORE_FAILED: &str = "RestoreFailed";

pub fn build(restore: &Restore, step: &Step, now: DateTime<Utc>) -> RestoreStatus {
    let old = restore.status.clone().unwrap_or_default();
    let generation = restore.metadata.generation;
    let database = &restore.spec.database_ref.name;
    let mut status = RestoreStatus {
        observed_generation: generation,
        ..old.clone()
    };
    let (phase, restored, progressing) = match step {
        Step::Wait { reason, message } => (
            RestorePhase::Pending,
            (false, "Pending", "not started yet".to_string()),
            (false, *reason, message.clone()),
        ),
        Step::Start { run_id } => {
            status.run_id = run_id.clone();
            status.start_time = old.start_time.clone().or_else(|| Some(to_time(now)));
            running(restore)
        }
        Step::Running { .. } => {
            status.start_time = old.start_time.clone().or_else(|| Some(to_time(now)));
            running(restore)
        }
        Step::Finished(finished) => {
            status.start_time = old.start_time.clone().or(finished.started.map(to_time));
            status.completion_time = Some(to_time(finished.finished.unwrap_or(now)));
            match &finished.result {
                JobResult::Succeeded(summary) => {
                    status.run_id = Some(summary.run_id.clone());
                    status.sha256 = Some(summary.sha256.clone());
                    let message = format!(
                        "restored run {} (sha256 {}) into Database {database}",
                        summary.run_id, summary.sha256
                    );
                    (
                        RestorePhase::Completed,
                        (true, "RestoreSucceeded", message),
                        (false, "Completed", "the restore finished".into()),
                    )
                }
                JobResult::Failed(error) => failed(error.clone()),
            }
        }
        Step::StartRecovery { target_time } => {
            status.target_time = target_time.clone();
            status.start_time = old.start_time.clone().or_else(|| Some(to_time(now)));
            running(restore)
        }
        Step::Recovered(finished) => {
            status.start_time = old.start_time.clone().or(finished.started.map(to_time));
            status.completion_time = Some(to_time(finished.finished.unwrap_or(now)));
            match &finished.result {
                JobResult::Succeeded(summary) => {
                    recorded(&mut status, summary);
                    let to = match &summary.target_time {
                        Some(target) => format!("recovery target {target}"),
                        None => "the end of the archive".to_string(),
                    };
                    let message = format!(
                        "prepared the data volume of Database {database} from base backup {} with the archived WAL on timeline {} up to {to} (verified to {}); its server replays it when it starts",
                        summary.base_backup, summary.timeline, summary.restorable_to
                    );
                    (
                        RestorePhase::Completed,
                        (true, "RecoveryPrepared", message),
                        (false, "Completed", "the recovery Job finished".into()),
                    )
                }
                JobResult::Failed(error) => failed(error.clone()),
            }
        }
        Step::Refused { reason, message } => {
            status.completion_time = old.completion_time.clone().or_else(|| Some(to_time(now)));
            (
                RestorePhase::Failed,
                (false, *reason, message.clone()),
                (false, "Failed", "this Restore cannot run as asked".into()),
            )
        }
        Step::Lost { job } => {
            status.completion_time = Some(to_time(now));
            failed(format!(
                "Job {job} disappeared before it finished; a Restore never runs twice: create a new Restore to retry"
            ))
        }
    };
    status.phase = Some(phase);
    let stamp = to_timestamp(now);
    let (ok, reason, message) = restored;
    conditions::set(
        &mut status.conditions,
        conditions::new(RESTORED, ok, reason, message, generation, stamp),
    );
    let (ok, reason, message) = progressing;
    conditions::set(
        &mut status.conditions,
        conditions::new(PROGRESSING, ok, reason, message, generation, stamp),
    );
    status
}

/// What the recovery Job prepared, into the Restore's status.
fn recorded(status: &mut RestoreStatus, summary: &RecoverySummary) {
    status.base_backup = Some(summary.base_backup.clone());
    status.timeline = Some(i64::from(summary.timeline));
    status.restorable_to = Some(summary.restorable_to.clone());
    // The Job's own reading of the target is what was prepared; keep the requested one when
    // it did not say.
    if let Some(target) = summary
        .target_time
        .as_deref()
        .and_then(|t| serde_json::from_value(serde_json::json!(t)).ok())
    {
        status.target_time = Some(target);
    }
}

type Conditions = (
    RestorePhase,
    (bool, &'static str, String),
    (bool, &'static str, String),
);

fn running(restore: &Restore) -> Conditions {
    let job = api::names::restore_job(&restore.metadata.name.clone().unwrap_or_default());
    (
        RestorePhase::Running,
        (false, "Running", "the restore Job runs".into()),
        (
            true,
            "RestoreRunning",
            format!(
                "Job {job} restores into Database {}",
                restore.spec.database_ref.name
            ),
        ),
    )
}

fn failed(error: String) -> Conditions {
    (
        RestorePhase::Failed,
        (false, RESTORE_FAILED, error),
        (
            false,
            "Failed",
            "the restore failed; create a new Restore to retry".into(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::job_runs::Finished;
    use crate::controller::time::parse_rfc3339;
    use backup_job::report::RunSummary;
    use serde_json::json;

    fn restore() -> Restore {
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Restore",
            "metadata": {"name": "refresh", "generation": 1},
            "spec": {"backupRef": {"name": "nightly"}, "databaseRef": {"name": "copy"}},
            "status": {"phase": "Running", "startTime": "2026-01-02T03:00:00Z"}
        }))
        .unwrap()
    }

    fn finished(result: JobResult) -> Step {
        Step::Finished(Finished {
            result,
            started: parse_rfc3339("2026-01-02T03:00:01Z"),
            finished: parse_rfc3339("2026-01-02T03:01:00Z"),
        })
    }

    #[test]
    fn status_for_each_step() {
        let summary = RunSummary {
            location: "l".into(),
            size_bytes: 1,
            sha256: "ab".into(),
            run_id: "r9".into(),
            time: "2026-01-02T02:00:00Z".into(),
            server_version: "17".into(),
            compression: None,
            pruned: None,
            pruned_omitted: None,
            warnings: vec![],
        };
        let now = parse_rfc3339("2026-01-02T03:05:00Z").unwrap();
        // (step, phase, Restored, Progressing, run id, sha256)
        #[rustfmt::skip]
        let rows = vec![
            (Step::Wait { reason: "WaitingForBackup", message: "m".into() }, RestorePhase::Pending, "False/Pending", "False/WaitingForBackup", None, None),
            (Step::Start { run_id: Some("r9".into()) }, RestorePhase::Running, "False/Running", "True/RestoreRunning", Some("r9"), None),
            (finished(JobResult::Succeeded(summary)), RestorePhase::Completed, "True/RestoreSucceeded", "False/Completed", Some("r9"), Some("ab")),
            (finished(JobResult::Failed("pg_restore failed".into())), RestorePhase::Failed, "False/RestoreFailed", "False/Failed", None, None),
            (Step::Lost { job: "restore-refresh".into() }, RestorePhase::Failed, "False/RestoreFailed", "False/Failed", None, None),
        ];
        for (step, phase, restored, progressing, run_id, sha) in rows {
            let status = build(&restore(), &step, now);
            let show = |t: &str| {
                let c = conditions::find(&status.conditions, t).unwrap();
                format!("{}/{}", c.status, c.reason)
            };
            assert_eq!(status.phase, Some(phase), "{step:?}");
            assert_eq!(
                (show(RESTORED).as_str(), show(PROGRESSING).as_str()),
                (restored, progressing),
                "{step:?}"
            );
            assert_eq!(
                (status.run_id.as_deref(), status.sha256.as_deref()),
                (run_id, sha),
                "{step:?}"
            );
            assert_eq!(
                status.start_time,
                restore().status.unwrap().start_time,
                "start time kept"
            );
        }
    }

    #[test]
    fn a_recovery_records_what_was_prepared() {
        use backup_job::recovery_report::RecoverySummary;
        let summary = RecoverySummary {
            base_backup: "20261206T070000Z".into(),
            timeline: 2,
            target_time: Some("2026-12-06T07:30:00Z".into()),
            wal_files: 5,
            restorable_to: "0/5000000".into(),
            partial_tail: None,
        };
        let now = parse_rfc3339("2026-12-06T08:00:00Z").unwrap();
        let done = |result| {
            Step::Recovered(Finished {
                result,
                started: parse_rfc3339("2026-12-06T07:59:00Z"),
                finished: parse_rfc3339("2026-12-06T07:59:30Z"),
            })
        };
        let status = build(&restore(), &done(JobResult::Succeeded(summary)), now);
        assert_eq!(status.phase, Some(RestorePhase::Completed));
        assert_eq!(status.base_backup.as_deref(), Some("20261206T070000Z"));
        assert_eq!(status.timeline, Some(2));
        assert_eq!(status.restorable_to.as_deref(), Some("0/5000000"));
        assert_eq!(
            status.target_time.map(|t| t.0.to_string()).as_deref(),
            Some("2026-12-06T07:30:00Z")
        );
        let restored = conditions::find(&status.conditions, RESTORED).unwrap();
        assert_eq!(restored.reason, "RecoveryPrepared");
        assert!(restored.message.contains("base backup 20261206T070000Z"));

        // A failure keeps the Job's words: the segment it names.
        let error = "WAL file 000000010000000000000004 is corrupt: SHA-256 differs".to_string();
        let status = build(&restore(), &done(JobResult::Failed(error.clone())), now);
        assert_eq!(status.phase, Some(RestorePhase::Failed));
        let restored = conditions::find(&status.conditions, RESTORED).unwrap();
        assert_eq!(
            (restored.reason.as_str(), restored.message.as_str()),
            (RESTORE_FAILED, error.as_str())
        );

        let refused = Step::Refused {
            reason: "PhysicalBackupNeedsNewDatabase",
            message: "create a Database".into(),
        };
        let status = build(&restore(), &refused, now);
        assert_eq!(status.phase, Some(RestorePhase::Failed));
        let restored = conditions::find(&status.conditions, RESTORED).unwrap();
        assert_eq!(restored.reason, "PhysicalBackupNeedsNewDatabase");
    }
}
