//! Scenario 4: either operator killed and restarted mid-scenario. The state converges, no
//! object is duplicated, no status goes backwards, and the password is never regenerated.

use api::{Backup, Database, names};
use k8s_openapi::api::{batch::v1::Job, core::v1::Secret};
use kube::{Api, api::ListParams};

use super::support::*;

#[tokio::test]
async fn operators_killed_mid_scenario_converge_without_duplicates() {
    let cluster = testenv::cluster().await.expect("test cluster");
    let ns = cluster.namespace("restarts").await.unwrap();
    let client = cluster.admin_client();
    let (mut db_op, mut backup_op) = start_both(cluster, ns.name()).await.unwrap();
    let databases: Api<Database> = Api::namespaced(client.clone(), ns.name());
    let backups: Api<Backup> = Api::namespaced(client.clone(), ns.name());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());

    apply_yaml(&client, ns.name(), &sample("seed-database.yaml"))
        .await
        .unwrap();
    apply_yaml(&client, ns.name(), &sample("seed-backup.yaml"))
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
    .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&db_op, &backup_op])));
    db_op.kill().unwrap();
    db_op.restart().unwrap();

    play_kubelet(&client, ns.name(), "my-database", 1)
        .await
        .unwrap();
    let db = testenv::wait_for(&databases, "my-database", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&db_op, &backup_op])));
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
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&db_op, &backup_op])));
    let db_seen = log_count(&db_op, RECONCILED);
    let backup_seen = log_count(&backup_op, RECONCILED);
    backup_op.kill().unwrap();
    db_op.kill().unwrap();
    backup_op.restart().unwrap();
    db_op.restart().unwrap();

    // Let both restarted operators sync their caches and reconcile everything once: wait for
    // a reconcile logged after the restart (the log file spans restarts).
    wait_for_more_logs(&db_op, RECONCILED, db_seen).await;
    wait_for_more_logs(&backup_op, RECONCILED, backup_seen).await;

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

    ns.cleanup().await.unwrap();
}
