use super::*;
use crate::support::Destination;
use backup_data::wal::Timeline;

/// A standby promoted after the primary is lost starts timeline 2; the archiver pointed at
/// it archives timeline 2's history file and WAL, and a base backup taken on timeline 1
/// recovers across the switch with every row.
#[tokio::test(flavor = "multi_thread")]
async fn recovery_replays_across_a_promotion() {
    let primary = PgServer::start_with_small_wal().await;
    primary.psql("postgres", "CREATE TABLE t (id int)").await;
    let standby = primary.start_standby();
    let destination = Destination::directory().await;
    let storage = Arc::new(destination.storage().await);
    let spool = tempfile::tempdir().unwrap();

    let archiver = Archiver::start(&primary, storage.clone(), spool.path().into());
    wait_streaming(&primary).await;
    base_backup(&primary, &storage, "base-1").await;
    primary
        .psql("postgres", "INSERT INTO t SELECT generate_series(1, 1000)")
        .await;
    switch_and_wait_archived(&primary, &storage).await;
    // In the segment being written, which only the partial upload carries.
    primary
        .psql("postgres", "INSERT INTO t SELECT generate_series(1, 500)")
        .await;
    let primary_end = primary
        .psql("postgres", "SELECT pg_current_wal_lsn()")
        .await;
    wait_for("the standby replayed everything", || async {
        standby
            .psql(
                "postgres",
                &format!("SELECT pg_last_wal_replay_lsn() >= '{primary_end}'::pg_lsn"),
            )
            .await
            == "t"
    })
    .await;
    archiver.stop().await;
    primary.stop_immediately();
    standby.promote();
    standby
        .psql("postgres", "INSERT INTO t SELECT generate_series(1, 700)")
        .await;

    // The read-write Service now leads to the standby: same spool, same slot name.
    let archiver = Archiver::start(&standby, storage.clone(), spool.path().into());
    wait_streaming(&standby).await;
    let last = switch_and_wait_archived(&standby, &storage).await;
    assert!(last.starts_with("00000002"), "{last}");
    wait_archived(&storage, "00000002.history").await;
    let status = archiver.stop().await;
    assert!(status.gaps.is_empty(), "{:?}", status.gaps);
    assert_eq!(status.timeline, Some(2));
    let listing = listing(&storage).await;
    assert!(
        listing
            .archive
            .history_timelines()
            .any(|t| t == Timeline::new(2).unwrap())
    );

    let (dir, prepared) = prepare(&storage, None).await.unwrap();
    assert_eq!(prepared.timeline, 2);
    assert!(prepared.wal_files.contains(&"00000002.history".to_owned()));
    let recovered = start_recovered(dir, primary.bin_dir().into()).await;
    assert_eq!(
        recovered.psql("postgres", "SELECT count(*) FROM t").await,
        "2200"
    );
}
