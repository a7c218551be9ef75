//! How `dump` verifies an S3 upload: by the ETag the store acknowledged when
//! that ETag is the MD5 of the parts sent, by reading the artifact back when it
//! is not or when asked to, and never reporting a run whose stored bytes differ.

use crate::support::s3::{S3Server, Tampering};
use crate::support::{self, Destination, postgres::PgServer};
use backup_data::digest::DigestWriter;
use backup_data::dump::DumpError;
use backup_data::storage::{Verification, Verified};
use error_text::describe;
use tokio_util::sync::CancellationToken;

async fn tampering_destination(tampering: Tampering) -> Destination {
    Destination::S3(S3Server::start_tampering(tampering).await)
}

/// The SHA-256 and size of the bytes the store keeps for a run's artifact.
fn stored_digest(destination: &Destination, run_id: &str) -> backup_data::digest::ContentDigest {
    let stored =
        std::fs::read(destination.file_of(&format!("app/nightly/{run_id}/dump.pgdump"))).unwrap();
    let mut digest = DigestWriter::new();
    digest.update(&stored);
    digest.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_alters_a_part_fails_the_dump_and_keeps_nothing() {
    let server = PgServer::start().await;
    support::seed_big_table(&server).await;
    let destination = tampering_destination(Tampering::FlipBitInPart(2)).await;
    let storage = destination.storage().await;

    let error = backup_data::dump::dump(
        &storage,
        &support::dump_request(&server, "altered", 3),
        &CancellationToken::new(),
    )
    .await
    .expect_err("an altered upload was reported as a backup");

    assert!(matches!(error, DumpError::Verify { .. }), "{error:?}");
    let message = describe(&error);
    // The ETag disagreed, the read-back settled it: the stored bytes are not the dump.
    assert!(message.contains("differs from"), "{message}");
    assert!(message.contains("stored artifact has"), "{message}");
    assert!(
        message.contains("s3://backups/team-a/app/nightly/altered/dump.pgdump"),
        "{message}"
    );
    assert_eq!(destination.s3_server().artifact_downloads(), 1);
    assert_eq!(destination.stored_files(), Vec::<String>::new());
    assert!(destination.s3_server().pending_upload_parts().is_empty());
    support::assert_no_complete_run(&storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_etags_are_not_md5s_of_the_parts_is_verified_by_reading_back() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = tampering_destination(Tampering::OpaqueEtags).await;
    let storage = destination.storage().await;

    let report = support::dump(&storage, &server, "opaque", 3).await;

    assert_eq!(report.verified, Verified::Read);
    assert_eq!(destination.s3_server().artifact_downloads(), 1);
    assert_eq!(
        stored_digest(&destination, "opaque"),
        report.manifest.digest()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_verification_downloads_the_artifact_even_when_the_etag_matches() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::s3().await;
    let storage = destination.storage().await;
    let mut request = support::dump_request(&server, "read", 3);
    request.verification = Verification::Read;

    let report = backup_data::dump::dump(&storage, &request, &CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(report.verified, Verified::Read);
    assert_eq!(destination.s3_server().artifact_downloads(), 1);
    assert_eq!(
        stored_digest(&destination, "read"),
        report.manifest.digest()
    );
}
