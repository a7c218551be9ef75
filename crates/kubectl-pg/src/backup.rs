//! `kubectl pg backup BACKUP --now [--wait]`: one run now, through the
//! `database.example.com/run-now` annotation the backup-operator honours (see
//! [`api::RUN_NOW_ANNOTATION`]). A fresh value per call is a new request; the operator starts
//! one run for it and records it in `status.lastRunNow`.

use std::process::ExitCode;

use api::conditions::{DEGRADED, WAITING_FOR_DATABASE};
use api::{Backup, RUN_NOW_ANNOTATION};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::cli::Target;
use crate::failure::{Failure, call};
use crate::follow::{Follow, Step, Timeouts, follow};

pub async fn run(
    target: &Target,
    name: &str,
    now: bool,
    wait: bool,
    timeouts: Timeouts,
) -> Result<ExitCode, Failure> {
    if !now {
        return Err(Failure::new(format!(
            "say what to do with Backup {name}: `kubectl pg backup {name} --now` starts one run now"
        )));
    }
    let ns = target.namespace.as_str();
    let api: Api<Backup> = Api::namespaced(target.client.clone(), ns);
    let backup = api
        .get(name)
        .await
        .map_err(call("get", "Backup", Some(name), ns))?;
    if backup.spec.suspend {
        return Err(Failure::new(format!(
            "Backup {name} is suspended (spec.suspend: true), so no run starts: set suspend to false first"
        )));
    }
    // Milliseconds since the epoch: unique per call, and says when it was asked.
    let request = chrono::Utc::now().timestamp_millis().to_string();
    let patch = json!({"metadata": {"annotations": {RUN_NOW_ANNOTATION: request}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(call("patch", "Backup", Some(name), ns))?;
    println!("Backup {name}: one run requested now ({RUN_NOW_ANNOTATION}={request}).");
    if !wait {
        println!(
            "Follow it with `kubectl pg status {}`.",
            backup.spec.database_ref.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let not_picked_up = format!(
        "the backup-operator has not taken up the request within {}s: is it running? \
         (the request stays and is honoured once it runs)",
        timeouts.pickup.as_secs()
    );
    let started = tokio::time::Instant::now();
    let line = follow(
        &api,
        name,
        Follow {
            what: format!("the run of Backup {name}"),
            pickup: timeouts.pickup,
            not_picked_up: &not_picked_up,
            timeout: timeouts.total,
        },
        |b| step(b, &request, started.elapsed().as_secs()),
    )
    .await?;
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// Where the run answering `request` is, from the Backup alone.
fn step(backup: &Backup, request: &str, seconds: u64) -> Step {
    let Some(status) = &backup.status else {
        return Step::Waiting;
    };
    let answered = status
        .last_run_now
        .as_ref()
        .filter(|r| r.request == request);
    let Some(run) = answered else {
        if let Some(job) = &status.active_job {
            return Step::Progress(format!(
                "waiting for the run in flight (Job {job}) to finish first, {seconds}s"
            ));
        }
        if let Some(waiting) = api::conditions::find(&status.conditions, WAITING_FOR_DATABASE)
            .filter(|c| c.status == "True")
        {
            return Step::Progress(format!("waiting: {}, {seconds}s", waiting.message));
        }
        return Step::Waiting;
    };
    let run_id = &run.run_id;
    if let Some(record) = status.history.iter().find(|r| &r.run_id == run_id) {
        return Step::Done(Ok(format!(
            "Run {run_id} completed: {} bytes at {}, SHA-256 {} verified.",
            record.size_bytes, record.location, record.sha256
        )));
    }
    if status.active_job.is_none()
        && let Some(degraded) = api::conditions::find(&status.conditions, DEGRADED)
            .filter(|c| c.status == "True" && c.message.contains(run_id.as_str()))
    {
        return Step::Done(Err(Failure::new(format!(
            "{}; see `kubectl pg report {}` for its logs",
            degraded.message, backup.spec.database_ref.name
        ))));
    }
    Step::Progress(format!("run {run_id} in progress, {seconds}s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(status: serde_json::Value) -> Backup {
        testkit::backup("nightly", "shop").status(status).build()
    }

    fn line(step: Step) -> String {
        match step {
            Step::Waiting => "waiting".into(),
            Step::Progress(line) => line,
            Step::Done(Ok(line)) => format!("ok: {line}"),
            Step::Done(Err(failure)) => format!("error: {failure}"),
        }
    }

    #[test]
    fn the_run_is_followed_from_request_to_result() {
        let condition = |type_: &str, status: &str, message: &str| {
            json!({"type": type_, "status": status, "reason": "R", "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z"})
        };
        let asked = json!({"request": "7", "runId": "20260102T100000Z"});
        let rows = [
            (json!({}), "waiting"),
            (
                json!({"activeJob": "nightly-a"}),
                "waiting for the run in flight (Job nightly-a)",
            ),
            (
                json!({"conditions": [condition("WaitingForDatabase", "True", "Database shop is not Ready")]}),
                "waiting: Database shop is not Ready",
            ),
            // An older request's record is not ours.
            (
                json!({"lastRunNow": {"request": "6", "runId": "r"}}),
                "waiting",
            ),
            (
                json!({"lastRunNow": asked, "activeJob": "nightly-b"}),
                "run 20260102T100000Z in progress",
            ),
            (
                json!({"lastRunNow": asked, "history": [{"runId": "20260102T100000Z",
                    "time": "2026-01-02T10:00:09Z", "location": "pvc://c/x", "sizeBytes": 10, "sha256": "ab"}]}),
                "ok: Run 20260102T100000Z completed: 10 bytes at pvc://c/x, SHA-256 ab verified.",
            ),
            (
                json!({"lastRunNow": asked, "conditions": [condition("Degraded", "True", "run 20260102T100000Z failed: pg_dump failed")]}),
                "error: run 20260102T100000Z failed: pg_dump failed; see `kubectl pg report shop`",
            ),
        ];
        for (i, (status, want)) in rows.into_iter().enumerate() {
            let got = line(step(&backup(status), "7", 3));
            assert!(got.starts_with(want), "row {i}: {got:?}");
        }
    }
}
