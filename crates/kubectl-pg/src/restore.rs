//! `kubectl pg restore BACKUP --to DATABASE [--run RUN]`: creates the Restore and follows
//! it to the end. `--time` (point-in-time recovery) is refused: backups are logical dumps,
//! so the points a restore can reach are the runs themselves.

use std::process::ExitCode;

use api::conditions::RESTORED;
use api::{Backup, Database, ObjectReference, Restore, RestorePhase, RestoreSpec};
use kube::api::PostParams;
use kube::{Api, ResourceExt as _};

use crate::cli::Target;
use crate::failure::{Failure, call};
use crate::follow::{Follow, Step, Timeouts, follow};

pub struct Request {
    pub backup: String,
    pub database: String,
    pub run: Option<String>,
    pub time: Option<String>,
    pub name: Option<String>,
    pub wait: bool,
    pub timeouts: Timeouts,
}

pub async fn run(target: &Target, request: Request) -> Result<ExitCode, Failure> {
    if let Some(time) = &request.time {
        return Err(Failure::new(format!(
            "cannot restore to {time}: point-in-time recovery is not available in this version \
             (backups are logical dumps); restore one of the Backup's runs with --run RUN instead \
             (`kubectl pg status {}` lists them)",
            request.database
        )));
    }
    let ns = target.namespace.as_str();
    let backups: Api<Backup> = Api::namespaced(target.client.clone(), ns);
    let backup = backups.get(&request.backup).await.map_err(call(
        "get",
        "Backup",
        Some(&request.backup),
        ns,
    ))?;
    let databases: Api<Database> = Api::namespaced(target.client.clone(), ns);
    databases.get(&request.database).await.map_err(call(
        "get",
        "Database",
        Some(&request.database),
        ns,
    ))?;
    check_run(&backup, request.run.as_deref())?;

    let restores: Api<Restore> = Api::namespaced(target.client.clone(), ns);
    let mut restore = Restore::new(
        request.name.as_deref().unwrap_or_default(),
        RestoreSpec {
            backup_ref: ObjectReference {
                name: request.backup.clone(),
            },
            database_ref: ObjectReference {
                name: request.database.clone(),
            },
            run_id: request.run.clone(),
        },
    );
    if request.name.is_none() {
        restore.metadata.name = None;
        restore.metadata.generate_name = Some(generate_name(&request.database));
    }
    let created = restores
        .create(&PostParams::default(), &restore)
        .await
        .map_err(call("create", "Restore", request.name.as_deref(), ns))?;
    let name = created.name_any();
    println!(
        "Restore {name} created: Backup {} run {} into Database {}.",
        request.backup,
        request.run.as_deref().unwrap_or("(newest)"),
        request.database
    );
    if !request.wait {
        println!("Follow it with `kubectl pg status {}`.", request.database);
        return Ok(ExitCode::SUCCESS);
    }
    let not_picked_up = format!(
        "the backup-operator has not taken up Restore {name} within {}s: is it running? \
         (the Restore stays and runs once it does)",
        request.timeouts.pickup.as_secs()
    );
    let started = tokio::time::Instant::now();
    let line = follow(
        &restores,
        &name,
        Follow {
            what: format!("Restore {name}"),
            pickup: request.timeouts.pickup,
            not_picked_up: &not_picked_up,
            timeout: request.timeouts.total,
        },
        |r| step(r, started.elapsed().as_secs()),
    )
    .await?;
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// `<database>-restore-`, the API server adds a random suffix; kept short enough for the
/// 63-character limit on Restore names.
fn generate_name(database: &str) -> String {
    let prefix: String = database.chars().take(40).collect();
    format!("{}-restore-", prefix.trim_end_matches('-'))
}

/// A run named on the command line must be one the Backup has a verified artifact of.
fn check_run(backup: &Backup, run: Option<&str>) -> Result<(), Failure> {
    let name = backup.name_any();
    let history = backup
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    if history.is_empty() {
        return Err(Failure::new(format!(
            "Backup {name} has no verified artifact yet: wait for its first run \
             (`kubectl pg backup {name} --now --wait` takes one)"
        )));
    }
    match run {
        Some(run) if !history.iter().any(|r| r.run_id == run) => {
            let runs: Vec<&str> = history.iter().map(|r| r.run_id.as_str()).collect();
            Err(Failure::new(format!(
                "Backup {name} has no artifact of run {run}; its runs are {}",
                runs.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

fn step(restore: &Restore, seconds: u64) -> Step {
    let Some(status) = &restore.status else {
        return Step::Waiting;
    };
    let message = api::conditions::find(&status.conditions, RESTORED)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    match restore.phase() {
        RestorePhase::Pending if message.is_empty() => {
            Step::Progress(format!("pending, {seconds}s"))
        }
        RestorePhase::Pending => Step::Progress(format!("pending: {message}, {seconds}s")),
        RestorePhase::Running => Step::Progress(format!(
            "restoring run {}, {seconds}s",
            status.run_id.as_deref().unwrap_or("?")
        )),
        RestorePhase::Completed => Step::Done(Ok(format!(
            "Restore {} completed: run {} (SHA-256 {}) restored into Database {}.",
            restore.name_any(),
            status.run_id.as_deref().unwrap_or("?"),
            status.sha256.as_deref().unwrap_or("?"),
            restore.spec.database_ref.name
        ))),
        RestorePhase::Failed => Step::Done(Err(Failure::new(format!(
            "Restore {} failed: {message}",
            restore.name_any()
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_runs_with_a_verified_artifact_can_be_named() {
        let record = json!({"runId": "r1", "time": "2026-01-02T10:00:09Z", "location": "x",
            "sizeBytes": 1, "sha256": "ab"});
        let with = testkit::backup("nightly", "shop")
            .status(json!({"history": [record]}))
            .build();
        let without = testkit::backup("nightly", "shop").build();
        assert!(check_run(&with, None).is_ok());
        assert!(check_run(&with, Some("r1")).is_ok());
        let wrong = check_run(&with, Some("r9")).unwrap_err().to_string();
        assert!(
            wrong.contains("no artifact of run r9; its runs are r1"),
            "{wrong}"
        );
        let none = check_run(&without, None).unwrap_err().to_string();
        assert!(none.contains("no verified artifact yet"), "{none}");
    }

    #[test]
    fn generated_names_fit_the_limit() {
        let name = generate_name(&"a".repeat(52));
        assert!(name.len() + 5 <= 63, "{name}");
        assert_eq!(generate_name("shop"), "shop-restore-");
    }
}
