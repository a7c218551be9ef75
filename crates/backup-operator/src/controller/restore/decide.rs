//! Where a Restore stands and what to do about it (pure).

use api::names;
use api::{Backup, Database, Restore};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::{Resource as _, ResourceExt as _};

use super::job::RESTORE_CONTAINER;
use super::recovery_job::is_recovery;
use crate::controller::job_runs::{self, Finished};
use api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use backup_job::recovery_report::{RecoveryOutcome, RecoverySummary};

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Not yet: the condition reason and message say what it waits for.
    Wait {
        reason: &'static str,
        message: String,
    },
    /// Start the Job, restoring this run (`None`: the newest the Job finds).
    Start {
        run_id: Option<String>,
    },
    Running {
        job: String,
    },
    Finished(Finished),
    /// Start the recovery Job of a physical Backup, to this target (`None`: the end of the
    /// archive).
    StartRecovery {
        target_time: Option<Time>,
    },
    /// The recovery Job ended.
    Recovered(Finished<RecoverySummary>),
    /// This Restore can never run as asked: the reason and message say why. Final.
    Refused {
        reason: &'static str,
        message: String,
    },
    /// The Job vanished before it finished. A Restore never runs twice, so this is final.
    Lost {
        job: String,
    },
}

/// The Restore the backup-operator creates for a Database with a `backupRef`: named by
/// `names::initial_restore` and owned by that Database.
pub fn is_initial(restore: &Restore) -> bool {
    let database = &restore.spec.database_ref.name;
    restore.name_any() == names::initial_restore(database)
        && restore
            .owner_references()
            .iter()
            .any(|o| o.kind == Database::kind(&()) && &o.name == database)
}

/// Whether the target can take the restore. A user's Restore needs a Ready Database. The
/// initial restore runs before the Database can be Ready (the database-operator waits for
/// it), so it needs every replica serving instead.
fn serving(restore: &Restore, database: &Database) -> bool {
    if is_initial(restore) {
        let ready = database.status.as_ref().map_or(0, |s| s.ready_replicas);
        ready >= database.spec.replicas.max(1)
    } else {
        database.is_ready()
    }
}

pub fn decide(
    restore: &Restore,
    backup: Option<&Backup>,
    database: Option<&Database>,
    job: Option<&Job>,
    pods: &[Pod],
) -> Step {
    let job_name = names::restore_job(&restore.name_any());
    if let Some(job) = job.filter(|j| is_recovery(j)) {
        return match job_runs::finished_as::<RecoveryOutcome>(job, pods, RESTORE_CONTAINER) {
            Some(finished) => Step::Recovered(finished),
            None => Step::Running { job: job_name },
        };
    }
    if let Some(job) = job {
        return match job_runs::finished(job, pods, RESTORE_CONTAINER) {
            Some(finished) => Step::Finished(finished),
            None => Step::Running { job: job_name },
        };
    }
    if restore.phase() == api::RestorePhase::Running {
        return Step::Lost { job: job_name };
    }
    let backup_name = &restore.spec.backup_ref.name;
    let database_name = &restore.spec.database_ref.name;
    let Some(backup) = backup else {
        return Step::Wait {
            reason: "BackupNotFound",
            message: format!(
                "Backup {backup_name} does not exist in this namespace; create it or fix spec.backupRef"
            ),
        };
    };
    if !backup.is_ready() {
        return Step::Wait {
            reason: "WaitingForBackup",
            message: format!("Backup {backup_name} has no verified artifact yet"),
        };
    }
    let Some(database) = database else {
        return Step::Wait {
            reason: "DatabaseNotFound",
            message: format!(
                "Database {database_name} does not exist in this namespace; create it or fix spec.databaseRef"
            ),
        };
    };
    if api::recovery::is_physical(backup) {
        return decide_recovery(restore, backup, database);
    }
    if !serving(restore, database) {
        return Step::Wait {
            reason: "WaitingForDatabase",
            message: format!("Database {database_name} is not serving yet"),
        };
    }
    // Fixed now, from the history, so the status says which artifact was restored.
    let newest = backup
        .status
        .as_ref()
        .and_then(|s| s.history.first())
        .map(|r| r.run_id.clone());
    Step::Start {
        run_id: restore.spec.run_id.clone().or(newest),
    }
}

