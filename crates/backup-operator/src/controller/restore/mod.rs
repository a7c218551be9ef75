//! The Restore controller: gather (Job, Backup, Database) → decide (pure) → start the Job
//! → status → Events. A Restore runs at most once: once its Job exists, only that Job's
//! result counts, and a vanished Job fails the Restore instead of starting another.

mod decide;
mod job;
mod recovery_job;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use api::names;
use api::{Restore, RestorePhase};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Api, Resource as _, ResourceExt as _};
use serde_json::json;

#[cfg(test)]
pub use decide::is_initial;
pub use job::COMPONENT_RESTORE;

use super::context::Context;
use super::error::{self, Error};
use super::job_runs::{self, JobResult, create_if_absent};
use super::pod_template::MANAGER;
use decide::Step;
use runtime::cached::newest;

pub async fn reconcile(
    guard: Arc<DeserializeGuard<Restore>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let decoded = runtime::error::decoded(&guard, ctx.recorder()).await?;
    if !ctx.caches.synced().await {
        // The watches ended: the operator is shutting down.
        return Ok(Action::await_change());
    }
    let restore = &newest(&ctx.caches.restore_statuses, decoded);
    let terminal = matches!(
        restore.phase(),
        RestorePhase::Completed | RestorePhase::Failed
    );
    if terminal || restore.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let now = ctx.now();
    let namespace = restore.namespace().unwrap_or_default();
    let name = restore.name_any();
    let job_name = names::restore_job(&name);
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let job = ctx
        .caches
        .restore_jobs
        .get(&namespace, &job_name)
        .map_err(Error::Unreadable)?;

    let (backup, database, pods) = match &job {
        Some(job) if !job_runs::is_active(job) => {
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
            let found = job_runs::pods_of(&pods, &job_name)
                .await
                .map_err(error::gather("the Pods of Job", &job_name))?;
            (None, None, found)
        }
        Some(_) => (None, None, Vec::new()),
        None => {
            let backup = ctx
                .caches
                .backup(&namespace, &restore.spec.backup_ref.name)?;
            let database = ctx
                .caches
                .database(&namespace, &restore.spec.database_ref.name)?;
            (backup, database, Vec::new())
        }
    };

    let step = decide::decide(
        restore,
        backup.as_ref(),
        database.as_ref(),
        job.as_ref(),
        &pods,
    );
    if let (Step::Start { run_id }, Some(backup)) = (&step, &backup) {
        let job = job::restore_job(restore, backup, run_id.as_deref(), &ctx.jobs);
        let created = create_if_absent(&jobs_api, &job)
            .await
            .map_err(error::apply("create", "Job", &job_name))?;
        if let Some(created) = created {
            ctx.caches.restore_jobs.wrote(&created);
        }
    }
    if let (Step::StartRecovery { target_time }, Some(backup)) = (&step, &backup) {
        let job = recovery_job::recovery_job(restore, backup, target_time.as_ref(), &ctx.jobs);
        let created = create_if_absent(&jobs_api, &job)
            .await
            .map_err(error::apply("create", "Job", &job_name))?;
        if let Some(created) = created {
            ctx.caches.restore_jobs.wrote(&created);
        }
    }

    let new = status::build(restore, &step, now);
    if api::conditions::status_changed(restore.status.as_ref(), &new) {
        let api: Api<Restore> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = json!({
            "apiVersion": Restore::api_version(&()),
            "kind": Restore::kind(&()),
            "status": new,
        });
        let patched = api
            .patch_status(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(error::status(&name))?;
        ctx.caches.restore_statuses.remember(patched);
    }
    notify(&ctx, restore, &step).await;
    Ok(Action::await_change())
}

/// Events and metrics. Terminal steps are seen once: the next reconcile stops early.
async fn notify(ctx: &Context, restore: &Restore, step: &Step) {
    let database = &restore.spec.database_ref.name;
    match step {
        Step::Start { run_id } => {
            let run = run_id.as_deref().unwrap_or("the newest run");
            let note = format!(
                "restoring {run} of Backup {} into Database {database}",
                restore.spec.backup_ref.name
            );
            ctx.event(restore, false, "RestoreStarted", note).await;
        }
        Step::Finished(finished) => {
            if let Some(seconds) = finished.duration_seconds() {
                tracing::info!(restore = %restore.name_any(), seconds, "restore finished");
            }
            match &finished.result {
                JobResult::Succeeded(summary) => {
                    ctx.metrics.restores.with_label_values(&["succeeded"]).inc();
                    let note = format!("restored run {} into Database {database}", summary.run_id);
                    ctx.event(restore, false, "RestoreSucceeded", note).await;
                }
                JobResult::Failed(error) => {
                    ctx.metrics.restores.with_label_values(&["failed"]).inc();
                    ctx.event(restore, true, status::RESTORE_FAILED, error.clone())
                        .await;
                }
            }
        }
        Step::StartRecovery { target_time } => {
            let to = match target_time {
                Some(t) => format!("to {}", t.0),
                None => "to the end of the archive".to_string(),
            };
            let note = format!(
                "preparing the data volume of Database {database} from Backup {} {to}",
                restore.spec.backup_ref.name
            );
            ctx.event(restore, false, "RecoveryStarted", note).await;
        }
        Step::Recovered(finished) => match &finished.result {
            JobResult::Succeeded(summary) => {
                ctx.metrics.restores.with_label_values(&["succeeded"]).inc();
                let note = format!(
                    "prepared Database {database} from base backup {} (timeline {})",
                    summary.base_backup, summary.timeline
                );
                ctx.event(restore, false, "RecoveryPrepared", note).await;
            }
            JobResult::Failed(error) => {
                ctx.metrics.restores.with_label_values(&["failed"]).inc();
                ctx.event(restore, true, status::RESTORE_FAILED, error.clone())
                    .await;
            }
        },
        Step::Refused { reason, message } => {
            ctx.metrics.restores.with_label_values(&["failed"]).inc();
            ctx.event(restore, true, reason, message.clone()).await;
        }
        Step::Lost { job } => {
            ctx.metrics.restores.with_label_values(&["failed"]).inc();
            let note =
                format!("Job {job} disappeared before it finished; create a new Restore to retry");
            ctx.event(restore, true, status::RESTORE_FAILED, note).await;
        }
        Step::Wait { .. } | Step::Running { .. } => {}
    }
}
