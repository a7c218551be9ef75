//! Where a Restore stands and what to do about it (pure).

use api::names;
use api::{Backup, Database, Restore};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::{Resource as _, ResourceExt as _};

use super::job::RESTORE_CONTAINER;
use crate::controller::job_runs::{self, Finished};

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
}
