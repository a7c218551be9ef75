//! Playing a backup run's Pod: it finishes and reports a verified dump.

use anyhow::{Context, Result};
use api::Backup;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{Api, Client};

use crate::{CONVERGE, wait_for_pods};

/// Plays the kubelet for the Pod of a Backup's run in flight: it finishes and reports a
/// verified dump in its termination message, as `backup-operator dump` does (see the
/// backup-operator's `report` module). Returns the run id.
pub async fn finish_backup_run(client: &Client, ns: &str, backup: &Backup) -> Result<String> {
    let name = backup
        .metadata
        .name
        .clone()
        .context("a Backup without a name")?;
    let job_name = backup
        .status
        .as_ref()
        .and_then(|s| s.active_job.clone())
        .with_context(|| format!("Backup {name} has no run in flight"))?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let job = jobs.get(&job_name).await?;
    let run_id = job
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(api::names::LABEL_RUN_ID))
        .cloned()
        .with_context(|| format!("Job {job_name} has no run id label"))?;
    let selector = format!("batch.kubernetes.io/job-name={job_name}");
    let pod = wait_for_pods(client, ns, &selector, 1, CONVERGE)
        .await?
        .remove(0);
    let database = &backup.spec.database_ref.name;
    let summary = serde_json::json!({
        "location": format!("/backups/{database}/{name}/{run_id}/dump.pgdump"),
        "sizeBytes": 4096,
        "sha256": "ab".repeat(32),
        "runId": run_id,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "serverVersion": "17.0",
        "pruned": [],
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    testenv::mark_pod_succeeded(&pods, &pod, &summary.to_string()).await?;
    Ok(run_id)
}
