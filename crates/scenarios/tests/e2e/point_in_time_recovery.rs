//! Point-in-time recovery into a new Database on the real node: a physical Backup archives
//! the source's WAL on a claim or in an S3 bucket, and a Database with
//! `backupRef.targetTime` has exactly what was committed up to that moment; without it,
//! everything archived. A target outside the window is refused with the window, and a
//! damaged segment stops the recovery naming it.

use api::{Backup, Database};
use backup_test_support::s3::{BUCKET, S3Server};
use kube::Api;
use serde_json::json;

use scenarios::physical::{StoredArchive, host_address, s3_secret_manifest};
use scenarios::pitr::*;
use scenarios::*;

const SOURCE: &str = "source";
const BACKUP: &str = "source-pitr";

/// The source Database, Ready, with its physical Backup ready (a base backup taken), writing
/// to `destination` (`spec.destination`; the operator's claim when `None`).
async fn source_with_physical_backup(
    scenario: &mut Scenario,
    destination: Option<serde_json::Value>,
) -> testkit::DatabaseFixture {
    scenario.start_both().await;
    let source = node_database(SOURCE);
    scenario.apply(&source.manifest()).await;
    let databases = scenario.api::<Database>();
    testenv::wait_for(&databases, SOURCE, database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let backup = physical_backup(BACKUP, SOURCE);
    let backup = match destination {
        Some(destination) => backup.set("/spec/destination", destination),
        None => backup,
    };
    scenario.apply(&backup.manifest()).await;
    let backups = scenario.api::<Backup>();
    let ready = |b: Option<&Backup>| b.is_some_and(|b| b.is_ready());
    testenv::wait_for(&backups, BACKUP, ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    source
}

/// On the source: rows A committed (`kept` 1 to 3, and the table `doomed`), the moment T
/// noted, rows B committed (`kept` 4 to 6), then `doomed` dropped. T, once the archive covers
/// the drop.
async fn commit_around_a_moment(scenario: &Scenario) -> String {
    let (client, n) = (scenario.client(), scenario.ns());
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
    t
}

/// Recovers `at-t` (to T) and `at-end` (without a target) from the Backup at once, and
/// checks that `at-t` has exactly rows A and the table dropped after T, `at-end` rows A and B
/// and no table, both promoted, and `at-t`'s status names what it was recovered from: the
/// Backup, its only base backup, T. That base backup's run id.
async fn recover_to_the_moment_and_to_the_end(
    scenario: &Scenario,
    source: &testkit::DatabaseFixture,
    t: &str,
) -> String {
    let (client, n) = (scenario.client(), scenario.ns());
    let databases = scenario.api::<Database>();
    scenario
        .apply(&recovered_database("at-t", BACKUP, Some(t), source).manifest())
        .await;
    scenario
        .apply(&recovered_database("at-end", BACKUP, None, source).manifest())
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
    ask("at-end", "INSERT INTO kept VALUES (7)").await.unwrap();

    // The status says from what and to what.
    let backup = scenario.api::<Backup>().get(BACKUP).await.unwrap();
    let history = backup.status.map(|s| s.history).unwrap_or_default();
    let [base] = &history[..] else {
        panic!("one base backup taken: {history:?}");
    };
    let at_t = databases.get("at-t").await.unwrap();
    let recovery = at_t.status.and_then(|s| s.recovery).unwrap_or_default();
    assert_eq!(recovery.backup, BACKUP);
    assert_eq!(
        recovery.base_backup.as_ref(),
        Some(&base.run_id),
        "{recovery:?}"
    );
    assert_eq!(
        recovery.target_time.as_ref().map(|t| t.0.to_string()),
        Some(t.to_string())
    );
    let recovered_to = recovery.recovered_to.expect("a recovered-to time");
    assert!(
        recovered_to.0 <= t.parse().unwrap(),
        "recovered to {recovered_to:?}, after the target {t}"
    );
    base.run_id.clone()
}

#[tokio::test]
async fn a_database_recovered_to_a_moment_has_exactly_what_was_committed_before_it() {
    let mut scenario = Scenario::on_node("e2e-pitr").await;
    let source = source_with_physical_backup(&mut scenario, None).await;
    let t = commit_around_a_moment(&scenario).await;
    recover_to_the_moment_and_to_the_end(&scenario, &source, &t).await;

    // A target outside the window is refused, with the window in the message.
    scenario
        .apply(
            &recovered_database("too-early", BACKUP, Some("2000-01-01T00:00:00Z"), &source)
                .manifest(),
        )
        .await;
    let (reason, message) = wait_failed(&scenario.client(), scenario.ns(), "too-early")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(reason, "RecoveryTargetRefused", "{message}");
    assert!(
        message.contains("outside the recoverability window") && message.contains(" to "),
        "{message}"
    );

    scenario.finish().await;
}

/// The same from an S3 destination: the base backup and the WAL are fetched from the bucket
/// (served by the test process), and the base backup the status names is the one stored
/// there.
#[tokio::test]
async fn a_database_recovered_from_s3_has_exactly_what_was_committed_before_the_moment() {
    let mut scenario = Scenario::on_node("e2e-pitr-s3").await;
    let s3 = S3Server::start_on(host_address(&scenario).await).await;
    let (key_id, secret_key) = s3.credentials();
    scenario
        .apply(&s3_secret_manifest("s3-credentials", key_id, secret_key))
        .await;
    let destination = json!({"s3": {
        "endpoint": s3.endpoint(),
        "bucket": BUCKET,
        "prefix": "team",
        "credentialsSecret": {"name": "s3-credentials"},
    }});
    let source = source_with_physical_backup(&mut scenario, Some(destination)).await;
    let t = commit_around_a_moment(&scenario).await;
    let base = recover_to_the_moment_and_to_the_end(&scenario, &source, &t).await;

    let stored = StoredArchive::in_bucket(&s3.keys(), &format!("team/{SOURCE}/{BACKUP}"));
    assert!(
        stored.base_backups.contains(&base) && stored.missing(1).is_empty(),
        "{base} and no gap in {stored:?}"
    );
    scenario.finish().await;
}

#[tokio::test]
async fn a_damaged_wal_segment_stops_the_recovery_naming_it() {
    let mut scenario = Scenario::on_node("e2e-pitr-damaged").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    let source = source_with_physical_backup(&mut scenario, None).await;
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
