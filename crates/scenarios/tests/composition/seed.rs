//! Scenario 1: the seed lab's Database and Backup, manifests unchanged, applied together.

use api::{Backup, Database, conditions, names};
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, api::ListParams};

use scenarios::*;

#[tokio::test]
async fn seed_backup_waits_for_database_then_starts_one_run() {
    let mut scenario = Scenario::new("seed").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;

    apply_yaml(&client, n, &sample("seed-database.yaml"))
        .await
        .unwrap();
    apply_yaml(&client, n, &sample("seed-backup.yaml"))
        .await
        .unwrap();

    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let jobs: Api<Job> = Api::namespaced(client.clone(), n);

    // The Backup says it waits for the Database, and starts nothing while it does.
    let waiting = has_condition(
        backup_condition,
        conditions::WAITING_FOR_DATABASE,
        "True",
        "DatabaseNotReady",
    );
    let backup = testenv::wait_for(&backups, "my-database-backup", waiting, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(
        backup.status.unwrap().phase,
        Some(api::BackupPhase::Pending)
    );
    assert!(
        jobs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let db = databases.get("my-database").await.unwrap();
    assert!(!db.is_ready(), "no Pod is ready yet");

    // Play the kubelet: the Pod of the StatefulSet becomes Running and Ready.
    play_kubelet(&client, n, "my-database", 1).await.unwrap();
    let started = std::time::Instant::now();
    let db = testenv::wait_for(&databases, "my-database", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let to_ready = started.elapsed();
    let status = db.status.clone().unwrap();
    assert_eq!(status.phase, Some(api::DatabasePhase::Ready));
    assert_eq!(status.ready_replicas, 1);
    assert_eq!(status.observed_generation, db.metadata.generation);
    assert_eq!(
        status.secret_name.as_deref(),
        Some("my-database-credentials")
    );

    // Only now does the Backup start its first run: exactly one Job, named by its run.
    let backup = testenv::wait_for(&backups, "my-database-backup", run_in_flight, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let to_job = started.elapsed();
    let status = backup.status.unwrap();
    assert_eq!(status.phase, Some(api::BackupPhase::InProgress));
    let run_id = status.last_schedule_time.map(|t| run_id_of(&t)).unwrap();
    let job_list = jobs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(job_list.len(), 1, "one run in flight");
    assert_eq!(
        job_list[0].metadata.name.as_deref(),
        Some(names::backup_job("my-database-backup", &run_id).as_str())
    );
    let ready_at = conditions::find(&db.status.unwrap().conditions, conditions::READY)
        .unwrap()
        .last_transition_time
        .0;
    let job_created = job_list[0].metadata.creation_timestamp.clone().unwrap().0;
    assert!(
        job_created
            >= ready_at
                .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(1))
                .unwrap(),
        "the Job ({job_created}) was created before the Database was Ready ({ready_at})"
    );
    assert!(
        status.next_schedule_time.is_some(),
        "a scheduled Backup says when it runs next"
    );
    println!("converged: Pod ready -> Database Ready {to_ready:?}, -> backup Job {to_job:?}");

    scenario.finish().await;
}

fn run_id_of(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    time.0.strftime("%Y%m%dT%H%M%SZ").to_string()
}
