//! A physical Backup's replication slot does not outlive it. Every physical Backup carries
//! the [`FINALIZER`]; when it is deleted (whatever its `deletionPolicy`) the archiver is
//! stopped first (its StatefulSet deleted, its Pod gone: it ships what it has on SIGTERM,
//! and an active slot cannot be dropped), then a Job drops the slot on the primary
//! ([`super::slot_job`]), then the finalizer goes. The operator never talks to PostgreSQL
//! itself: the Job has the credentials, the operator only reads its result.
//!
//! When the Database is gone the slot went with its server and no Job runs. When the Job
//! fails (the Database is unreachable), a Warning Event names the slot and how to drop it
//! by hand, and the Backup goes anyway: a Backup that could never be deleted would be worse
//! than a slot someone was told about. A slot left on a former primary after a failover is
//! not reached by the Service and is not dropped here either.

use std::time::Duration;

use api::{Backup, names};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt as _};

use super::slot_job::{DROP_SLOT_CONTAINER, drop_slot_job};
use crate::controller::context::Context;
use crate::controller::error::{self, Error};
use crate::controller::finalizers;
use crate::controller::job_runs::{self, JobResult, create_if_absent, is_active};

/// Present on every physical Backup until its slot is dropped.
pub const FINALIZER: &str = "database.example.com/wal-slot";
/// How often a deletion looks again while the archiver's Pod stops.
const STOPPING: Duration = Duration::from_secs(3);

/// The slot's part of a physical Backup's reconcile: `Some` when it decided what happens
/// next (the finalizer was added, or the deletion is under way), `None` to go on.
pub async fn step(ctx: &Context, backup: &Backup) -> Result<Option<Action>, Error> {
    let deleting = backup.metadata.deletion_timestamp.is_some();
    let has_finalizer = backup.finalizers().iter().any(|f| f == FINALIZER);
    let api: Api<Backup> =
        Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
    match (deleting, has_finalizer) {
        (false, false) => {
            let mut finalizers = backup.finalizers().to_vec();
            finalizers.push(FINALIZER.into());
            finalizers::set(&api, backup, &finalizers, "update the finalizers of").await?;
            // The patch's watch event brings the next reconcile.
            Ok(Some(Action::await_change()))
        }
        (true, true) => match release(ctx, backup).await? {
            Progress::Waiting => Ok(Some(Action::requeue(STOPPING))),
            Progress::Done => {
                let rest: Vec<String> = backup
                    .finalizers()
                    .iter()
                    .filter(|f| *f != FINALIZER)
                    .cloned()
                    .collect();
                finalizers::set(&api, backup, &rest, "update the finalizers of").await?;
                Ok(Some(Action::await_change()))
            }
        },
        _ => Ok(None),
    }
}

enum Progress {
    Waiting,
    Done,
}

async fn release(ctx: &Context, backup: &Backup) -> Result<Progress, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let name = backup.name_any();
    let slot = names::wal_slot(&name);
    let archiver = names::wal_archiver(&name);
    let statefulsets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    match statefulsets
        .delete(&archiver, &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(source) => return Err(error::apply("delete", "StatefulSet", &archiver)(source)),
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let pod = format!("{archiver}-0");
    if pods
        .get_opt(&pod)
        .await
        .map_err(error::gather("Pod", &pod))?
        .is_some()
    {
        return Ok(Progress::Waiting);
    }
    if ctx
        .caches
        .database(&namespace, &backup.spec.database_ref.name)?
        .is_none()
    {
        let note = format!(
            "replication slot {slot} went with Database {}",
            backup.spec.database_ref.name
        );
        ctx.event(backup, false, "WalSlotGone", note).await;
        return Ok(Progress::Done);
    }
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let job_name = names::wal_slot_job(&name);
    let Some(job) = ctx
        .caches
        .cleanup_jobs
        .get(&namespace, &job_name)
        .map_err(Error::Unreadable)?
    else {
        let job = drop_slot_job(backup, &ctx.jobs);
        let created = create_if_absent(&jobs, &job)
            .await
            .map_err(error::apply("create", "Job", &job_name))?;
        if let Some(created) = created {
            ctx.caches.cleanup_jobs.wrote(&created);
        }
        return Ok(Progress::Waiting);
    };
    if is_active(&job) {
        return Ok(Progress::Waiting);
    }
    let found = job_runs::pods_of(&pods, &job_name)
        .await
        .map_err(error::gather("the Pods of Job", &job_name))?;
    let succeeded = job
        .status
        .as_ref()
        .and_then(|s| s.succeeded)
        .is_some_and(|n| n > 0);
    if succeeded {
        ctx.event(
            backup,
            false,
            "WalSlotDropped",
            format!("dropped replication slot {slot}"),
        )
        .await;
    } else {
        let reason = match job_runs::finished(&job, &found, DROP_SLOT_CONTAINER).map(|f| f.result) {
            Some(JobResult::Failed(error)) => error,
            _ => format!("Job {job_name} failed"),
        };
        let note = format!(
            "could not drop replication slot {slot}: {reason}. The server keeps WAL for it until it is dropped: \
             run SELECT pg_drop_replication_slot('{slot}') on the primary of Database {}",
            backup.spec.database_ref.name
        );
        ctx.event(backup, true, "WalSlotNotDropped", note).await;
    }
    match jobs.delete(&job_name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(source) => return Err(error::apply("delete", "Job", &job_name)(source)),
    }
    ctx.caches.cleanup_jobs.deleted(&namespace, &job_name);
    Ok(Progress::Done)
}
