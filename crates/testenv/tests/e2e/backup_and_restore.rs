//! The seed lab's exercise on a real node, and rows surviving a backup and a restore.

use api::{Backup, BackupPhase, Database, Restore, RestorePhase};
use kube::Api;

use super::support::*;
use crate::cluster_support::{apply_yaml, database_ready, logs, sample, start_both};

fn completed(b: Option<&Backup>) -> bool {
    b.and_then(|b| b.status.as_ref())
        .is_some_and(|s| s.phase == Some(BackupPhase::Completed) && s.sha256.is_some())
}

#[tokio::test]
async fn seed_exercise_runs_postgres_and_a_verified_backup() {
    let cluster = testenv::cluster().await.expect("test cluster");
    let ns = cluster.node_namespace("e2e-seed").await.unwrap();
    let client = cluster.admin_client();
    let (db_op, backup_op) = start_both(cluster, ns.name()).await.unwrap();
    let fail =
        |e: anyhow::Error| -> ! { panic!("{e:#}\n{}\n{}", ns.dump(), logs(&[&db_op, &backup_op])) };

    // The seed lab's manifests, with the one image this machine has: postgres:17.
    let database = sample("seed-database.yaml").replace("postgres:14", POSTGRES_IMAGE);
    apply_yaml(&client, ns.name(), &database).await.unwrap();
    apply_yaml(&client, ns.name(), &sample("seed-backup.yaml"))
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let databases: Api<Database> = Api::namespaced(client.clone(), ns.name());
    testenv::wait_for(&databases, "my-database", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    println!(
        "apply -> Database Ready (Pod start included): {:?}",
        started.elapsed()
    );

    // Ready means an application can log in through the Service and write.
    psql(
        &client,
        ns.name(),
        "my-database",
        "CREATE TABLE visits (id serial PRIMARY KEY, at timestamptz DEFAULT now())",
    )
    .await
    .unwrap_or_else(|e| fail(e));
    psql(
        &client,
        ns.name(),
        "my-database",
        "INSERT INTO visits DEFAULT VALUES",
    )
    .await
    .unwrap_or_else(|e| fail(e));

    // The scheduled Backup takes its first run at once: a Job in the cluster dumps it.
    let backups: Api<Backup> = Api::namespaced(client.clone(), ns.name());
    let backup = testenv::wait_for(&backups, "my-database-backup", completed, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    println!("apply -> first backup Completed: {:?}", started.elapsed());
    assert!(
        backup.is_ready(),
        "BackupReady=True once the artifact is verified"
    );
    let status = backup.status.clone().unwrap();
    let bytes = artifact_bytes(&client, ns.name(), &backup)
        .await
        .unwrap_or_else(|e| fail(e));
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

    ns.cleanup().await.unwrap();
}

const ONE_SHOT_BACKUP: &str = r#"
apiVersion: database.example.com/v1
kind: Backup
metadata:
  name: source-once
spec:
  databaseRef: {name: source}
"#;

const RESTORE: &str = r#"
apiVersion: database.example.com/v1
kind: Restore
metadata:
  name: into-target
spec:
  backupRef: {name: source-once}
  databaseRef: {name: target}
"#;

#[tokio::test]
async fn rows_written_before_a_backup_come_back_and_rows_after_do_not() {
    let cluster = testenv::cluster().await.expect("test cluster");
    let ns = cluster.node_namespace("e2e-restore").await.unwrap();
    let client = cluster.admin_client();
    let (db_op, backup_op) = start_both(cluster, ns.name()).await.unwrap();
    let fail =
        |e: anyhow::Error| -> ! { panic!("{e:#}\n{}\n{}", ns.dump(), logs(&[&db_op, &backup_op])) };
    let databases: Api<Database> = Api::namespaced(client.clone(), ns.name());
    let n = ns.name();

    apply_yaml(&client, n, &database_yaml("source", None))
        .await
        .unwrap();
    apply_yaml(&client, n, &database_yaml("target", None))
        .await
        .unwrap();
    testenv::wait_for(&databases, "source", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    let setup = "CREATE TABLE items (id int PRIMARY KEY, label text, price numeric(8,2), tags jsonb); \
                 INSERT INTO items VALUES (1, 'before', 9.99, '{\"a\": 1}'), (2, 'before', 0.50, '[]'), (3, 'before', 12.00, 'null')";
    psql(&client, n, "source", setup)
        .await
        .unwrap_or_else(|e| fail(e));

    apply_yaml(&client, n, ONE_SHOT_BACKUP).await.unwrap();
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&backups, "source-once", completed, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    psql(
        &client,
        n,
        "source",
        "INSERT INTO items VALUES (4, 'after', 1.00, '{}')",
    )
    .await
    .unwrap_or_else(|e| fail(e));

    let expected = "1|before|9.99|{\"a\": 1}\n2|before|0.50|[]\n3|before|12.00|null";
    let query = "SELECT id, label, price, tags FROM items ORDER BY id";

    // A new Database initialised from the Backup: Ready only once its data is restored.
    apply_yaml(&client, n, &database_yaml("copy", Some("source-once")))
        .await
        .unwrap();
    testenv::wait_for(&databases, "copy", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    assert_eq!(
        psql(&client, n, "copy", query)
            .await
            .unwrap_or_else(|e| fail(e)),
        expected
    );

    // A Restore into an existing, empty Database.
    testenv::wait_for(&databases, "target", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    apply_yaml(&client, n, RESTORE).await.unwrap();
    let restores: Api<Restore> = Api::namespaced(client.clone(), n);
    let done = |r: Option<&Restore>| {
        r.is_some_and(|r| matches!(r.phase(), RestorePhase::Completed | RestorePhase::Failed))
    };
    let restore = testenv::wait_for(&restores, "into-target", done, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    assert_eq!(restore.phase(), RestorePhase::Completed, "{restore:#?}");
    assert_eq!(
        psql(&client, n, "target", query)
            .await
            .unwrap_or_else(|e| fail(e)),
        expected
    );

    ns.cleanup().await.unwrap();
}
