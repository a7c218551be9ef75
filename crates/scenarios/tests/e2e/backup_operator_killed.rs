//! Fault: the backup-operator SIGKILLed while its backup Job's pg_dump runs. The process that
//! replaces it adopts the running Job instead of starting another, and the run ends Completed
//! with an artifact that is whole.

use api::{Backup, names};
use chrono::Utc;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{Api, ResourceExt, api::ListParams};
use testenv::Operator;

use super::table_lock::{TableLock, wait_for_pg_dump_blocked};
use scenarios::*;

#[tokio::test]
async fn backup_operator_killed_mid_dump_adopts_the_running_job() {
    let mut scenario = Scenario::on_node("e2e-operator-killed").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    let since = Utc::now();
    scenario.start_both().await;
    let databases: Api<api::Database> = Api::namespaced(client.clone(), n);
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let jobs: Api<Job> = Api::namespaced(client.clone(), n);
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);

    apply_yaml(&client, n, &node_database("shop").manifest())
        .await
        .unwrap();
    testenv::wait_for(&databases, "shop", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    psql(
        &client,
        n,
        "shop",
        "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS label FROM generate_series(1, 100000) g",
    )
    .await
    .unwrap();

    // The dump starts and then waits on this lock: the kill lands while pg_dump runs.
    let lock = TableLock::acquire(&client, n, "shop", "items")
        .await
        .unwrap();
    scenario
        .apply(&testkit::backup("once", "shop").manifest())
        .await;
    let backup = testenv::wait_for(&backups, "once", run_in_flight, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let job_name = backup.status.unwrap().active_job.unwrap();
    wait_for_pg_dump_blocked(&client, n, "shop")
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", scenario.dump()));
    let job = jobs.get(&job_name).await.unwrap();
    let selector = format!("batch.kubernetes.io/job-name={job_name}");
    let job_pods = pods.list(&ListParams::default().labels(&selector)).await;
    let phases: Vec<_> = job_pods
        .unwrap()
        .items
        .iter()
        .map(|p| p.status.as_ref().and_then(|s| s.phase.clone()))
        .collect();
    assert_eq!(
        phases,
        [Some("Running".to_string())],
        "the Job's one Pod dumps"
    );

    scenario.operator(Operator::Backup).kill().unwrap();
    let seen = log_count(scenario.operator(Operator::Backup), RECONCILED);
    // Nothing finished while no operator ran: the same Job is still running its dump.
    wait_for_pg_dump_blocked(&client, n, "shop").await.unwrap();
    scenario.operator(Operator::Backup).restart().unwrap();
    wait_for_more_logs(scenario.operator(Operator::Backup), RECONCILED, seen).await;
    let adopted = backups.get("once").await.unwrap();
    assert_eq!(
        adopted.status.unwrap().active_job.as_deref(),
        Some(job_name.as_str()),
        "the restarted operator tracks the Job it found"
    );

    lock.release().await.unwrap();
    let backup = testenv::wait_for(&backups, "once", backup_completed, POD_START)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));

    // Exactly one Job ever: the one from before the kill, created once.
    let selector = format!("{}=once", names::LABEL_BACKUP);
    let all_jobs = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items;
    let uids: Vec<_> = all_jobs.iter().map(|j| j.uid()).collect();
    assert_eq!(uids, [job.uid()], "one Job, never replaced: {all_jobs:#?}");
    let job_creates: Vec<_> = cluster
        .audit_writes(&Operator::Backup.username(), since)
        .unwrap()
        .into_iter()
        .filter(|e| e.verb == "create" && e.resource() == "jobs" && e.namespace() == Some(n))
        .collect();
    let created: Vec<_> = job_creates
        .iter()
        .filter(|e| e.code() == Some(201))
        .collect();
    assert_eq!(
        created.len(),
        1,
        "Job creates by the backup-operator: {:#?}",
        job_creates
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );

    // The run is the Job's, and its artifact is whole: hashed again here, from the volume.
    let status = backup.status.clone().unwrap();
    let run_id = &job.labels()[names::LABEL_RUN_ID];
    assert_eq!(status.history.len(), 1, "{:#?}", status.history);
    assert_eq!(&status.history[0].run_id, run_id);
    let bytes = artifact_bytes(&client, n, &backup).await.unwrap();
    assert!(
        bytes.starts_with(b"PGDMP"),
        "a pg_dump custom-format archive"
    );
    assert_eq!(Some(bytes.len() as i64), status.size_bytes);
    assert_eq!(Some(sha256_hex(&bytes)), status.sha256);
    scenario.assert_operators_running();

    scenario.finish().await;
}
