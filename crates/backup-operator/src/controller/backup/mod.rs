//! The Backup controller. Each reconcile is one pass of the pipeline: gather (Database,
//! Jobs) → validate and decide (pure) → apply (claim, run Job, old Jobs) → status → Events.
//! Runs are triggered by the schedule (the only time-based requeue) and by watches on the
//! Database and the Jobs; restore drills ([`drill`]) follow as a step of the same pass.

mod base;
mod claim;
mod cleanup;
mod drill;
mod gather;
mod job;
mod notify;
mod outcome;
mod plan;
mod source;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use api::{Backup, BackupMethod, Database, DeletionPolicy};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource as _, ResourceExt as _};
use serde_json::json;

pub use cleanup::FINALIZER;
pub use drill::COMPONENT_VERIFY;
pub use job::{COMPONENT_BACKUP, COMPONENT_CLEANUP};

use super::archiver;
use super::artifacts;
use super::context::Context;
use super::error::{self, Error};
use super::job_runs::create_if_absent;
use super::pod_template::{Destination, MANAGER};
use cleanup::Progress;
use outcome::Resolution;
use plan::{DatabaseState, Decision, Inputs};
use runtime::cached::newest;
use status::Observed;

/// How often a physical Backup's archiver is asked for its status.
const ARCHIVER_POLL: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

pub async fn reconcile(
    guard: Arc<DeserializeGuard<Backup>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let decoded = runtime::error::decoded(&guard, ctx.recorder()).await?;
    if !ctx.caches.synced().await {
        // The watches ended: the operator is shutting down.
        return Ok(Action::await_change());
    }
    // The finalizer helper wants the Backup itself behind an Arc; a cached Backup is small.
    let backup = Arc::new(newest(&ctx.caches.backup_statuses, decoded));
    let namespace = backup.namespace().unwrap_or_default();
    let api: Api<Backup> = Api::namespaced(ctx.client.clone(), &namespace);
    // The slot goes first, before any artifacts: the archiver must have stopped writing.
    if backup.spec.method == BackupMethod::Physical
        && let Some(action) = archiver::release::step(&ctx, &backup).await?
    {
        return Ok(action);
    }
    let deleting = backup.metadata.deletion_timestamp.is_some();
    let has_finalizer = backup.finalizers().iter().any(|f| f == FINALIZER);
    match backup.spec.deletion_policy {
        DeletionPolicy::Delete => {
            if deleting
                && has_finalizer
                && let Progress::Waiting = cleanup::run(&ctx, &backup).await?
            {
                return Ok(Action::await_change());
            }
            let name = backup.name_any();
            finalizer(&api, FINALIZER, backup, |event| async {
                match event {
                    FinalizerEvent::Apply(backup) => apply(&ctx, &backup).await,
                    FinalizerEvent::Cleanup(backup) => {
                        cleanup::finish(&ctx, &backup).await?;
                        Ok(Action::await_change())
                    }
                }
            })
            .await
            .map_err(|source| Error::Finalizer {
                name,
                source: Box::new(source),
            })
        }
        // Retain never deletes artifacts; a finalizer left from an earlier Delete goes.
        DeletionPolicy::Retain if has_finalizer => {
            cleanup::drop_finalizer(&api, &backup).await?;
            Ok(Action::await_change())
        }
        DeletionPolicy::Retain if deleting => Ok(Action::await_change()),
        DeletionPolicy::Retain => apply(&ctx, &backup).await,
    }
}

