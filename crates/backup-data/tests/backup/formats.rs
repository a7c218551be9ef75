//! Compression and parallel jobs: every combination restores what was dumped, the manifest
//! records how the artifact was made, artifacts of older versions still restore, and one
//! that this pg_restore cannot read is refused before the target is touched.

use crate::support::{self, Destination, SOURCE_DB, postgres::PgServer};
use backup_data::compression::{Algorithm, Compression};
use backup_data::dump::{DumpReport, dump};
use backup_data::pg::{PgTools, PgVersion};
use backup_data::restore::{RestoreError, restore};
use backup_data::storage::{RunId, Storage};
use std::path::Path;
use tokio_util::sync::CancellationToken;

async fn dump_with(
    storage: &Storage,
    server: &PgServer,
    run_id: &str,
    compression: Option<Compression>,
    jobs: u32,
    scratch: &Path,
) -> DumpReport {
    let mut request = support::dump_request(server, run_id, 100);
    request.compression = compression;
    request.jobs = jobs;
    request.scratch_dir = scratch.to_owned();
    dump(storage, &request, &CancellationToken::new())
        .await
        .unwrap_or_else(|error| panic!("dump {run_id} failed: {}", error_text::describe(&error)))
}

async fn restore_run(
    storage: &Storage,
    server: &PgServer,
    run_id: &str,
    target: &str,
    jobs: u32,
) -> Result<(), RestoreError> {
    let temp = tempfile::tempdir().unwrap();
    let mut request = support::restore_request(server, target, temp.path());
    request.run_id = Some(RunId::new(run_id).unwrap());
    request.jobs = jobs;
    let restored = restore(storage, &request, &CancellationToken::new()).await;
    assert!(
        support::files_under(temp.path()).is_empty(),
        "the download of {run_id} was left behind"
    );
    restored.map(|_| ())
}

async fn pg_dump_version(server: &PgServer) -> PgVersion {
    server.tools().tool_version("pg_dump").await.unwrap()
}

