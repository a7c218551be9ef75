//! Restore drills of a Backup (`spec.verification`), one step of its reconcile: record what
//! finished drill Jobs found, delete the Jobs whose result the status already holds, and
//! start the next drill when one is due. Jobs are deleted only once their result was
//! written, so an operator that stops in between reads it again instead of losing it.

mod job;
mod plan;
mod status;

use std::time::Duration;

use api::names::{LABEL_BACKUP, LABEL_RUN_ID};
use api::{Backup, BackupStatus, Database, VerificationResult};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt as _};

pub use job::COMPONENT_VERIFY;
use job::{LABEL_DRILL, VERIFY_CONTAINER};

use crate::controller::context::Context;
use crate::controller::error::{self, Error};
use crate::controller::job_runs::{self, create_if_absent, is_active};
use crate::controller::time::from_time;
use crate::schedule::Schedule;
use backup_job::verify_report::VerifyOutcome;

/// What this step did, for Events and metrics.
#[derive(Default)]
pub struct Step {
    /// The Job started now and the run it drills.
    pub started: Option<(String, String)>,
    /// A result recorded now.
    pub recorded: Option<VerificationResult>,
    /// When a scheduled drill is due next.
    pub next: Option<DateTime<Utc>>,
}

/// One drill Job of this Backup.
struct DrillJob {
    drill: String,
    run_id: String,
    job: Job,
}

pub async fn step(
    ctx: &Context,
    backup: &Backup,
    database: Option<&Database>,
    new: &mut BackupStatus,
    backup_in_flight: bool,
    now: DateTime<Utc>,
) -> Result<Step, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let mut jobs = drill_jobs(ctx, backup)?;
    let old_last = backup
        .status
        .as_ref()
        .and_then(|s| s.last_verification.as_ref());
    let mut out = Step::default();

    let scheduled_mode = backup
        .spec
        .verification
        .as_ref()
        .is_some_and(|v| v.schedule.is_some());
    // Finished Jobs already in the status go; newer finished ones are recorded now.
    let mut kept = Vec::new();
    for drill in jobs.drain(..) {
        if is_active(&drill.job) {
            kept.push(drill);
            continue;
        }
        let recorded = old_last.is_some_and(|last| {
            last.job == drill.job.name_any()
                || drill
                    .job
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .is_some_and(|created| created.0 < last.time.0)
        });
        if recorded {
            delete(ctx, &namespace, &drill.job.name_any()).await?;
            continue;
        }
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        let name = drill.job.name_any();
        let found = job_runs::pods_of(&pods, &name)
            .await
            .map_err(error::gather("the Pods of Job", &name))?;
        if let Some(finished) =
            job_runs::finished_as::<VerifyOutcome>(&drill.job, &found, VERIFY_CONTAINER)
        {
            status::record(
                new,
                &status::Drilled {
                    job: &name,
                    drill: &drill.drill,
                    run_id: &drill.run_id,
                    scheduled: scheduled_mode,
                    finished: &finished,
                },
                now,
            );
            out.recorded = new.last_verification.as_ref().map(|l| l.result);
        }
        kept.push(drill);
    }

    let Some(spec) = &backup.spec.verification else {
        status::condition(new, false, None, None, backup.metadata.generation, now);
        return Ok(out);
    };
    let schedule = match &spec.schedule {
        Some(expression) => match Schedule::parse(expression, backup.spec.time_zone.as_deref()) {
            Ok(schedule) => Some(schedule),
            Err(invalid) => {
                let message = format!("{invalid}; fix spec.verification.schedule");
                status::condition(
                    new,
                    true,
                    Some(&message),
                    None,
                    backup.metadata.generation,
                    now,
                );
                return Ok(out);
            }
        },
        None => None,
    };
    let created = backup
        .metadata
        .creation_timestamp
        .as_ref()
        .map(from_time)
        .unwrap_or(now);
    let drills: Vec<String> = kept.iter().map(|d| d.drill.clone()).collect();
    let listed: Vec<(String, String, bool)> = kept
        .iter()
        .map(|d| (d.drill.clone(), d.run_id.clone(), is_active(&d.job)))
        .collect();
    let plan = plan::decide(&plan::Inputs {
        schedule: schedule.as_ref(),
        history: &new.history,
        last: new.last_verification.as_ref(),
        jobs: &listed,
        backup_in_flight,
        since: plan::since(new.last_verification.as_ref(), &drills, created),
        starting_deadline: Duration::from_secs(
            u64::try_from(backup.spec.starting_deadline_seconds).unwrap_or(600),
        ),
        now,
    });
    out.next = plan.next;
    let mut active = kept
        .iter()
        .find(|d| is_active(&d.job))
        .map(|d| d.job.name_any());
    // A drill needs the Database's image; without the Database it waits.
    if let (Some(drill), Some(database)) = (plan.start, database) {
        let job = job::verify_job(backup, database, &new.history, &drill, &ctx.jobs);
        let name = job.name_any();
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
        if let Some(created) = create_if_absent(&api, &job)
            .await
            .map_err(error::apply("create", "Job", &name))?
        {
            ctx.caches.verify_jobs.wrote(&created);
        }
        out.started = Some((name.clone(), drill.run_id));
        active = Some(name);
    }
    status::condition(
        new,
        true,
        None,
        active.as_deref(),
        backup.metadata.generation,
        now,
    );
    Ok(out)
}

fn drill_jobs(ctx: &Context, backup: &Backup) -> Result<Vec<DrillJob>, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let name = backup.name_any();
    let jobs = ctx
        .caches
        .verify_jobs
        .select(&namespace, |job| {
            job.labels().get(LABEL_BACKUP).map(String::as_str) == Some(name.as_str())
        })
        .map_err(Error::Unreadable)?;
    Ok(jobs
        .into_iter()
        .filter_map(|job| {
            let drill = job.labels().get(LABEL_DRILL)?.clone();
            let run_id = job.labels().get(LABEL_RUN_ID)?.clone();
            Some(DrillJob { drill, run_id, job })
        })
        .collect())
}

/// Deletes a drill Job and, through background propagation, its Pods.
async fn delete(ctx: &Context, namespace: &str, name: &str) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(source) => return Err(error::apply("delete", "Job", name)(source)),
    }
    ctx.caches.verify_jobs.deleted(namespace, name);
    Ok(())
}
