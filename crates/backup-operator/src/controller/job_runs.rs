//! Reading what a finished Job did, and creating Jobs so that a restarted operator finds the
//! one it started instead of starting another. Shared by Backups and Restores.

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

use super::time::from_time;
use backup_job::recovery_report::{RecoveryOutcome, RecoverySummary};
use backup_job::report::{Outcome, RunSummary};
use backup_job::verify_report::{VerifyOutcome, VerifySummary};

/// Label the Job controller puts on its Pods.
const LABEL_JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// Longest error text kept in a condition message; the end says what went wrong.
const ERROR_TAIL: usize = 1024;
/// Longest part of that a Job's own report takes when the kubelet evicted its Pod, which is
/// the real cause and comes first.
const REPORT_TAIL: usize = 320;
/// `status.reason` of a Pod the kubelet evicted.
const EVICTED: &str = "Evicted";

/// What a Job ended with, as far as the operator can tell.
#[derive(Clone, Debug, PartialEq)]
pub enum JobResult<S = RunSummary> {
    Succeeded(S),
    Failed(String),
}

/// The one-line result a kind of Job leaves in its termination message.
pub trait Report: Sized {
    type Summary;
    fn parse(message: &str) -> Option<Self>;
    fn into_result(self) -> Result<Self::Summary, String>;
}

impl Report for Outcome {
    type Summary = RunSummary;
    fn parse(message: &str) -> Option<Self> {
        Outcome::parse(message).ok()
    }
    fn into_result(self) -> Result<RunSummary, String> {
        match self {
            Outcome::Succeeded(summary) => Ok(summary),
            Outcome::Failed { error } => Err(error),
        }
    }
}

impl Report for VerifyOutcome {
    type Summary = VerifySummary;
    fn parse(message: &str) -> Option<Self> {
        VerifyOutcome::parse(message).ok()
    }
    fn into_result(self) -> Result<VerifySummary, String> {
        match self {
            VerifyOutcome::Passed(summary) => Ok(summary),
            VerifyOutcome::Failed { error } => Err(error),
        }
    }
}

impl Report for RecoveryOutcome {
    type Summary = RecoverySummary;
    fn parse(message: &str) -> Option<Self> {
        RecoveryOutcome::parse(message).ok()
    }
    fn into_result(self) -> Result<RecoverySummary, String> {
        match self {
            RecoveryOutcome::Succeeded(summary) => Ok(summary),
            RecoveryOutcome::Failed { error } => Err(error),
        }
    }
}

/// A Job that is no longer running.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished<S = RunSummary> {
    pub result: JobResult<S>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
}

impl<S> Finished<S> {
    pub fn duration_seconds(&self) -> Option<f64> {
        let (started, finished) = (self.started?, self.finished?);
        Some((finished - started).num_milliseconds().max(0) as f64 / 1000.0)
    }
}

/// The condition (`Complete` or `Failed`) a finished Job carries, if any.
fn terminal_condition(job: &Job) -> Option<(bool, String, Option<DateTime<Utc>>)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some((
                true,
                String::new(),
                c.last_transition_time.as_ref().map(from_time),
            )),
            "Failed" => {
                let reason = c.reason.clone().unwrap_or_default();
                let message = c.message.clone().unwrap_or_default();
                let text = format!("{reason}: {message}")
                    .trim_matches([':', ' '])
                    .to_string();
                Some((false, text, c.last_transition_time.as_ref().map(from_time)))
            }
            _ => None,
        })
}

/// True while the Job has not reached `Complete` or `Failed`.
pub fn is_active(job: &Job) -> bool {
    terminal_condition(job).is_none()
}

/// The result of a finished Job from its Pods' termination messages (the JSON line the
/// subcommands write); `None` while the Job runs. A Job whose result cannot be read counts
/// as failed, with whatever Kubernetes says about it.
pub fn finished(job: &Job, pods: &[Pod], container: &str) -> Option<Finished> {
    finished_as::<Outcome>(job, pods, container)
}

/// [`finished`] for a kind of Job whose result is an `R`.
pub fn finished_as<R: Report>(
    job: &Job,
    pods: &[Pod],
    container: &str,
) -> Option<Finished<R::Summary>> {
    let (succeeded, job_reason, at) = terminal_condition(job)?;
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let message = termination_message(pods, container);
    let parsed = message.as_deref().and_then(R::parse).map(R::into_result);
    let evicted = if succeeded { None } else { eviction(pods) };
    let result = match (succeeded, parsed, evicted) {
        (true, Some(Ok(summary)), _) => JobResult::Succeeded(summary),
        // The kubelet's SIGTERM may have made the Job report a cancellation: the eviction is
        // the cause, the report what it left behind.
        (_, parsed, Some(evicted)) => {
            let reported = match parsed {
                Some(Err(error)) => format!(
                    "; before it stopped it reported: {}",
                    tail_of(&error, REPORT_TAIL)
                ),
                _ => String::new(),
            };
            JobResult::Failed(tail(&format!("Job {name} failed: {evicted}{reported}")))
        }
        (_, Some(Err(error)), None) => JobResult::Failed(tail(&error)),
        (true, _, None) => JobResult::Failed(format!(
            "Job {name} succeeded but left no readable result in its Pod's termination message; \
             was its Pod deleted? The artifact was not recorded"
        )),
        (false, _, None) => {
            let waiting = waiting_reason(pods, container);
            let text = [job_reason, waiting].into_iter().filter(|s| !s.is_empty());
            let text: Vec<_> = text.collect();
            JobResult::Failed(tail(&format!("Job {name} failed: {}", text.join("; "))))
        }
    };
    let status = job.status.as_ref();
    Some(Finished {
        result,
        started: status.and_then(|s| s.start_time.as_ref()).map(from_time),
        finished: status
            .and_then(|s| s.completion_time.as_ref())
            .map(from_time)
            .or(at),
    })
}

