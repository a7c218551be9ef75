use crate::support::{self, Destination, postgres::PgServer};
use backup_data::restore::{RestoreError, restore};
use tokio_util::sync::CancellationToken;

/// The target holds one table with one row; after a refused restore it must
/// hold exactly that.
async fn prepare_target(server: &PgServer) {
    server.create_database("target").await;
    server
        .psql(
            "target",
            "CREATE TABLE sentinel (id integer); INSERT INTO sentinel VALUES (1);",
        )
        .await;
}

async fn target_state(server: &PgServer) -> String {
    server
        .psql(
            "target",
            "SELECT string_agg(tablename, ',' ORDER BY tablename) || ' ' || (SELECT count(*) FROM sentinel) \
             FROM pg_tables WHERE schemaname = 'public'",
        )
        .await
}

async fn flipped_byte_is_refused_before_the_target_is_touched(destination: Destination) {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let storage = destination.storage().await;
    support::dump(&storage, &server, "run-1", 3).await;
    prepare_target(&server).await;
    let before = target_state(&server).await;

    let artifact = destination.file_of("app/nightly/run-1/dump.pgdump");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, bytes).unwrap();

    let temp = tempfile::tempdir().unwrap();
    let error = restore(
        &storage,
        &support::restore_request(&server, "target", temp.path()),
        &CancellationToken::new(),
    )
    .await
    .expect_err("a corrupt artifact was restored");

    assert!(matches!(error, RestoreError::Corrupt { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("corrupt") && message.contains("not touched"),
        "{message}"
    );
    assert_eq!(target_state(&server).await, before);
    assert_eq!(before, "sentinel 1");
    assert!(
        support::files_under(temp.path()).is_empty(),
        "the download was left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_flipped_byte_in_a_directory_before_touching_the_target() {
    flipped_byte_is_refused_before_the_target_is_touched(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_flipped_byte_in_s3_before_touching_the_target() {
    flipped_byte_is_refused_before_the_target_is_touched(Destination::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_truncated_artifact() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    support::dump(&storage, &server, "run-1", 3).await;
    prepare_target(&server).await;

    let artifact = destination.file_of("app/nightly/run-1/dump.pgdump");
    let length = std::fs::metadata(&artifact).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&artifact)
        .unwrap()
        .set_len(length - 100)
        .unwrap();

    let temp = tempfile::tempdir().unwrap();
    let error = restore(
        &storage,
        &support::restore_request(&server, "target", temp.path()),
        &CancellationToken::new(),
    )
    .await
    .expect_err("a truncated artifact was restored");
    assert!(
        error
            .to_string()
            .contains(&format!("{} bytes", length - 100)),
        "{error}"
    );
    assert_eq!(target_state(&server).await, "sentinel 1");
}
