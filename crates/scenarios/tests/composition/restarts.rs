//! Scenario 4: either operator killed and restarted mid-scenario. The state converges, no
//! object is duplicated, no status goes backwards, and the password is never regenerated.

use api::{Backup, Database, names};
use k8s_openapi::api::{batch::v1::Job, core::v1::Secret};
use kube::{Api, api::ListParams};

use scenarios::*;
use testenv::Operator;

#[tokio::test]
async fn operators_killed_mid_scenario_converge_without_duplicates() {
    let mut scenario = Scenario::new("restarts").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);
    let jobs: Api<Job> = Api::namespaced(client.clone(), n);

    apply_yaml(&client, n, &sample("seed-database.yaml"))
        .await
        .unwrap();
    apply_yaml(&client, n, &sample("seed-backup.yaml"))
        .await
        .unwrap();

    // Kill the database-operator as soon as it created the Secret, before the Database is Ready.
    let secret_name = names::credentials_secret("my-database");
    let secret = testenv::wait_for(
        &secrets,
        &secret_name,
        |s: Option<&Secret>| s.is_some(),
        CONVERGE,
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    scenario.operator(Operator::Database).kill().unwrap();
    scenario.operator(Operator::Database).restart().unwrap();

    play_kubelet(&client, n, "my-database", 1).await.unwrap();
    let db = testenv::wait_for(&databases, "my-database", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let after = secrets.get(&secret_name).await.unwrap();
    assert_eq!(
        after.data, secret.data,
        "the password survives an operator restart"
    );
    assert_eq!(
        after.metadata.uid, secret.metadata.uid,
        "the Secret was not recreated"
    );

    // Kill the backup-operator once its first run is in flight: a restart adopts the Job.
    let before = testenv::wait_for(&backups, "my-database-backup", run_in_flight, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let db_seen = log_count(scenario.operator(Operator::Database), RECONCILED);
    let backup_seen = log_count(scenario.operator(Operator::Backup), RECONCILED);
    scenario.operator(Operator::Backup).kill().unwrap();
    scenario.operator(Operator::Database).kill().unwrap();
    scenario.operator(Operator::Backup).restart().unwrap();
    scenario.operator(Operator::Database).restart().unwrap();

    // Let both restarted operators sync their caches and reconcile everything once: wait for
    // a reconcile logged after the restart (the log file spans restarts).
    wait_for_more_logs(scenario.operator(Operator::Database), RECONCILED, db_seen).await;
    wait_for_more_logs(scenario.operator(Operator::Backup), RECONCILED, backup_seen).await;

    let job_list = jobs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        job_list.len(),
        1,
        "a restart never starts a second run: {job_list:#?}"
    );
    let after = backups.get("my-database-backup").await.unwrap();
    assert_eq!(
        after.status.as_ref().and_then(|s| s.active_job.clone()),
        before.status.as_ref().and_then(|s| s.active_job.clone())
    );
    assert_eq!(
        after
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.clone()),
        before
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.clone()),
        "the schedule did not go backwards or run again"
    );
    let db_after = databases.get("my-database").await.unwrap();
    assert!(
        db_after.is_ready(),
        "the Database stays Ready across the restart"
    );
    assert_eq!(
        db_after.status.as_ref().unwrap().conditions,
        db.status.as_ref().unwrap().conditions
    );
    let secret_list = secrets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        secret_list
            .iter()
            .filter(|s| s.metadata.name.as_deref() == Some(&secret_name))
            .count(),
        1
    );

    scenario.finish().await;
}
