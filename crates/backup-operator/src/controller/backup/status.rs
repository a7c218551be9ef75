//! The Backup's status, computed (pure) from what this reconcile observed and did, merged
//! with the previous status so condition transition times move only on a flip.

use api::conditions::{self, BACKUP_READY, DEGRADED, PROGRESSING, WAITING_FOR_DATABASE};
use api::{Backup, BackupPhase, BackupRecord, BackupStatus, RunNowRecord};
use chrono::{DateTime, Utc};

use super::outcome::LastRun;
use super::plan::{DatabaseState, Invalid};
use crate::controller::time::{to_time, to_timestamp};

/// Reason of the Degraded condition when the newest run failed.
pub const BACKUP_FAILED: &str = "BackupFailed";
pub const DATABASE_NOT_FOUND: &str = "DatabaseNotFound";
pub const DATABASE_NOT_READY: &str = "DatabaseNotReady";

/// What the reconcile found and did.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub invalid: Option<Invalid>,
    pub database: Option<DatabaseState>,
    /// The Job of the run in flight, found or started now.
    pub active_job: Option<String>,
    pub last_scheduled: Option<DateTime<Utc>>,
    pub next: Option<DateTime<Utc>>,
    pub suspended: bool,
    /// The newest finished run, if its Job is still there.
    pub last_run: Option<LastRun>,
    /// The artifacts that exist, newest first; `None` keeps the previous history.
    pub history: Option<Vec<BackupRecord>>,
    /// The newest `run-now` request a run answers, started now or found on a Job; `None`
    /// keeps the previous record.
    pub last_run_now: Option<RunNowRecord>,
}

pub fn build(backup: &Backup, observed: &Observed, now: DateTime<Utc>) -> BackupStatus {
    let old = backup.status.clone().unwrap_or_default();
    let generation = backup.metadata.generation;
    let database = &backup.spec.database_ref.name;
    let history = match &observed.history {
        Some(new) => keep_verified(new, &old.history),
        None => old.history.clone(),
    };
    let newest = history.first();
    let waiting = matches!(
        observed.database,
        Some(DatabaseState::Missing | DatabaseState::NotReady)
    );

    let phase = if observed.invalid.is_some() {
        BackupPhase::Failed
    } else if observed.active_job.is_some() {
        BackupPhase::InProgress
    } else if waiting {
        BackupPhase::Pending
    } else {
        match &observed.last_run {
            Some(LastRun::Succeeded { .. }) => BackupPhase::Completed,
            Some(LastRun::Failed { .. }) => BackupPhase::Failed,
            // The Jobs were deleted by hand: keep what was concluded from them.
            None => old
                .phase
                .filter(|p| matches!(p, BackupPhase::Completed | BackupPhase::Failed))
                .unwrap_or(BackupPhase::Pending),
        }
    };

    let mut conds = old.conditions.clone();
    let mut set = |type_: &str, status: bool, reason: &str, message: String| {
        conditions::set(
            &mut conds,
            conditions::new(
                type_,
                status,
                reason,
                message,
                generation,
                to_timestamp(now),
            ),
        );
    };

    let (waits, reason, message) = match (&observed.invalid, observed.database) {
        (Some(invalid @ Invalid::DependencyCycle { .. }), _) => {
            (true, invalid.reason(), invalid.to_string())
        }
        (_, Some(DatabaseState::Missing)) => (
            true,
            DATABASE_NOT_FOUND,
            format!(
                "Database {database} does not exist in this namespace; create it or fix spec.databaseRef"
            ),
        ),
        (_, Some(DatabaseState::NotReady)) => (
            true,
            DATABASE_NOT_READY,
            format!("Database {database} is not Ready; runs start when it is"),
        ),
        _ => (
            false,
            "DatabaseReady",
            format!("Database {database} is Ready"),
        ),
    };
    set(WAITING_FOR_DATABASE, waits, reason, message);

    match newest {
        Some(record) => set(
            BACKUP_READY,
            true,
            "ArtifactAvailable",
            format!(
                "newest verified artifact: run {} at {}",
                record.run_id, record.location
            ),
        ),
        None => set(
            BACKUP_READY,
            false,
            "NoArtifact",
            "no verified artifact exists yet".into(),
        ),
    }

    let (progressing, reason, message) = match (&observed.active_job, &observed.invalid) {
        (Some(job), _) => (true, "RunInProgress", format!("Job {job} is running")),
        (None, Some(invalid)) => (
            false,
            invalid.reason(),
            "no runs start until the spec is fixed".into(),
        ),
        _ if observed.suspended => (
            false,
            "Suspended",
            "spec.suspend is true; no new runs start".into(),
        ),
        _ if waiting => (
            false,
            "WaitingForDatabase",
            format!("runs wait for Database {database}"),
        ),
        _ => match observed.next {
            Some(next) => (
                false,
                "Scheduled",
                format!("next run at {}", to_time(next).0),
            ),
            None => (false, "Idle", "no further runs are scheduled".into()),
        },
    };
    set(PROGRESSING, progressing, reason, message);

    let (degraded, reason, message) = match (&observed.invalid, &observed.last_run) {
        (Some(invalid), _) => (true, invalid.reason(), invalid.to_string()),
        (None, Some(LastRun::Failed { run_id, error })) => {
            (true, BACKUP_FAILED, format!("run {run_id} failed: {error}"))
        }
        _ => (false, "AsExpected", String::new()),
    };
    set(DEGRADED, degraded, reason, message);

    BackupStatus {
        phase: Some(phase),
        backup_location: newest.map(|r| r.location.clone()),
        last_backup_time: newest.map(|r| r.time.clone()),
        last_schedule_time: observed.last_scheduled.map(to_time),
        next_schedule_time: observed.next.filter(|_| !observed.suspended).map(to_time),
        size_bytes: newest.map(|r| r.size_bytes),
        sha256: newest.map(|r| r.sha256.clone()),
        active_job: observed.active_job.clone(),
        history,
        last_run_now: newest_run_now(observed.last_run_now.clone(), old.last_run_now),
        // Drills are recorded by their own step (`drill::status`).
        last_verification: old.last_verification,
        last_verified_time: old.last_verified_time,
        // Archiving is recorded by its own step (to come with `method: physical`).
        archive: old.archive,
        recoverability: old.recoverability,
        observed_generation: generation,
        conditions: conds,
    }
}

