//! The seed lab's exercise on a real node, and rows surviving a backup and a restore.

use api::{Backup, BackupPhase, Database, Restore, RestorePhase};
use kube::Api;

use scenarios::*;

fn completed(b: Option<&Backup>) -> bool {
    b.and_then(|b| b.status.as_ref())
        .is_some_and(|s| s.phase == Some(BackupPhase::Completed) && s.sha256.is_some())
}

#[tokio::test]
async fn seed_exercise_runs_postgres_and_a_verified_backup() {
    let mut scenario = Scenario::on_node("e2e-seed").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;

    // The seed lab's manifests, with the one image this machine has: postgres:17.
    let database = sample("seed-database.yaml").replace("postgres:14", POSTGRES_IMAGE);
    apply_yaml(&client, n, &database).await.unwrap();
    apply_yaml(&client, n, &sample("seed-backup.yaml"))
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&databases, "my-database", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    println!(
        "apply -> Database Ready (Pod start included): {:?}",
        started.elapsed()
    );

    // Ready means an application can log in through the Service and write.
    psql(
        &client,
        n,
        "my-database",
        "CREATE TABLE visits (id serial PRIMARY KEY, at timestamptz DEFAULT now())",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    psql(
        &client,
        n,
        "my-database",
        "INSERT INTO visits DEFAULT VALUES",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));

    // The scheduled Backup takes its first run at once: a Job in the cluster dumps it.
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let backup = testenv::wait_for(&backups, "my-database-backup", completed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    println!("apply -> first backup Completed: {:?}", started.elapsed());
    assert!(
        backup.is_ready(),
        "BackupReady=True once the artifact is verified"
    );
    let status = backup.status.clone().unwrap();
    let bytes = artifact_bytes(&client, n, &backup)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert!(
        bytes.starts_with(b"PGDMP"),
        "a pg_dump custom-format archive"
    );
    assert_eq!(
        Some(bytes.len() as i64),
        status.size_bytes,
        "size as reported"
    );
    assert_eq!(
        Some(sha256_hex(&bytes)),
        status.sha256,
        "SHA-256 computed here matches the status"
    );
    assert!(status.next_schedule_time.is_some());

    scenario.finish().await;
}

#[tokio::test]
async fn rows_written_before_a_backup_come_back_and_rows_after_do_not() {
    let mut scenario = Scenario::on_node("e2e-restore").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);

    apply_yaml(&client, n, &node_database("source").manifest())
        .await
        .unwrap();
    apply_yaml(&client, n, &node_database("target").manifest())
        .await
        .unwrap();
    testenv::wait_for(&databases, "source", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let setup = "CREATE TABLE items (id int PRIMARY KEY, label text, price numeric(8,2), tags jsonb); \
                 INSERT INTO items VALUES (1, 'before', 9.99, '{\"a\": 1}'), (2, 'before', 0.50, '[]'), (3, 'before', 12.00, 'null')";
    psql(&client, n, "source", setup)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    scenario
        .apply(&testkit::backup("source-once", "source").manifest())
        .await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&backups, "source-once", completed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    psql(
        &client,
        n,
        "source",
        "INSERT INTO items VALUES (4, 'after', 1.00, '{}')",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));

    let expected = "1|before|9.99|{\"a\": 1}\n2|before|0.50|[]\n3|before|12.00|null";
    let query = "SELECT id, label, price, tags FROM items ORDER BY id";

    // A new Database initialised from the Backup: Ready only once its data is restored.
    apply_yaml(
        &client,
        n,
        &node_database("copy").backup_ref("source-once").manifest(),
    )
    .await
    .unwrap();
    testenv::wait_for(&databases, "copy", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(
        psql(&client, n, "copy", query)
            .await
            .unwrap_or_else(|e| scenario.fail(e)),
        expected
    );

    // A Restore into an existing, empty Database.
    testenv::wait_for(&databases, "target", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let restore = testkit::restore("into-target", "source-once", "target");
    scenario.apply(&restore.manifest()).await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), n);
    let done = |r: Option<&Restore>| {
        r.is_some_and(|r| matches!(r.phase(), RestorePhase::Completed | RestorePhase::Failed))
    };
    let restore = testenv::wait_for(&restores, "into-target", done, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(restore.phase(), RestorePhase::Completed, "{restore:#?}");
    assert_eq!(
        psql(&client, n, "target", query)
            .await
            .unwrap_or_else(|e| scenario.fail(e)),
        expected
    );

    scenario.finish().await;
}