/// A physical Backup restores only into a new Database, as its data directory before its
/// server first starts: the initial Restore of a Database whose `backupRef` names it.
fn decide_recovery(restore: &Restore, backup: &Backup, database: &Database) -> Step {
    let backup_name = &restore.spec.backup_ref.name;
    let database_name = &restore.spec.database_ref.name;
    let names_backup = database
        .spec
        .backup_ref
        .as_ref()
        .is_some_and(|r| &r.name == backup_name);
    if !is_initial(restore) || !names_backup {
        return Step::Refused {
            reason: "PhysicalBackupNeedsNewDatabase",
            message: format!(
                "Backup {backup_name} is physical: it recovers only into a new Database, before its server first starts. Create a Database with spec.backupRef.name: {backup_name} (and targetTime for a point in time) instead of this Restore into Database {database_name}"
            ),
        };
    }
    if api::recovery::awaits_window(database, backup) {
        return Step::Wait {
            reason: "WaitingForBackup",
            message: format!(
                "Backup {backup_name} reports no recoverability window yet to check targetTime against"
            ),
        };
    }
    if let Some(refusal) = api::recovery::refusal(database, backup) {
        return Step::Refused {
            reason: "TargetOutsideWindow",
            message: refusal,
        };
    }
    if restore.spec.run_id.is_some() {
        return Step::Refused {
            reason: "RunIdNotSupported",
            message: "spec.runId is for logical Backups; a recovery chooses the newest base backup before its target".into(),
        };
    }
    Step::StartRecovery {
        target_time: database
            .spec
            .backup_ref
            .as_ref()
            .and_then(|r| r.target_time.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn restore(name: &str, owner: Option<&str>, status: serde_json::Value) -> Restore {
        let owners = match owner {
            Some(db) => {
                json!([{"apiVersion": "database.example.com/v1", "kind": "Database", "name": db, "uid": "u"}])
            }
            None => json!([]),
        };
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Restore",
            "metadata": {"name": name, "namespace": "prod", "ownerReferences": owners},
            "spec": {"backupRef": {"name": "nightly"}, "databaseRef": {"name": "copy"}},
            "status": status
        }))
        .unwrap()
    }

    fn backup(ready: bool) -> Backup {
        let status = if ready {
            json!({"history": [{"runId": "r9", "time": "2026-01-02T02:00:00Z", "location": "l", "sizeBytes": 1, "sha256": "ab"}],
                   "conditions": [{"type": "BackupReady", "status": "True", "reason": "ArtifactAvailable", "message": "", "lastTransitionTime": "2026-01-02T02:00:00Z"}]})
        } else {
            json!({})
        };
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly"}, "spec": {"databaseRef": {"name": "shop"}}, "status": status
        }))
        .unwrap()
    }

    fn database(ready_condition: bool, ready_replicas: i32) -> Database {
        let conditions = if ready_condition {
            json!([{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2026-01-02T02:00:00Z"}])
        } else {
            json!([])
        };
        let status = json!({"readyReplicas": ready_replicas, "observedGeneration": 1, "conditions": conditions});
        testkit::database("copy")
            .set("/metadata/generation", json!(1))
            .replicas(2)
            .set("/status", status)
            .build()
    }

    fn reason(step: &Step) -> String {
        match step {
            Step::Wait { reason, .. } => reason.to_string(),
            Step::Start { run_id } => format!("Start {run_id:?}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_restore_waits_until_backup_and_database_can_serve() {
        let user = restore("refresh", None, json!({}));
        let initial = restore("copy-init", Some("copy"), json!({}));
        let running = restore("refresh", None, json!({"phase": "Running"}));
        // (restore, backup, database, decision)
        let rows: Vec<(&Restore, Option<Backup>, Option<Database>, &str)> = vec![
            (&user, None, Some(database(true, 2)), "BackupNotFound"),
            (
                &user,
                Some(backup(false)),
                Some(database(true, 2)),
                "WaitingForBackup",
            ),
            (&user, Some(backup(true)), None, "DatabaseNotFound"),
            (
                &user,
                Some(backup(true)),
                Some(database(false, 2)),
                "WaitingForDatabase",
            ),
            (
                &user,
                Some(backup(true)),
                Some(database(true, 2)),
                "Start Some(\"r9\")",
            ),
            // The initial restore needs every replica serving, not the Ready condition.
            (
                &initial,
                Some(backup(true)),
                Some(database(false, 1)),
                "WaitingForDatabase",
            ),
            (
                &initial,
                Some(backup(true)),
                Some(database(false, 2)),
                "Start Some(\"r9\")",
            ),
            // Its Job vanished while running: never started a second time.
            (
                &running,
                Some(backup(true)),
                Some(database(true, 2)),
                "Lost { job: \"restore-refresh\" }",
            ),
        ];
        for (i, (restore, backup, database, want)) in rows.into_iter().enumerate() {
            let step = decide(restore, backup.as_ref(), database.as_ref(), None, &[]);
            assert_eq!(reason(&step), want, "row {i}");
        }
    }

    fn physical_backup(window: Option<(&str, &str)>) -> Backup {
        let mut status = json!({"conditions": [{"type": "BackupReady", "status": "True", "reason": "Completed", "message": "", "lastTransitionTime": "2026-12-06T07:00:00Z"}]});
        if let Some((first, last)) = window {
            status["recoverability"] =
                json!({"firstRecoverableTime": first, "lastRecoverableTime": last});
        }
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly"}, "spec": {"databaseRef": {"name": "shop"}, "method": "physical"},
            "status": status
        }))
        .unwrap()
    }

    fn new_database(target: Option<&str>) -> Database {
        let db = testkit::database("copy").backup_ref("nightly");
        match target {
            Some(t) => db.set("/spec/backupRef/targetTime", json!(t)).build(),
            None => db.build(),
        }
    }

    #[test]
    fn a_physical_backup_recovers_only_into_a_new_database_within_its_window() {
        let user = restore("refresh", None, json!({}));
        let initial = restore("copy-init", Some("copy"), json!({}));
        let window = Some(("2026-12-06T07:00:00Z", "2026-12-06T08:00:00Z"));
        // (restore, database target, window, decision)
        let rows = [
            (
                &user,
                None,
                window,
                "Refused PhysicalBackupNeedsNewDatabase",
            ),
            (&initial, None, window, "StartRecovery None"),
            // Nothing serves yet, and nothing needs to.
            (
                &initial,
                Some("2026-12-06T07:30:00Z"),
                window,
                "StartRecovery Some(\"2026-12-06T07:30:00Z\")",
            ),
            (
                &initial,
                Some("2026-12-06T09:00:00Z"),
                window,
                "Refused TargetOutsideWindow",
            ),
        ];
        for (i, (restore, target, window, want)) in rows.into_iter().enumerate() {
            let backup = physical_backup(window);
            let database = new_database(target);
            let step = decide(restore, Some(&backup), Some(&database), None, &[]);
            let got = match &step {
                Step::Refused { reason, .. } => format!("Refused {reason}"),
                Step::StartRecovery { target_time } => format!(
                    "StartRecovery {:?}",
                    target_time.as_ref().map(|t| t.0.to_string())
                ),
                other => format!("{other:?}"),
            };
            assert_eq!(got, want, "row {i}");
        }
    }
}