/// A history read anew (from storage, or merged after a run) knows nothing of drills: each
/// artifact keeps what the previous status said about it.
fn keep_verified(new: &[BackupRecord], old: &[BackupRecord]) -> Vec<BackupRecord> {
    new.iter()
        .map(|record| {
            let before = old.iter().find(|o| o.run_id == record.run_id);
            BackupRecord {
                verified: record.verified.or(before.and_then(|o| o.verified)),
                ..record.clone()
            }
        })
        .collect()
}

/// The record of the newer run: a Job found may be older than the status's record once that
/// run's own Job has expired.
fn newest_run_now(
    observed: Option<RunNowRecord>,
    old: Option<RunNowRecord>,
) -> Option<RunNowRecord> {
    match (observed, old) {
        (Some(observed), Some(old)) if old.run_id > observed.run_id => Some(old),
        (observed, old) => observed.or(old),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::time::parse_rfc3339;
    use api::conditions::find;
    use serde_json::json;

    fn backup(status: serde_json::Value) -> Backup {
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod", "generation": 2},
            "spec": {"databaseRef": {"name": "shop"}, "schedule": "0 2 * * *"},
            "status": status
        }))
        .unwrap()
    }

    fn record(run_id: &str) -> BackupRecord {
        BackupRecord {
            run_id: run_id.into(),
            time: to_time(parse_rfc3339("2026-01-02T02:00:09Z").unwrap()),
            location: format!("pvc://nightly-artifacts/shop/nightly/{run_id}/dump.pgdump"),
            size_bytes: 10,
            sha256: "ab".into(),
            verified: None,
            compression: None,
            compression_note: None,
        }
    }

    fn now() -> DateTime<Utc> {
        parse_rfc3339("2026-01-02T03:00:00Z").unwrap()
    }

    /// (phase, then each condition as `Type=Status/Reason`).
    fn summary(status: &BackupStatus) -> (BackupPhase, Vec<String>) {
        let mut conds: Vec<_> = status
            .conditions
            .iter()
            .map(|c| format!("{}={}/{}", c.type_, c.status, c.reason))
            .collect();
        conds.sort();
        (status.phase.unwrap(), conds)
    }

    #[test]
    fn status_for_each_situation() {
        use DatabaseState::*;
        let failed = LastRun::Failed {
            run_id: "r2".into(),
            error: "pg_dump failed".into(),
        };
        let succeeded = LastRun::Succeeded {
            run_id: "r1".into(),
        };
        let with_history = json!({"history": [serde_json::to_value(record("r1")).unwrap()]});
        // (old status, observed, phase, BackupReady, Degraded, Progressing, WaitingForDatabase)
        #[rustfmt::skip]
        let rows: Vec<(serde_json::Value, Observed, BackupPhase, &str, &str, &str, &str)> = vec![
            (json!({}), Observed { database: Some(NotReady), ..Observed::default() },
                BackupPhase::Pending, "False/NoArtifact", "False/AsExpected", "False/WaitingForDatabase", "True/DatabaseNotReady"),
            (json!({}), Observed { database: Some(Missing), ..Observed::default() },
                BackupPhase::Pending, "False/NoArtifact", "False/AsExpected", "False/WaitingForDatabase", "True/DatabaseNotFound"),
            (json!({}), Observed { database: Some(Ready), active_job: Some("nightly-r1".into()), ..Observed::default() },
                BackupPhase::InProgress, "False/NoArtifact", "False/AsExpected", "True/RunInProgress", "False/DatabaseReady"),
            (json!({}), Observed { database: Some(Ready), last_run: Some(succeeded), history: Some(vec![record("r1")]), next: Some(now()), ..Observed::default() },
                BackupPhase::Completed, "True/ArtifactAvailable", "False/AsExpected", "False/Scheduled", "False/DatabaseReady"),
            // A failed run after a verified one: Failed, but the earlier artifact keeps it ready.
            (with_history.clone(), Observed { database: Some(Ready), last_run: Some(failed.clone()), ..Observed::default() },
                BackupPhase::Failed, "True/ArtifactAvailable", "True/BackupFailed", "False/Idle", "False/DatabaseReady"),
            (json!({}), Observed { database: Some(Ready), last_run: Some(failed), ..Observed::default() },
                BackupPhase::Failed, "False/NoArtifact", "True/BackupFailed", "False/Idle", "False/DatabaseReady"),
            (json!({}), Observed { database: Some(Ready), invalid: Some(Invalid::DependencyCycle { database: "shop".into(), backup: "nightly".into() }), ..Observed::default() },
                BackupPhase::Failed, "False/NoArtifact", "True/DependencyCycle", "False/DependencyCycle", "True/DependencyCycle"),
            (with_history, Observed { database: Some(Ready), suspended: true, next: Some(now()), ..Observed::default() },
                BackupPhase::Pending, "True/ArtifactAvailable", "False/AsExpected", "False/Suspended", "False/DatabaseReady"),
        ];
        for (i, (old, observed, phase, ready, degraded, progressing, waiting)) in
            rows.into_iter().enumerate()
        {
            let status = build(&backup(old), &observed, now());
            let want = vec![
                format!("BackupReady={ready}"),
                format!("Degraded={degraded}"),
                format!("Progressing={progressing}"),
                format!("WaitingForDatabase={waiting}"),
            ];
            assert_eq!(summary(&status), (phase, want), "row {i}");
            assert_eq!(status.observed_generation, Some(2), "row {i}");
        }
    }

    #[test]
    fn completed_status_reports_the_newest_artifact() {
        let observed = Observed {
            database: Some(DatabaseState::Ready),
            last_run: Some(LastRun::Succeeded {
                run_id: "r2".into(),
            }),
            history: Some(vec![record("r2"), record("r1")]),
            last_scheduled: Some(parse_rfc3339("2026-01-02T02:00:00Z").unwrap()),
            next: Some(parse_rfc3339("2026-01-03T02:00:00Z").unwrap()),
            ..Observed::default()
        };
        let status = build(&backup(json!({})), &observed, now());
        assert_eq!(status.backup_location, Some(record("r2").location));
        assert_eq!(status.sha256.as_deref(), Some("ab"));
        assert_eq!(status.size_bytes, Some(10));
        assert_eq!(status.last_backup_time, Some(record("r2").time));
        assert_eq!(status.history.len(), 2);
        assert_eq!(status.next_schedule_time, observed.next.map(to_time));
        assert_eq!(
            status.last_schedule_time,
            observed.last_scheduled.map(to_time)
        );
    }

    #[test]
    fn unchanged_status_is_not_written_again() {
        let observed = Observed {
            database: Some(DatabaseState::NotReady),
            ..Observed::default()
        };
        let first = build(&backup(json!({})), &observed, now());
        let old = serde_json::to_value(&first).unwrap();
        let later = now() + chrono::Duration::minutes(5);
        let second = build(&backup(old), &observed, later);
        assert!(!api::conditions::status_changed(Some(&first), &second));
        let waiting = find(&second.conditions, WAITING_FOR_DATABASE).unwrap();
        assert_eq!(
            waiting.last_transition_time,
            to_time(now()),
            "kept, no flip"
        );
        let ready = Observed {
            database: Some(DatabaseState::Ready),
            ..Observed::default()
        };
        assert!(api::conditions::status_changed(
            Some(&first),
            &build(&backup(json!({})), &ready, later)
        ));
        assert!(api::conditions::status_changed(None, &first));
    }
}
