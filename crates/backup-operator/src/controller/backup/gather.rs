//! Gather: what a Backup's reconcile depends on, from the controllers' caches. Nothing here
//! decides anything.

use api::names;
use api::{Backup, Database, RUN_NOW_ANNOTATION, RunNowRecord};
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

/// The `run-now` request a Backup carries and no run has answered yet: neither the status
/// nor a run's Job (which carries the request it answers, for an operator that stopped between
/// creating the Job and writing status) records its value.
pub fn pending_run_now(backup: &Backup, jobs: &[RunJob]) -> Option<String> {
    let request = backup.annotations().get(RUN_NOW_ANNOTATION)?;
    let in_status = backup
        .status
        .as_ref()
        .and_then(|s| s.last_run_now.as_ref())
        .is_some_and(|last| &last.request == request);
    let in_jobs = answered_by_jobs(jobs).is_some_and(|last| &last.request == request);
    (!in_status && !in_jobs).then(|| request.clone())
}

/// The newest run whose Job says which `run-now` request it answers.
pub fn answered_by_jobs(jobs: &[RunJob]) -> Option<RunNowRecord> {
    jobs.iter().find_map(|j| {
        let request = j.job.annotations().get(RUN_NOW_ANNOTATION)?;
        Some(RunNowRecord {
            request: request.clone(),
            run_id: j.run_id.clone(),
        })
    })
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

    fn backup(annotation: Option<&str>, answered: Option<&str>) -> Backup {
        let annotations = annotation.map(|a| json!({RUN_NOW_ANNOTATION: a}));
        let status = answered.map(|r| json!({"lastRunNow": {"request": r, "runId": "r1"}}));
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod", "annotations": annotations},
            "spec": {"databaseRef": {"name": "shop"}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn a_run_now_request_is_pending_until_status_or_a_job_answers_it() {
        let mut answering = run("r2", false);
        answering.job.metadata.annotations =
            Some([(RUN_NOW_ANNOTATION.to_string(), "7".to_string())].into());
        let plain = [run("r1", true)];
        let rows = [
            (None, None, &plain[..], None),
            (Some("7"), None, &plain[..], Some("7")),
            (Some("7"), Some("7"), &plain[..], None),
            // The same value re-applied after it was answered: nothing new.
            (Some("7"), Some("6"), &plain[..], Some("7")),
            // Answered by a Job the status does not know of yet (the operator stopped).
            (
                Some("7"),
                Some("6"),
                &[answering.clone(), run("r1", true)][..],
                None,
            ),
            (Some("8"), Some("6"), &[answering][..], Some("8")),
        ];
        for (i, (annotation, answered, jobs, pending)) in rows.into_iter().enumerate() {
            assert_eq!(
                pending_run_now(&backup(annotation, answered), jobs).as_deref(),
                pending,
                "row {i}"
            );
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
