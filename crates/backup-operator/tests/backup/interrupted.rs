//! Runs that do not finish must leave nothing that looks like a backup.

use crate::support::{self, Destination, SOURCE_DB, postgres::PgServer};
use api::SecretString;
use backup_operator::dump::DumpError;
use backup_operator::error_chain::describe;
use backup_operator::pg::PgConnection;
use backup_operator::report::Outcome;
use bytes::Bytes;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Destination {
    /// True once a good part of the artifact is stored but not complete.
    fn dump_under_way(&self) -> bool {
        match self {
            Self::Directory(_) => {
                std::fs::metadata(self.file_of("app/nightly/interrupted/dump.pgdump.partial"))
                    .is_ok_and(|metadata| metadata.len() >= 1024 * 1024)
            }
            // A part file appears once a whole 5 MiB part has been uploaded.
            Self::S3(server) => !server.pending_upload_parts().is_empty(),
        }
    }
}

/// Starts `backup-operator dump` of the big table and stops it (SIGSTOP)
/// once it is halfway, so the test controls what happens next.
async fn start_and_freeze_a_dump(
    server: &PgServer,
    destination: &Destination,
) -> tokio::process::Child {
    let mut env = support::pg_env(server, SOURCE_DB);
    env.extend(destination.env());
    env.push(("BACKUP_RUN_ID", "interrupted".into()));
    let child = support::operator(&["dump"], &env).spawn().unwrap();
    support::wait_until("the dump to be halfway", || destination.dump_under_way()).await;
    kill(pid(&child), Signal::SIGSTOP).unwrap();
    assert!(
        !destination
            .stored_files()
            .iter()
            .any(|file| file.ends_with("manifest.json")),
        "the dump finished before it could be stopped; make the big table bigger"
    );
    child
}

fn pid(child: &tokio::process::Child) -> Pid {
    Pid::from_raw(child.id().expect("still running") as i32)
}

async fn killed_dump_leaves_nothing_complete(destination: Destination) {
    let server = PgServer::start().await;
    support::seed_big_table(&server).await;
    let mut child = start_and_freeze_a_dump(&server, &destination).await;

    // SIGKILL, as when a node dies: no chance to clean up.
    kill(pid(&child), Signal::SIGKILL).unwrap();
    child.wait().await.unwrap();

    let storage = destination.storage().await;
    support::assert_no_complete_run(&storage).await;
    match &destination {
        Destination::Directory(_) => {
            assert_eq!(
                destination.stored_files(),
                ["app/nightly/interrupted/dump.pgdump.partial"]
            );
            let removed = storage
                .remove_stale(&support::backup_ref(), Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(removed.len(), 1, "{removed:?}");
            assert_eq!(destination.stored_files(), Vec::<String>::new());
        }
        Destination::S3(server) => {
            // The parts exist only inside the unfinished upload.
            assert_eq!(destination.stored_files(), Vec::<String>::new());
            assert!(!server.pending_upload_parts().is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_killed_midway_leaves_no_complete_backup_in_a_directory() {
    killed_dump_leaves_nothing_complete(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_killed_midway_leaves_no_complete_backup_in_s3() {
    killed_dump_leaves_nothing_complete(Destination::s3().await).await;
}

async fn terminated_dump_removes_its_partial_artifact(destination: Destination) {
    let server = PgServer::start().await;
    support::seed_big_table(&server).await;
    let child = start_and_freeze_a_dump(&server, &destination).await;

    // SIGTERM, as when a Pod is deleted: the run cancels and cleans up.
    kill(pid(&child), Signal::SIGTERM).unwrap();
    kill(pid(&child), Signal::SIGCONT).unwrap();
    let output = child.wait_with_output().await.unwrap();

    assert!(!output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    match Outcome::parse(stdout.trim()).unwrap() {
        Outcome::Failed { error } => assert!(error.contains("cancelled"), "{error}"),
        other => panic!("a cancelled dump reported {other:?}"),
    }
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
async fn a_terminated_dump_removes_its_partial_file() {
    terminated_dump_removes_its_partial_artifact(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_dump_aborts_its_multipart_upload() {
    terminated_dump_removes_its_partial_artifact(Destination::s3().await).await;
}

async fn source_error_halfway_stores_nothing(destination: Destination) {
    let storage = destination.storage().await;
    let run = support::backup_ref().run(backup_operator::storage::RunId::new("broken").unwrap());
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

    let error = backup_operator::dump::dump(&storage, &request, &CancellationToken::new())
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