/// The newest Pod's termination message for `container`.
fn termination_message(pods: &[Pod], container: &str) -> Option<String> {
    newest_first(pods).into_iter().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        let status = statuses.iter().find(|s| s.name == container)?;
        [status.state.as_ref(), status.last_state.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|state| state.terminated.as_ref()?.message.clone())
            .filter(|m| !m.trim().is_empty())
    })
}

/// Why a container never ran, e.g. `CreateContainerConfigError: secret "x" not found`.
fn waiting_reason(pods: &[Pod], container: &str) -> String {
    newest_first(pods)
        .into_iter()
        .find_map(|pod| {
            let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
            let waiting = statuses
                .iter()
                .find(|s| s.name == container)?
                .state
                .as_ref()?
                .waiting
                .as_ref()?;
            Some(format!(
                "{}: {}",
                waiting.reason.clone().unwrap_or_default(),
                waiting.message.clone().unwrap_or_default()
            ))
        })
        .unwrap_or_default()
}

/// Why the kubelet evicted the newest Pod, if it did. An emptyDir over its `sizeLimit` is
/// named by its mount path and size, with what to change: that is a scratch volume the
/// operator sized (`scratch`) and the user can size with `spec.scratchSize`.
fn eviction(pods: &[Pod]) -> Option<String> {
    let pod = *newest_first(pods).first()?;
    let status = pod.status.as_ref()?;
    if status.reason.as_deref() != Some(EVICTED) {
        return None;
    }
    let message = status
        .message
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches(['.', ' '])
        .trim();
    let spec = pod.spec.as_ref();
    let volumes = spec.and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    let outgrown = volumes.iter().find_map(|volume| {
        let limit = volume.empty_dir.as_ref()?.size_limit.as_ref()?;
        message
            .contains(&format!("EmptyDir volume \"{}\"", volume.name))
            .then_some((volume.name.as_str(), limit.0.as_str()))
    });
    let Some((volume, limit)) = outgrown else {
        return Some(format!("the kubelet evicted its Pod: {message}"));
    };
    let path = spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .find(|mount| mount.name == volume)
        .map_or(volume, |mount| mount.mount_path.as_str());
    Some(format!(
        "its scratch volume {path} was too small at {limit}, and the kubelet evicted its Pod \
         ({message}); give the Backup a spec.scratchSize larger than {limit}"
    ))
}

fn newest_first(pods: &[Pod]) -> Vec<&Pod> {
    let mut pods: Vec<_> = pods.iter().collect();
    pods.sort_by(|a, b| {
        let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        created(b).cmp(&created(a))
    });
    pods
}

/// The end of an error text, where tools print the reason; at most [`ERROR_TAIL`] bytes with
/// the marker, so it also fits an Event note whole.
pub fn tail(text: &str) -> String {
    tail_of(text, ERROR_TAIL)
}

/// The end of `text` in at most `max` bytes.
fn tail_of(text: &str, max: usize) -> String {
    const MARKER: &str = "...";
    let text = text.trim();
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - (max - MARKER.len());
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{MARKER}{}", &text[start..])
}

/// The Pods of a Job.
pub async fn pods_of(pods: &Api<Pod>, job: &str) -> kube::Result<Vec<Pod>> {
    let params = ListParams::default().labels(&format!("{LABEL_JOB_NAME}={job}"));
    Ok(pods.list(&params).await?.items)
}