async fn apply(ctx: &Context, backup: &Backup) -> Result<Action, Error> {
    let now = ctx.now();
    let gathered = gather::gather(ctx, backup)?;
    let database = DatabaseState::of(gathered.database.as_ref());
    let validated = plan::validate(backup, gathered.database.as_ref());
    let resolution = match gathered.newest_finished() {
        Some(run) => Some(outcome::resolve(ctx, backup, run).await?),
        None => None,
    };
    let (last_run, learnt) = match resolution {
        None => (None, None),
        Some(Resolution::Known(last_run)) => (Some(last_run), None),
        Some(Resolution::New(learnt)) => (Some(learnt.last_run.clone()), Some(learnt)),
    };
    let mut observed = Observed {
        database: Some(database),
        active_job: gathered.in_flight().map(|j| j.name()),
        last_scheduled: gathered.last_scheduled(backup),
        suspended: backup.spec.suspend,
        last_run,
        history: learnt.as_ref().and_then(|l| l.history.clone()),
        last_run_now: gather::answered_by_jobs(&gathered.jobs),
        ..Observed::default()
    };
    let run_now = gather::pending_run_now(backup, &gathered.jobs);
    let physical = backup.spec.method == BackupMethod::Physical;
    // A physical Backup's archiver runs whatever the schedule says; base backups wait for
    // it to stream (WAL-ARCHIVING.md, "Order").
    let archiver = if physical {
        Some(archiver::step(ctx, backup).await?)
    } else {
        None
    };
    let may_start = archiver.as_ref().is_none_or(archiver::health::streaming);

    let mut started = None;
    match validated {
        Err(invalid) => observed.invalid = Some(invalid),
        Ok(schedule) => {
            let plan = plan::decide(&Inputs {
                backup,
                schedule: schedule.as_ref(),
                last_scheduled: observed.last_scheduled,
                in_flight: observed.active_job.as_deref(),
                run_now: run_now.as_deref(),
                database,
                now,
            });
            if let Some(missed) = plan.missed {
                tracing::info!(backup = %backup.name_any(), %missed, "scheduled run skipped: it passed longer ago than startingDeadlineSeconds");
            }
            observed.next = plan.next;
            if let Decision::Start { run_id, .. } = &plan.decision
                && !may_start
            {
                tracing::info!(backup = %backup.name_any(), %run_id, "base backup waits for the WAL archiver to stream");
            } else if let Decision::Start {
                run_id,
                scheduled,
                request,
            } = plan.decision
            {
                let host = source::dump_host(
                    backup,
                    gathered.database.as_ref(),
                    &backup.namespace().unwrap_or_default(),
                );
                let job = start_run(
                    ctx,
                    backup,
                    gathered.database.as_ref(),
                    &run_id,
                    &host,
                    request.as_deref(),
                )
                .await?;
                if let Some(request) = request {
                    tracing::info!(backup = %backup.name_any(), %request, %run_id, "run started on request");
                    observed.last_run_now = Some(api::RunNowRecord {
                        request,
                        run_id: run_id.clone(),
                    });
                }
                observed.active_job = Some(job.clone());
                observed.last_scheduled = observed.last_scheduled.max(Some(scheduled));
                started = Some((job, run_id));
            }
        }
    }
    delete_expired_jobs(ctx, backup, &gathered.jobs).await?;

    let mut new = status::build(backup, &observed, now);
    let drills = drill::step(
        ctx,
        backup,
        gathered.database.as_ref(),
        &mut new,
        observed.active_job.is_some(),
        now,
    )
    .await?;
    if let Some(seen) = &archiver {
        archiver::status::apply(&mut new, seen, backup.metadata.generation, now);
    }
    if api::conditions::status_changed(backup.status.as_ref(), &new) {
        patch_status(ctx, backup, &new).await?;
    }
    notify::notify(ctx, backup, &new, learnt.as_ref(), started.as_ref()).await;
    notify::drills(ctx, backup, &new, &drills).await;
    if let Some((warning, reason, message)) = archiver::status::change(backup.status.as_ref(), &new)
    {
        ctx.event(backup, warning, &reason, message).await;
    }
    // The archiver's progress is polled: nothing in the API server changes when it
    // archives a segment.
    let poll = physical.then(|| now + ARCHIVER_POLL);
    let next = [observed.next, drills.next, poll]
        .into_iter()
        .flatten()
        .min();
    Ok(requeue_at(next, now))
}

/// Creates what a run needs, then its Job. Both are created only if absent, under
/// deterministic names, so a repeated decision cannot start a second run.
async fn start_run(
    ctx: &Context,
    backup: &Backup,
    database: Option<&Database>,
    run_id: &str,
    host: &str,
    request: Option<&str>,
) -> Result<String, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    ensure_claim(ctx, backup).await?;
    // A Pod whose Secret is missing would wait for its deadline; say so now instead.
    if let Destination::S3(s3) = Destination::of(backup) {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        if let Err(error) = artifacts::open_s3(&secrets, &namespace, &s3).await {
            ctx.event(backup, true, "S3CredentialsInvalid", error.to_string())
                .await;
            return Err(error.into());
        }
    }
    let mut job = match backup.spec.method {
        BackupMethod::Logical => job::backup_job(backup, database, run_id, host, &ctx.jobs),
        BackupMethod::Physical => base::base_backup_job(backup, run_id, &ctx.jobs),
    };
    if let Some(request) = request {
        job.annotations_mut()
            .insert(api::RUN_NOW_ANNOTATION.into(), request.into());
    }
    let name = job.name_any();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let created = create_if_absent(&jobs, &job)
        .await
        .map_err(error::apply("create", "Job", &name))?;
    if let Some(created) = created {
        ctx.caches.backup_jobs.wrote(&created);
    }
    Ok(name)
}

/// The claim the operator makes for a Backup without a destination, created if absent:
/// before a run, and before a physical Backup's archiver, which mounts it too.
pub(crate) async fn ensure_claim(ctx: &Context, backup: &Backup) -> Result<(), Error> {
    if let Some(pvc) = claim::claim(backup) {
        let namespace = backup.namespace().unwrap_or_default();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
        let name = pvc.name_any();
        create_if_absent(&claims, &pvc).await.map_err(error::apply(
            "create",
            "PersistentVolumeClaim",
            &name,
        ))?;
    }
    Ok(())
}

async fn delete_expired_jobs(
    ctx: &Context,
    backup: &Backup,
    jobs: &[gather::RunJob],
) -> Result<(), Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    for name in gather::expired_jobs(jobs) {
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => return Err(error::apply("delete", "Job", &name)(source)),
        }
        ctx.caches.backup_jobs.deleted(&namespace, &name);
    }
    Ok(())
}

async fn patch_status(
    ctx: &Context,
    backup: &Backup,
    status: &api::BackupStatus,
) -> Result<(), Error> {
    let api: Api<Backup> =
        Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": Backup::api_version(&()),
        "kind": Backup::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    let patched = api
        .patch_status(&backup.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(error::status(&backup.name_any()))?;
    ctx.caches.backup_statuses.remember(patched);
    Ok(())
}

/// Wakes at the next scheduled time; a second late, so the clock has surely passed it.
fn requeue_at(next: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Action {
    match next {
        Some(next) => {
            let wait = (next - now).to_std().unwrap_or_default();
            Action::requeue(wait + Duration::from_secs(1))
        }
        None => Action::await_change(),
    }
}