async fn every_combination_round_trips(destination: Destination) {
    let server = PgServer::start().await;
    assert!(
        pg_dump_version(&server).await.major >= 16,
        "these tests need PostgreSQL 16 or newer (lz4, zstd): run hack/postgres-tools.sh"
    );
    support::seed_sample_data(&server).await;
    let expected = support::fingerprint(&server, SOURCE_DB).await;
    let storage = destination.storage().await;
    let scratch = tempfile::tempdir().unwrap();
    let algorithms = ["zstd:5", "lz4", "gzip:1", "none"];
    // (compression, dump jobs, restore jobs); a custom-format artifact restored with several
    // jobs needs a seekable file, a directory artifact with one job still works.
    let mut cases: Vec<(Option<&str>, u32, u32)> = Vec::new();
    for algorithm in algorithms {
        cases.push((Some(algorithm), 1, 1));
        cases.push((Some(algorithm), 3, 3));
    }
    cases.push((None, 1, 2));
    cases.push((None, 2, 1));

    for (index, (compression, dump_jobs, restore_jobs)) in cases.into_iter().enumerate() {
        let run_id = format!("run-{index}");
        let compression = compression.map(|text| text.parse::<Compression>().unwrap());
        let report = dump_with(
            &storage,
            &server,
            &run_id,
            compression,
            dump_jobs,
            scratch.path(),
        )
        .await;
        let manifest = &report.manifest;
        let case = format!("{run_id}: {compression:?}, {dump_jobs} jobs");
        assert_eq!(
            manifest.compression,
            compression.unwrap_or(Compression::DEFAULT),
            "{case}"
        );
        assert_eq!(manifest.compression_note, None, "{case}");
        assert_eq!(manifest.jobs, dump_jobs, "{case}");
        assert_eq!(
            manifest.pg_dump_version.as_deref(),
            Some(pg_dump_version(&server).await.to_string().as_str()),
            "{case}"
        );
        let stored =
            std::fs::read(destination.file_of(&format!("app/nightly/{run_id}/dump.pgdump")))
                .unwrap();
        if dump_jobs > 1 {
            assert_eq!(manifest.format, "pg_dump-directory-tar", "{case}");
            assert_eq!(&stored[257..262], b"ustar", "{case}: not a tar archive");
        } else {
            assert_eq!(manifest.format, "pg_dump-custom", "{case}");
            assert!(
                stored.starts_with(b"PGDMP"),
                "{case}: not a custom-format dump"
            );
        }
        assert!(
            support::files_under(scratch.path()).is_empty(),
            "{case}: pg_dump's directory was left in the scratch directory"
        );

        let target = format!("restored_{index}");
        server.create_database(&target).await;
        restore_run(&storage, &server, &run_id, &target, restore_jobs)
            .await
            .unwrap_or_else(|error| panic!("{case}: {}", error_text::describe(&error)));
        assert_eq!(
            support::fingerprint(&server, &target).await,
            expected,
            "{case}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_and_job_count_round_trips_through_a_directory() {
    every_combination_round_trips(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_and_job_count_round_trips_through_s3() {
    every_combination_round_trips(Destination::s3().await).await;
}

/// Rewrites a stored manifest as `edit` says, bypassing the data path's own writer.
fn edit_manifest(
    destination: &Destination,
    run_id: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let path = destination.file_of(&format!("app/nightly/{run_id}/manifest.json"));
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_whose_manifest_predates_the_format_fields_still_restores() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let scratch = tempfile::tempdir().unwrap();
    // What earlier versions stored: `pg_dump --format=custom` with its default, gzip.
    dump_with(
        &storage,
        &server,
        "old",
        Some(Compression::LEGACY),
        1,
        scratch.path(),
    )
    .await;
    edit_manifest(&destination, "old", |json| {
        let fields = json.as_object_mut().unwrap();
        for field in ["compression", "compressionNote", "jobs", "pgDumpVersion"] {
            fields.remove(field);
        }
    });
    let manifest = storage
        .read_manifest(&support::backup_ref().run(RunId::new("old").unwrap()))
        .await
        .unwrap();
    assert_eq!(
        (
            manifest.compression,
            manifest.jobs,
            manifest.pg_dump_version
        ),
        (Compression::LEGACY, 1, None)
    );

    server.create_database("restored").await;
    restore_run(&storage, &server, "old", "restored", 1)
        .await
        .unwrap_or_else(|error| panic!("{}", error_text::describe(&error)));
    assert_eq!(
        support::fingerprint(&server, "restored").await,
        support::fingerprint(&server, SOURCE_DB).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_an_artifact_its_pg_restore_cannot_read_before_touching_the_target() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let scratch = tempfile::tempdir().unwrap();
    dump_with(&storage, &server, "newer", None, 1, scratch.path()).await;
    dump_with(&storage, &server, "unknown", None, 1, scratch.path()).await;
    edit_manifest(&destination, "newer", |json| {
        json["pgDumpVersion"] = "99.1".into();
    });
    edit_manifest(&destination, "unknown", |json| {
        json["format"] = "pg_dump-tar-zst".into();
    });
    server.create_database("target").await;
    server
        .psql("target", "CREATE TABLE sentinel (id integer)")
        .await;
    let pg_restore = server.tools().tool_version("pg_restore").await.unwrap();

    let cases = [
        (
            "newer",
            format!(
                "was written by pg_dump 99.1, and needs pg_restore 99 or newer, but this is pg_restore {pg_restore}"
            ),
        ),
        (
            "unknown",
            "its format \"pg_dump-tar-zst\" is unknown to this backup-operator".to_string(),
        ),
    ];
    for (run_id, expected) in cases {
        let error = restore_run(&storage, &server, run_id, "target", 1)
            .await
            .expect_err("an unreadable artifact was restored");
        assert!(
            matches!(error, RestoreError::Unreadable { .. }),
            "{run_id}: {error:?}"
        );
        let message = error_text::describe(&error);
        assert!(
            message.contains(&expected) && message.contains("the target database was not touched"),
            "{run_id}: {message}"
        );
        assert!(!message.contains('\n'), "{run_id}: one line: {message}");
    }
    assert_eq!(
        server
            .psql(
                "target",
                "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"
            )
            .await,
        "sentinel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_packed_directory_is_refused_before_the_target_is_touched() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let scratch = tempfile::tempdir().unwrap();
    dump_with(&storage, &server, "packed", None, 2, scratch.path()).await;
    let artifact = destination.file_of("app/nightly/packed/dump.pgdump");
    let mut bytes = std::fs::read(&artifact).unwrap();
    // Inside the first header: the tar itself may still unpack, the digest cannot match.
    bytes[100] ^= 0x01;
    std::fs::write(&artifact, bytes).unwrap();
    server.create_database("target").await;

    let error = restore_run(&storage, &server, "packed", "target", 2)
        .await
        .expect_err("a corrupt artifact was restored");
    assert!(matches!(error, RestoreError::Corrupt { .. }), "{error:?}");
    assert_eq!(
        server
            .psql(
                "target",
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            .await,
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_falls_back_to_gzip_with_a_note_on_a_server_older_than_16() {
    let server = PgServer::start_older_than_16().await;
    support::seed_sample_data(&server).await;
    // The backup image's tools (17) against the old server, as in a cluster.
    let tools = PgTools::new(Some(support::postgres::newest_bin_dir()));
    assert!(tools.tool_version("pg_dump").await.unwrap().major >= 16);
    let server_version = server.tools().tool_version("postgres").await.unwrap();
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let mut request = support::dump_request(&server, "fallback", 3);
    request.tools = tools.clone();
    let report = dump(&storage, &request, &CancellationToken::new())
        .await
        .unwrap_or_else(|error| panic!("{}", error_text::describe(&error)));

    let manifest = &report.manifest;
    assert_eq!(manifest.compression.algorithm, Algorithm::Gzip);
    let note = manifest.compression_note.as_deref().expect("a note");
    assert!(
        note.contains("gzip instead of the default zstd")
            && note.contains(&format!(
                "the server runs PostgreSQL {}",
                server_version.major
            )),
        "{note}"
    );
    let summary = backup_job::report::RunSummary::from(&report);
    let reported = summary.compression.expect("the compression is reported");
    assert_eq!(reported.setting, "gzip");
    assert_eq!(reported.note.as_deref(), Some(note));

    // pg_restore 17 cannot restore into an older server in one transaction (it sets
    // transaction_timeout, which older servers reject), so the artifact is checked by
    // restoring it into a current one.
    let current = PgServer::start().await;
    current.create_database("restored").await;
    let temp = tempfile::tempdir().unwrap();
    let mut restore_request = support::restore_request(&current, "restored", temp.path());
    restore_request.tools = tools;
    restore(&storage, &restore_request, &CancellationToken::new())
        .await
        .unwrap_or_else(|error| panic!("{}", error_text::describe(&error)));
    assert_eq!(
        support::fingerprint(&current, "restored").await,
        support::fingerprint(&server, SOURCE_DB).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_dump_cancelled_midway_leaves_no_backup_and_no_scratch_files() {
    let server = PgServer::start().await;
    support::seed_big_table(&server).await;
    let destination = Destination::s3().await;
    let storage = destination.storage().await;
    let scratch = tempfile::tempdir().unwrap();
    let mut request = support::dump_request(&server, "cancelled", 3);
    request.jobs = 2;
    request.scratch_dir = scratch.path().to_owned();
    let cancel = CancellationToken::new();

    let dumping = tokio::spawn({
        let cancel = cancel.clone();
        async move { dump(&storage, &request, &cancel).await.map(|_| ()) }
    });
    // Cancel once pg_dump is writing table data into its directory.
    let scratch_path = scratch.path().to_owned();
    support::wait_until("pg_dump writing table data", || {
        support::files_under(&scratch_path)
            .iter()
            .any(|file| file.file_name().is_some_and(|name| name != "toc.dat"))
    })
    .await;
    cancel.cancel();
    let result = dumping.await.unwrap();

    assert!(
        matches!(result, Err(backup_data::dump::DumpError::Cancelled)),
        "{result:?}"
    );
    assert!(
        support::files_under(scratch.path()).is_empty(),
        "pg_dump's directory was left behind"
    );
    support::assert_no_complete_run(&destination.storage().await).await;
    assert_eq!(destination.stored_files(), Vec::<String>::new());
    assert_eq!(
        destination.s3_server().pending_upload_parts(),
        Vec::<std::path::PathBuf>::new(),
        "upload not aborted"
    );
}
