//! Gather: what a Backup's reconcile depends on, from the controllers' caches. Nothing here
//! decides anything.

use api::names;
use api::{Backup, Database};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt as _;

use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::job_runs::is_active;
use crate::controller::time::scheduled_time;

/// One run's Job.
#[derive(Clone, Debug)]
pub struct RunJob {
    pub run_id: String,
    pub job: Job,
}

impl RunJob {
    pub fn name(&self) -> String {
        self.job.name_any()
    }

    pub fn is_active(&self) -> bool {
        is_active(&self.job)
    }
}

pub struct Gathered {
    pub database: Option<Database>,
    /// The run Jobs of this Backup, newest run first.
    pub jobs: Vec<RunJob>,
}

impl Gathered {
    /// The run in flight; the decision ensures there is at most one.
    pub fn in_flight(&self) -> Option<&RunJob> {
        self.jobs.iter().find(|j| j.is_active())
    }

    /// The newest run that finished, whose outcome the status reports.
    pub fn newest_finished(&self) -> Option<&RunJob> {
        self.jobs.iter().find(|j| !j.is_active())
    }

    /// The scheduled time of the newest run started: from status, or from a Job found when
    /// the operator stopped between creating it and writing status.
    pub fn last_scheduled(&self, backup: &Backup) -> Option<DateTime<Utc>> {
        let from_status = backup
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(crate::controller::time::from_time);
        let from_jobs = self
            .jobs
            .iter()
            .filter_map(|j| scheduled_time(&j.run_id))
            .max();
        from_status.max(from_jobs)
    }
}

pub fn gather(ctx: &Context, backup: &Backup) -> Result<Gathered, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let database = ctx
        .caches
        .database(&namespace, &backup.spec.database_ref.name)?;
    let mut jobs: Vec<RunJob> = ctx
        .caches
        .backup_jobs
        .select(&namespace, |job| {
            job.labels().get(names::LABEL_BACKUP).map(String::as_str)
                == Some(backup.name_any().as_str())
        })
        .map_err(Error::Unreadable)?
        .into_iter()
        .filter_map(|job| {
            let run_id = job.labels().get(names::LABEL_RUN_ID)?.clone();
            Some(RunJob { run_id, job })
        })
        .collect();
    jobs.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    Ok(Gathered { database, jobs })
}

/// Finished Jobs beyond the newest three: kept that long so `kubectl logs` works for
/// recent runs, then deleted so they do not pile up.
pub fn expired_jobs(jobs: &[RunJob]) -> Vec<String> {
    jobs.iter()
        .skip(3)
        .filter(|j| !j.is_active())
        .map(RunJob::name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(run_id: &str, done: bool) -> RunJob {
        let conditions = if done {
            json!([{"type": "Complete", "status": "True"}])
        } else {
            json!([])
        };
        RunJob {
            run_id: run_id.into(),
            job: serde_json::from_value(json!({
                "metadata": {"name": format!("nightly-{run_id}")},
                "status": {"conditions": conditions}
            }))
            .unwrap(),
        }
    }

    #[test]
    fn only_finished_jobs_beyond_the_newest_three_expire() {
        let jobs = [
            run("r6", false),
            run("r5", true),
            run("r4", true),
            run("r3", true),
            run("r2", false),
            run("r1", true),
        ];
        assert_eq!(expired_jobs(&jobs), ["nightly-r3", "nightly-r1"]);
        assert!(expired_jobs(&jobs[..3]).is_empty());
    }
}
