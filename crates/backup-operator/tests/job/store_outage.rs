//! The object store down when a dump starts, down in the middle of an upload,
//! and back again: a dump fails in bounded time with the store named, leaves
//! nothing that counts as a backup, and the next one after recovery is whole.

use crate::run::{Running, pg_env, run};
use backup_data::storage::Verified;
use backup_test_support::{self as support, Destination, SOURCE_DB, postgres::PgServer};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Per S3 request, instead of the default 120 s, so the tests stay short; the
/// bound below shows that this setting is what ends the run.
const RETRY_TIMEOUT_SECONDS: u64 = 2;
/// A request retried for 2 s sleeps at most about 4 s more (the backoff doubles
/// from 0.1 s), and a failed upload is aborted with one more such request.
const FAILS_WITHIN: Duration = Duration::from_secs(30);

fn dump_env(
    server: &PgServer,
    destination: &Destination,
    run_id: &str,
) -> Vec<(&'static str, String)> {
    let mut env = pg_env(server, SOURCE_DB);
    env.extend(destination.env());
    env.push(("BACKUP_RUN_ID", run_id.into()));
    env.push((
        "S3_RETRY_TIMEOUT_SECONDS",
        RETRY_TIMEOUT_SECONDS.to_string(),
    ));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_with_s3_down_from_the_start_fails_in_bounded_time_naming_the_store() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let mut destination = Destination::s3().await;
    destination.s3_server_mut().stop().await;

    let started = Instant::now();
    let failed = run(&["dump"], dump_env(&server, &destination, "down")).await;
    let took = started.elapsed();

    let error = failed.error();
    assert!(
        error.contains("S3 request") && error.contains("s3://backups/team-a/app/nightly/down/"),
        "{error}"
    );
    let endpoint = destination.s3_server().endpoint();
    assert!(
        error.contains(endpoint.trim_start_matches("http://")),
        "{error}"
    );
    assert!(took < FAILS_WITHIN, "took {took:?}");
    assert_eq!(destination.stored_files(), Vec::<String>::new());
    assert!(destination.s3_server().pending_upload_parts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_cut_off_by_an_s3_outage_fails_and_the_next_one_after_recovery_is_whole() {
    let server = PgServer::start().await;
    support::seed_big_table(&server).await;
    let mut destination = Destination::s3().await;

    let mut dump = Running::start(&["dump"], dump_env(&server, &destination, "cut-off"));
    support::wait_until("the first part to be stored", || {
        !destination.s3_server().pending_upload_parts().is_empty()
    })
    .await;
    destination.s3_server_mut().stop().await;
    let stopped = Instant::now();
    // Still running with no object under the key: the store went down while
    // the upload was in progress, not after it completed.
    assert!(
        !dump.has_exited() && destination.stored_files().is_empty(),
        "the upload finished before the store went down; make the big table bigger"
    );

    let failed = dump.finish().await;
    let error = failed.error();
    assert!(
        error.contains("S3 request")
            && error.contains("s3://backups/team-a/app/nightly/cut-off/dump.pgdump"),
        "{error}"
    );
    assert!(
        stopped.elapsed() < FAILS_WITHIN,
        "took {:?}",
        stopped.elapsed()
    );
    assert_eq!(destination.stored_files(), Vec::<String>::new());
    // Aborting the upload needed the store too: its parts stay, invisible to
    // listing, until a lifecycle rule (AbortIncompleteMultipartUpload) reclaims them.
    let leftovers = destination.s3_server().pending_upload_parts();
    assert!(!leftovers.is_empty());

    destination.s3_server_mut().restart().await;
    let storage = destination.storage().await;
    let backup = support::backup_ref();
    assert!(storage.list_complete(&backup).await.unwrap().is_empty());

    let report = support::dump(&storage, &server, "after", 1).await;
    assert_eq!(report.verified, Verified::Etag);
    assert!(report.pruned.is_empty(), "{:?}", report.pruned);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        destination.stored_files(),
        [
            "app/nightly/after/dump.pgdump",
            "app/nightly/after/manifest.json"
        ]
    );
    let listed: Vec<_> = storage
        .list_complete(&backup)
        .await
        .unwrap()
        .into_iter()
        .map(|manifest| manifest.run_id)
        .collect();
    assert_eq!(listed, ["after"]);
    assert_eq!(
        storage.remove_stale(&backup, Duration::ZERO).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(destination.s3_server().pending_upload_parts(), leftovers);

    server.create_database("restored").await;
    let temp = tempfile::tempdir().unwrap();
    let restored = backup_data::restore::restore(
        &storage,
        &support::restore_request(&server, "restored", temp.path()),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(restored.manifest.run_id, "after");
    let digest = "SELECT md5(string_agg(filler, '' ORDER BY id)) FROM big";
    assert_eq!(
        server.psql("restored", digest).await,
        server.psql(SOURCE_DB, digest).await
    );
}
