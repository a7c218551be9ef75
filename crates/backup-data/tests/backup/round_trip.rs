use crate::support::{self, Destination, SOURCE_DB, postgres::PgServer};
use backup_data::digest::DigestWriter;
use backup_data::restore::restore;
use backup_data::storage::Verified;
use tokio_util::sync::CancellationToken;

async fn dump_then_restore_preserves_everything(destination: Destination) {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let storage = destination.storage().await;

    let report = support::dump(&storage, &server, "run-1", 3).await;

    // A directory is read back; an S3 upload is confirmed by its ETag, not downloaded.
    match &destination {
        Destination::Directory(_) => assert_eq!(report.verified, Verified::Read),
        Destination::S3(server) => {
            assert_eq!(report.verified, Verified::Etag);
            assert_eq!(server.artifact_downloads(), 0);
        }
    }
    let manifest = &report.manifest;
    assert_eq!(manifest.database, SOURCE_DB);
    assert_eq!(manifest.backup_name, support::BACKUP_NAME);
    assert_eq!(manifest.run_id, "run-1");
    assert_eq!(manifest.format, "pg_dump-custom");
    let server_version = server.psql("postgres", "SHOW server_version").await;
    assert_eq!(manifest.server_version, server_version);
    assert_eq!(
        destination.stored_files(),
        [
            "app/nightly/run-1/dump.pgdump",
            "app/nightly/run-1/manifest.json"
        ]
    );
    // The manifest describes the bytes actually stored.
    let stored = std::fs::read(destination.file_of("app/nightly/run-1/dump.pgdump")).unwrap();
    let mut digest = DigestWriter::new();
    digest.update(&stored);
    assert_eq!(digest.finish(), manifest.digest());
    assert!(stored.starts_with(b"PGDMP"), "not a custom-format dump");

    server.create_database("restored").await;
    let temp = tempfile::tempdir().unwrap();
    let restored = restore(
        &storage,
        &support::restore_request(&server, "restored", temp.path()),
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|error| panic!("restore failed: {}", error_text::describe(&error)));

    assert_eq!(&restored.manifest, manifest);
    assert_eq!(
        support::fingerprint(&server, "restored").await,
        support::fingerprint(&server, SOURCE_DB).await
    );
    assert_eq!(
        server
            .psql("restored", "SELECT note FROM samples WHERE id = 1")
            .await,
        "Grüße, 世界 🐘"
    );
    assert_eq!(
        server
            .psql("restored", "SELECT convert_from(lo_get(oid), 'UTF8') FROM pg_largeobject_metadata WHERE oid <> 424242")
            .await,
        "large object ü"
    );
    assert_eq!(
        server
            .psql("restored", "SELECT length(lo_get(424242))")
            .await,
        "100000"
    );
    assert!(
        support::files_under(temp.path()).is_empty(),
        "the download was left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_a_directory_preserves_rows_types_and_large_objects() {
    dump_then_restore_preserves_everything(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_s3_preserves_rows_types_and_large_objects() {
    dump_then_restore_preserves_everything(Destination::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_spanning_many_multipart_parts_restores_intact() {
    let server = PgServer::start().await;
    support::seed_big_table(&server).await;
    let destination = Destination::s3().await;
    let storage = destination.storage().await;

    let report = support::dump(&storage, &server, "big", 1).await;
    assert_eq!(report.verified, Verified::Etag);
    assert_eq!(destination.s3_server().artifact_downloads(), 0);
    assert!(
        report.manifest.size_bytes > 3 * 5 * 1024 * 1024,
        "only {} bytes: too small to span several parts",
        report.manifest.size_bytes
    );

    server.create_database("restored").await;
    let temp = tempfile::tempdir().unwrap();
    restore(
        &storage,
        &support::restore_request(&server, "restored", temp.path()),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let digest = "SELECT md5(string_agg(filler, '' ORDER BY id)) FROM big";
    assert_eq!(
        server.psql("restored", digest).await,
        server.psql(SOURCE_DB, digest).await
    );
}
