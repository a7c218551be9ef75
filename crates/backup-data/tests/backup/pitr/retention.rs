use super::*;
use crate::support::Destination;
use backup_data::base_backup::store as base_store;
use backup_data::physical_retention;
use backup_data::wal::{Lsn, WalSegment};

/// Keeping two of three base backups deletes the oldest and the WAL only it needed; what
/// is left still recovers.
#[tokio::test(flavor = "multi_thread")]
async fn retention_prunes_base_backups_and_their_wal() {
    let server = PgServer::start_with_small_wal().await;
    let destination = Destination::directory().await;
    let storage = Arc::new(destination.storage().await);
    let spool = tempfile::tempdir().unwrap();
    server.psql("postgres", "CREATE TABLE t (id int)").await;
    let archiver = Archiver::start(&server, storage.clone(), spool.path().into());
    wait_streaming(&server).await;
    let mut manifests = Vec::new();
    for run in ["base-1", "base-2", "base-3"] {
        manifests.push(base_backup(&server, &storage, run).await);
        server
            .psql("postgres", "INSERT INTO t SELECT generate_series(1, 5000)")
            .await;
        switch_and_wait_archived(&server, &storage).await;
    }
    archiver.stop().await;

    let second_start = WalSegment::containing(
        Timeline::FIRST,
        manifests[1].start_lsn.parse::<Lsn>().unwrap(),
        size(),
    );
    let before = listing(&storage).await;
    assert!(
        before
            .archive
            .segments()
            .any(|s| s.number < second_start.number)
    );

    let pruned = physical_retention::prune(&storage, &support::backup_ref(), 2)
        .await
        .unwrap();
    assert_eq!(pruned.base_backups, ["base-1"]);
    assert!(!pruned.wal_files.is_empty());

    let after = listing(&storage).await;
    assert!(
        after
            .archive
            .segments()
            .all(|s| s.number >= second_start.number)
    );
    assert!(
        after
            .archive
            .segments()
            .any(|s| s.number == second_start.number)
    );
    let kept: Vec<String> = base_store::list(&storage, &support::backup_ref())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.run_id)
        .collect();
    assert_eq!(kept, ["base-2", "base-3"]);
    let (dir, prepared) = prepare(&storage, None).await.unwrap();
    assert_eq!(prepared.base_backup, "base-3");
    let recovered = start_recovered(dir, server.bin_dir().into()).await;
    assert_eq!(
        recovered.psql("postgres", "SELECT count(*) FROM t").await,
        "15000"
    );
}

use backup_data::wal::Timeline;
