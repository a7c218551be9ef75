//! Runs that do not finish must leave nothing that looks like a backup. A killed or
//! terminated process is tested with the binary (`backup-operator`'s tests/job/killed.rs).

use crate::support::{self, Destination, SOURCE_DB, postgres::PgServer};
use backup_data::dump::DumpError;
use backup_data::pg::PgConnection;
use bytes::Bytes;
use error_text::describe;
use secret::SecretString;
use tokio_util::sync::CancellationToken;

async fn source_error_halfway_stores_nothing(destination: Destination) {
    let storage = destination.storage().await;
    let run = support::backup_ref().run(backup_data::storage::RunId::new("broken").unwrap());
    // 7 MiB, more than one part, then the source fails.
    let mut chunks: Vec<std::io::Result<Bytes>> = (0..7)
        .map(|_| Ok(Bytes::from(vec![7u8; 1024 * 1024])))
        .collect();
    chunks.push(Err(std::io::Error::other("source broke")));
    let reader = tokio_util::io::StreamReader::new(futures::stream::iter(chunks));

    let error = storage
        .put_artifact(&run, reader)
        .await
        .expect_err("a broken stream was stored");

    assert!(
        describe(&error).contains("source broke"),
        "{}",
        describe(&error)
    );
    support::assert_no_complete_run(&storage).await;
    assert_eq!(destination.stored_files(), Vec::<String>::new());
    if let Destination::S3(server) = &destination {
        assert_eq!(
            server.pending_upload_parts(),
            Vec::<std::path::PathBuf>::new(),
            "upload not aborted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_failing_halfway_leaves_nothing_in_a_directory() {
    source_error_halfway_stores_nothing(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_failing_halfway_leaves_nothing_in_s3() {
    source_error_halfway_stores_nothing(Destination::s3().await).await;
}

/// pg_dump that fails after it has written table data (here: it may read
/// the table but not the large objects) must not produce a backup.
async fn failing_pg_dump_stores_nothing(destination: Destination) {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    server
        .psql(
            SOURCE_DB,
            "CREATE ROLE limited LOGIN PASSWORD 'limited-pw'; GRANT SELECT ON samples TO limited;",
        )
        .await;
    let storage = destination.storage().await;
    let mut request = support::dump_request(&server, "failing", 3);
    request.connection = PgConnection {
        user: Some("limited".into()),
        password: Some(SecretString::new("limited-pw")),
        ..server.connection(SOURCE_DB)
    };

    let error = backup_data::dump::dump(&storage, &request, &CancellationToken::new())
        .await
        .expect_err("a failed pg_dump produced a backup");

    assert!(matches!(error, DumpError::PgDump(_)), "{error:?}");
    let message = describe(&error);
    assert!(message.contains("permission denied"), "{message}");
    support::assert_no_complete_run(&storage).await;
    assert_eq!(destination.stored_files(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pg_dump_leaves_nothing_in_a_directory() {
    failing_pg_dump_stores_nothing(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pg_dump_leaves_nothing_in_s3() {
    failing_pg_dump_stores_nothing(Destination::s3().await).await;
}
