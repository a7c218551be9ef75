use crate::support::{self, Destination, postgres::PgServer};
use std::time::{Duration, SystemTime};

async fn retention_keeps_the_newest_runs(destination: Destination) {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let storage = destination.storage().await;

    // Run ids sort in time order, which breaks ties between runs started
    // within the same second.
    assert!(
        support::dump(&storage, &server, "run-1", 2)
            .await
            .pruned
            .is_empty()
    );
    assert!(
        support::dump(&storage, &server, "run-2", 2)
            .await
            .pruned
            .is_empty()
    );
    assert_eq!(
        support::dump(&storage, &server, "run-3", 2).await.pruned,
        ["run-1"]
    );
    assert_eq!(
        support::dump(&storage, &server, "run-4", 2).await.pruned,
        ["run-2"]
    );

    // Checked on the storage itself, not through the code under test.
    assert_eq!(
        destination.stored_files(),
        [
            "app/nightly/run-3/dump.pgdump",
            "app/nightly/run-3/manifest.json",
            "app/nightly/run-4/dump.pgdump",
            "app/nightly/run-4/manifest.json",
        ]
    );
    let listed: Vec<_> = storage
        .list_complete(&support::backup_ref())
        .await
        .unwrap()
        .into_iter()
        .map(|manifest| manifest.run_id)
        .collect();
    assert_eq!(listed, ["run-4", "run-3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_the_oldest_runs_from_a_directory() {
    retention_keeps_the_newest_runs(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_the_oldest_runs_from_s3() {
    retention_keeps_the_newest_runs(Destination::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_id_that_is_already_complete_is_never_overwritten() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let first = support::dump(&storage, &server, "run-1", 5).await;

    let error = backup_data::dump::dump(
        &storage,
        &support::dump_request(&server, "run-1", 5),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect_err("a complete run was overwritten");

    assert!(error.to_string().contains("cannot be written"), "{error}");
    assert!(error_text::describe(&error).contains("never overwritten"));
    assert_eq!(
        storage.list_complete(&support::backup_ref()).await.unwrap(),
        [first.manifest]
    );
}

#[tokio::test]
async fn stale_partials_are_removed_and_fresh_ones_kept() {
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let old = destination.file_of("app/nightly/dead/dump.pgdump.partial");
    let fresh = destination.file_of("app/nightly/live/dump.pgdump.partial");
    for path in [&old, &fresh] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"partial").unwrap();
    }
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    let removed = storage
        .remove_stale(&support::backup_ref(), Duration::from_secs(3600))
        .await
        .unwrap();

    assert_eq!(removed, [old.display().to_string()]);
    assert_eq!(
        destination.stored_files(),
        ["app/nightly/live/dump.pgdump.partial"]
    );
}
