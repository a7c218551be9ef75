use super::*;
use crate::support::Destination;

/// Rows A, the target time T, rows B, then a dropped table: a recovery to T has exactly
/// rows A and the table; one to the end of the archive has A and B and no table.
async fn recovery_to_a_time_stops_before_later_rows_and_the_drop(destination: Destination) {
    let server = PgServer::start_with_small_wal().await;
    let storage = Arc::new(destination.storage().await);
    let spool = tempfile::tempdir().unwrap();
    server
        .psql(
            "postgres",
            "CREATE TABLE kept (id int); CREATE TABLE dropped (id int)",
        )
        .await;
    let archiver = Archiver::start(&server, storage.clone(), spool.path().into());
    wait_streaming(&server).await;
    base_backup(&server, &storage, "base-1").await;

    server
        .psql(
            "postgres",
            "INSERT INTO kept SELECT generate_series(1, 100); INSERT INTO dropped SELECT generate_series(1, 100)",
        )
        .await;
    let target = server_now(&server).await;
    server
        .psql(
            "postgres",
            "INSERT INTO kept SELECT generate_series(101, 150); INSERT INTO dropped SELECT generate_series(101, 150)",
        )
        .await;
    server.psql("postgres", "DROP TABLE dropped").await;
    switch_and_wait_archived(&server, &storage).await;
    let status = archiver.stop().await;
    assert!(status.gaps.is_empty(), "{:?}", status.gaps);

    let (window, text) = recovery_prepare::window(&storage, &support::backup_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(window.ranges.len(), 1, "{text}");
    assert!(window.gaps.is_empty(), "{text}");
    let range = &window.ranges[0];
    let (from, to) = (range.from.time.unwrap().at, range.to.time.unwrap().at);
    assert!(from <= target && target <= to, "{target} is not in {text}");
    // What the archiver serves at /status for the operator: the same window.
    let report =
        backup_data::wal_archiver::recoverability::report(&storage, &support::backup_ref())
            .await
            .unwrap()
            .expect("a window once a base backup exists");
    assert_eq!(
        (
            report.first_recoverable_time,
            report.last_recoverable_time,
            report.gaps
        ),
        (Some(from), Some(to), 0),
        "{}",
        report.description
    );

    let (dir, prepared) = prepare(&storage, Some(target)).await.unwrap();
    assert_eq!(prepared.base_backup, "base-1");
    let recovered = start_recovered(dir, server.bin_dir().into()).await;
    assert_eq!(
        recovered
            .psql("postgres", "SELECT count(*) FROM kept")
            .await,
        "100"
    );
    assert_eq!(
        recovered
            .psql("postgres", "SELECT count(*) FROM dropped")
            .await,
        "100"
    );
    drop(recovered);

    let (dir, _) = prepare(&storage, None).await.unwrap();
    let recovered = start_recovered(dir, server.bin_dir().into()).await;
    assert_eq!(
        recovered
            .psql("postgres", "SELECT count(*) FROM kept")
            .await,
        "150"
    );
    assert_eq!(
        recovered
            .psql("postgres", "SELECT to_regclass('dropped') IS NULL")
            .await,
        "t"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_to_a_time_stops_before_later_rows_and_the_drop_in_a_directory() {
    recovery_to_a_time_stops_before_later_rows_and_the_drop(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_to_a_time_stops_before_later_rows_and_the_drop_in_s3() {
    recovery_to_a_time_stops_before_later_rows_and_the_drop(Destination::s3().await).await;
}
