//! Point-in-time recovery into a new Database on the real node: a physical Backup archives
//! the source's WAL on a claim, and a Database with `backupRef.targetTime` has exactly what
//! was committed up to that moment; without it, everything archived. A target outside the
//! window is refused with the window, and a damaged segment stops the recovery naming it.

use api::{Backup, Database};
use kube::Api;

use scenarios::pitr::*;
use scenarios::*;

const SOURCE: &str = "source";
const BACKUP: &str = "source-pitr";

/// The source Database, Ready, with its physical Backup ready (a base backup taken).
async fn source_with_physical_backup(scenario: &mut Scenario) -> testkit::DatabaseFixture {
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;
    let source = node_database(SOURCE);
    apply_yaml(&client, n, &source.manifest()).await.unwrap();
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&databases, SOURCE, database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    scenario
        .apply(&physical_backup(BACKUP, SOURCE).manifest())
        .await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let ready = |b: Option<&Backup>| b.is_some_and(|b| b.is_ready());
    testenv::wait_for(&backups, BACKUP, ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    source
}

#[tokio::test]
async fn a_database_recovered_to_a_moment_has_exactly_what_was_committed_before_it() {
    let mut scenario = Scenario::on_node("e2e-pitr").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    let source = source_with_physical_backup(&mut scenario).await;
    let sql = |sql: &'static str| {
        let client = client.clone();
        async move { psql(&client, n, SOURCE, sql).await }
    };

    sql("CREATE TABLE kept (id int); CREATE TABLE doomed (id int); \
         INSERT INTO kept SELECT generate_series(1, 3); INSERT INTO doomed VALUES (1)")
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    // Every commit above is before T, every one below after it.
    let t = next_whole_second(&client, n, SOURCE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    sql("INSERT INTO kept SELECT generate_series(4, 6)")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    sql("DROP TABLE doomed")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let end = server_now(&client, n, SOURCE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let backup = wait_recoverable_to(&client, n, SOURCE, BACKUP, &end)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    println!(
        "T = {t}; window {:?}",
        backup
            .status
            .as_ref()
            .and_then(|s| s.recoverability.clone())
    );

    // To T: the rows of A and the table dropped after T.
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    scenario
        .apply(&recovered_database("at-t", BACKUP, Some(&t), &source).manifest())
        .await;
    // Without a target: everything archived, so the table is gone.
    scenario
        .apply(&recovered_database("at-end", BACKUP, None, &source).manifest())
        .await;
    for name in ["at-t", "at-end"] {
        testenv::wait_for(&databases, name, database_ready, POD_START * 2)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
    }
    let kept = "SELECT string_agg(id::text, ',' ORDER BY id) FROM kept";
    let doomed = "SELECT count(*) FROM pg_tables WHERE tablename = 'doomed'";
    let ask = |db: &'static str, q: &'static str| {
        let client = client.clone();
        async move { psql(&client, n, db, q).await }
    };
    assert_eq!(ask("at-t", kept).await.unwrap(), "1,2,3");
    assert_eq!(ask("at-t", doomed).await.unwrap(), "1", "dropped after T");
    assert_eq!(ask("at-end", kept).await.unwrap(), "1,2,3,4,5,6");
    assert_eq!(
        ask("at-end", doomed).await.unwrap(),
        "0",
        "dropped before the end"
    );
    // The recovered Databases take writes: they promoted.
    ask("at-t", "INSERT INTO kept VALUES (7)").await.unwrap();

    // The status says from what and to what.
    let at_t = databases.get("at-t").await.unwrap();
    let recovery = at_t.status.and_then(|s| s.recovery).unwrap_or_default();
    assert_eq!(recovery.backup, BACKUP);
    assert!(recovery.base_backup.is_some(), "{recovery:?}");
    assert_eq!(
        recovery.target_time.as_ref().map(|t| t.0.to_string()),
        Some(t.clone())
    );
    let recovered_to = recovery.recovered_to.expect("a recovered-to time");
    assert!(
        recovered_to.0 <= t.parse().unwrap(),
        "recovered to {recovered_to:?}, after the target {t}"
    );

    // A target outside the window is refused, with the window in the message.
    scenario
        .apply(
            &recovered_database("too-early", BACKUP, Some("2000-01-01T00:00:00Z"), &source)
                .manifest(),
        )
        .await;
    let (reason, message) = wait_failed(&client, n, "too-early")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(reason, "RecoveryTargetRefused", "{message}");
    assert!(
        message.contains("outside the recoverability window") && message.contains(" to "),
        "{message}"
    );

    scenario.finish().await;
}

#[tokio::test]
async fn a_damaged_wal_segment_stops_the_recovery_naming_it() {
    let mut scenario = Scenario::on_node("e2e-pitr-damaged").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    let source = source_with_physical_backup(&mut scenario).await;
    psql(
        &client,
        n,
        SOURCE,
        "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    let end = server_now(&client, n, SOURCE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let backup = wait_recoverable_to(&client, n, SOURCE, BACKUP, &end)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let segment = flip_bit_in_newest_segment(&client, n, &backup)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    scenario
        .apply(&recovered_database("damaged", BACKUP, None, &source).manifest())
        .await;
    let (reason, message) = wait_failed(&client, n, "damaged")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(reason, "RestoreFailed", "{message}");
    assert!(
        message.contains(&segment),
        "{message} does not name {segment}"
    );
    // Nothing ran on the volume: no StatefulSet was made.
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), n);
    assert!(sets.get_opt("damaged").await.unwrap().is_none());

    scenario.finish().await;
}
