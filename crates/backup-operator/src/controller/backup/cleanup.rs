//! `deletionPolicy: Delete`: the artifacts go before the Backup does. The finalizer helper
//! adds and removes the finalizer; the work that may take a while (a clean-up Job) runs
//! before it is called, so "not done yet" is an ordinary wait for a watch event rather
//! than an error.

use api::names;
use api::{Backup, S3Destination};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::DeleteParams;
use kube::{Api, ResourceExt as _};

use super::job::{CLEANUP_CONTAINER, cleanup_job};
use crate::controller::artifacts::{self, ArtifactsError};
use crate::controller::context::Context;
use crate::controller::error::{self, Error};
use crate::controller::finalizers;
use crate::controller::job_runs::{self, JobResult, create_if_absent, is_active};
use crate::controller::pod_template::Destination;

/// Present on a Backup whose artifacts are deleted with it.
pub const FINALIZER: &str = "database.example.com/artifacts";

pub enum Progress {
    /// A clean-up Job runs; its watch event brings the next reconcile.
    Waiting,
    Done,
}

/// Deletes the artifacts of a Backup being deleted.
pub async fn run(ctx: &Context, backup: &Backup) -> Result<Progress, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let name = backup.name_any();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    stop_runs(ctx, &jobs, &namespace, &name).await?;
    match Destination::of(backup) {
        // Owned by the Backup, so the garbage collector deletes it with the artifacts.
        Destination::Claim {
            operator_created: true,
            ..
        } => Ok(Progress::Done),
        Destination::S3(s3) => match purge_s3(ctx, backup, &s3).await {
            Ok(note) => {
                ctx.event(backup, false, "ArtifactsDeleted", note).await;
                Ok(Progress::Done)
            }
            Err(error) => {
                let note = format!(
                    "{error}; retrying. To keep the artifacts instead, remove the finalizer {FINALIZER} from Backup {name}"
                );
                ctx.event(backup, true, "CleanupFailed", note).await;
                Err(error.into())
            }
        },
        Destination::Claim { name: claim, .. } => purge_claim(ctx, backup, &jobs, &claim).await,
    }
}

/// Deletes the series from the bucket, from the operator itself.
async fn purge_s3(
    ctx: &Context,
    backup: &Backup,
    s3: &S3Destination,
) -> Result<String, ArtifactsError> {
    let namespace = backup.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let storage = artifacts::open_s3(&secrets, &namespace, s3).await?;
    let series = artifacts::series(&backup.spec.database_ref.name, &backup.name_any())?;
    let report = artifacts::delete_all(&storage, &series, s3).await?;
    Ok(format!(
        "deleted {} artifacts from {}",
        report.deleted_runs.len(),
        storage.location(&series.relative_dir())
    ))
}

/// Deletes runs in flight, so nothing is written after the artifacts are gone. A dump that
/// gets SIGTERM discards its partial artifact.
async fn stop_runs(
    ctx: &Context,
    jobs: &Api<Job>,
    namespace: &str,
    backup: &str,
) -> Result<(), Error> {
    let runs = ctx
        .caches
        .backup_jobs
        .select(namespace, |job| {
            job.labels().get(names::LABEL_BACKUP).map(String::as_str) == Some(backup)
        })
        .map_err(Error::Unreadable)?;
    for job in runs.iter().filter(|j| is_active(j)) {
        let name = job.name_any();
        delete_job(jobs, &name).await?;
        ctx.caches.backup_jobs.deleted(namespace, &name);
    }
    Ok(())
}

/// A claim the user provided outlives the Backup, so a Job removes this Backup's folder.
async fn purge_claim(
    ctx: &Context,
    backup: &Backup,
    jobs: &Api<Job>,
    claim: &str,
) -> Result<Progress, Error> {
    let name = backup.name_any();
    let job_name = names::cleanup_job(&name);
    let namespace = backup.namespace().unwrap_or_default();
    let Some(job) = ctx
        .caches
        .cleanup_jobs
        .get(&namespace, &job_name)
        .map_err(Error::Unreadable)?
    else {
        let job = cleanup_job(backup, claim, &ctx.jobs);
        let created = create_if_absent(jobs, &job)
            .await
            .map_err(error::apply("create", "Job", &job_name))?;
        if let Some(created) = created {
            ctx.caches.cleanup_jobs.wrote(&created);
        }
        let note = format!("started Job {job_name} to delete the artifacts from claim {claim}");
        ctx.event(backup, false, "CleanupStarted", note).await;
        return Ok(Progress::Waiting);
    };
    if is_active(&job) {
        return Ok(Progress::Waiting);
    }
    let pods: Api<Pod> =
        Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
    let found = job_runs::pods_of(&pods, &job_name)
        .await
        .map_err(error::gather("the Pods of Job", &job_name))?;
    let succeeded = job
        .status
        .as_ref()
        .and_then(|s| s.succeeded)
        .is_some_and(|n| n > 0);
    if succeeded {
        return Ok(Progress::Done);
    }
    let reason = match job_runs::finished(&job, &found, CLEANUP_CONTAINER).map(|f| f.result) {
        Some(JobResult::Failed(error)) => error,
        _ => format!("Job {job_name} failed"),
    };
    let note = format!(
        "{reason}; retrying. To keep the artifacts instead, remove the finalizer {FINALIZER} from Backup {name}"
    );
    ctx.event(backup, true, "CleanupFailed", note).await;
    // A fresh Job on the next attempt; the failed one has nothing more to say.
    delete_job(jobs, &job_name).await?;
    Err(Error::Cleanup { name, reason })
}

/// The last step, in the finalizer helper's clean-up branch: the clean-up Job has no owner
/// (see `job::cleanup_job`), so it is deleted here.
pub async fn finish(ctx: &Context, backup: &Backup) -> Result<(), Error> {
    if let Destination::Claim {
        operator_created: false,
        ..
    } = Destination::of(backup)
    {
        let jobs: Api<Job> =
            Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
        delete_job(&jobs, &names::cleanup_job(&backup.name_any())).await?;
    }
    Ok(())
}

async fn delete_job(jobs: &Api<Job>, name: &str) -> Result<(), Error> {
    match jobs.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(error::apply("delete", "Job", name)(source)),
    }
}

/// A Backup switched from `Delete` to `Retain` loses the finalizer without its artifacts
/// being touched. The resourceVersion makes the patch fail, and retry, if the list changed.
pub async fn drop_finalizer(api: &Api<Backup>, backup: &Backup) -> Result<(), Error> {
    let remaining: Vec<String> = backup
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    finalizers::set(api, backup, &remaining, "remove the finalizer of").await
}