/// Creates `object` unless one of that name exists. Names are deterministic, so
/// `AlreadyExists` means an earlier reconcile (perhaps of an operator that restarted) made
/// it, which is success. Returns what this call created, if it did.
pub async fn create_if_absent<K>(api: &Api<K>, object: &K) -> kube::Result<Option<K>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(created) => Ok(Some(created)),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(conditions: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "nightly-20260102t020000z"},
            "status": {"startTime": "2026-01-02T02:00:01Z", "completionTime": "2026-01-02T02:00:31Z", "conditions": conditions}
        }))
        .unwrap()
    }

    fn pod(terminated: Option<&str>, waiting: Option<(&str, &str)>) -> Pod {
        let state = match (terminated, waiting) {
            (Some(message), _) => json!({"terminated": {"exitCode": 0, "message": message}}),
            (None, Some((reason, message))) => {
                json!({"waiting": {"reason": reason, "message": message}})
            }
            (None, None) => json!({}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": "p", "creationTimestamp": "2026-01-02T02:00:00Z"},
            "status": {"containerStatuses": [{"name": "backup", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": state}]}
        }))
        .unwrap()
    }

    const SUCCESS: &str = r#"{"location":"/backups/shop/nightly/r1/dump.pgdump","sizeBytes":5,"sha256":"ab","runId":"r1","time":"2026-01-02T02:00:00Z","serverVersion":"17.2","pruned":[]}"#;

    #[test]
    fn results_of_finished_jobs() {
        let complete = json!([{"type": "Complete", "status": "True"}]);
        let failed = json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]);
        // (job conditions, pod, what the result must say)
        let rows: Vec<(serde_json::Value, Pod, &str)> = vec![
            (complete.clone(), pod(Some(SUCCESS), None), "succeeded r1"),
            (
                failed.clone(),
                pod(Some(r#"{"error":"pg_dump failed: boom"}"#), None),
                "pg_dump failed: boom",
            ),
            (
                failed.clone(),
                pod(
                    None,
                    Some((
                        "CreateContainerConfigError",
                        "secret \"shop-credentials\" not found",
                    )),
                ),
                "DeadlineExceeded: Job was active longer than specified deadline; CreateContainerConfigError: secret \"shop-credentials\" not found",
            ),
            (complete, pod(None, None), "left no readable result"),
        ];
        for (conditions, pod, want) in rows {
            let finished = finished(&job(conditions), &[pod], "backup").expect("finished");
            let got = match &finished.result {
                JobResult::Succeeded(summary) => format!("succeeded {}", summary.run_id),
                JobResult::Failed(error) => error.clone(),
            };
            assert!(got.contains(want), "{got:?} lacks {want:?}");
            assert_eq!(finished.duration_seconds(), Some(30.0));
        }
    }

    /// A Pod the kubelet evicted with `message`, its /tmp limited to 1280Mi, after the
    /// container wrote `reported` (its SIGTERM handler's report) or nothing.
    fn evicted(message: &str, reported: Option<&str>) -> Pod {
        let state = match reported {
            Some(report) => json!({"terminated": {"exitCode": 1, "message": report}}),
            None => json!({"terminated": {"exitCode": 137, "reason": "Error"}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": "p", "creationTimestamp": "2026-01-02T02:00:00Z"},
            "spec": {
                "containers": [{"name": "backup", "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"}, {"name": "backups", "mountPath": "/backups"}]}],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1280Mi"}},
                            {"name": "backups", "persistentVolumeClaim": {"claimName": "c"}}]
            },
            "status": {"phase": "Failed", "reason": "Evicted", "message": message,
                       "containerStatuses": [{"name": "backup", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": state}]}
        }))
        .unwrap()
    }

    #[test]
    fn an_evicted_job_says_why_and_a_scratch_volume_too_small_says_how_big_it_was() {
        let failed = json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]);
        let outgrown = "Usage of EmptyDir volume \"tmp\" exceeds the limit \"1280Mi\". ";
        let pressure = "The node was low on resource: ephemeral-storage. Threshold quantity: 5Gi, available: 4Gi. ";
        // (pod, what the result must say, what it must not)
        let rows: Vec<(Pod, Vec<&str>, &str)> = vec![
            (
                evicted(outgrown, None),
                vec![
                    "Job nightly-20260102t020000z failed: its scratch volume /tmp was too small at 1280Mi",
                    "exceeds the limit \"1280Mi\")",
                    "give the Backup a spec.scratchSize larger than 1280Mi",
                ],
                "BackoffLimitExceeded",
            ),
            (
                evicted(
                    outgrown,
                    Some(r#"{"error":"cancelled; the target database was left as it was"}"#),
                ),
                vec![
                    "its scratch volume /tmp was too small at 1280Mi",
                    "before it stopped it reported: cancelled; the target database was left as it was",
                ],
                "BackoffLimitExceeded",
            ),
            (
                evicted(pressure, None),
                vec![
                    "the kubelet evicted its Pod: The node was low on resource: ephemeral-storage",
                ],
                "scratchSize",
            ),
        ];
        for (pod, wants, unwanted) in rows {
            let finished = finished(&job(failed.clone()), &[pod], "backup").expect("finished");
            let JobResult::Failed(error) = finished.result else {
                panic!("an evicted Job succeeded: {finished:?}");
            };
            for want in wants {
                assert!(error.contains(want), "{error:?} lacks {want:?}");
            }
            assert!(!error.contains(unwanted), "{error:?} has {unwanted:?}");
        }
    }

    #[test]
    fn a_running_job_has_no_result() {
        let running = job(json!([]));
        assert!(is_active(&running));
        assert_eq!(finished(&running, &[], "backup"), None);
    }

    #[test]
    fn long_errors_keep_their_end() {
        let text = format!("{}the reason", "x".repeat(5000));
        let kept = tail(&text);
        assert!(kept.len() <= ERROR_TAIL && kept.ends_with("the reason"));
    }
}
