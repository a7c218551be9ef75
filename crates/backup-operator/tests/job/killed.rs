//! A `dump` process killed or terminated midway must leave nothing that looks like a backup.

use crate::run::{operator, pg_env};
use backup_job::report::Outcome;
use backup_test_support::{self as support, Destination, SOURCE_DB, postgres::PgServer};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

/// True once a good part of the artifact is stored but not complete.
fn dump_under_way(destination: &Destination) -> bool {
    match destination {
        Destination::Directory(_) => {
            std::fs::metadata(destination.file_of("app/nightly/interrupted/dump.pgdump.partial"))
                .is_ok_and(|metadata| metadata.len() >= 1024 * 1024)
        }
        // A part file appears once a whole 5 MiB part has been uploaded.
        Destination::S3(server) => !server.pending_upload_parts().is_empty(),
    }
}

/// Starts `backup-operator dump` of the big table and stops it (SIGSTOP)
/// once it is halfway, so the test controls what happens next.
async fn start_and_freeze_a_dump(
    server: &PgServer,
    destination: &Destination,
) -> tokio::process::Child {
    let mut env = pg_env(server, SOURCE_DB);
    env.extend(destination.env());
    env.push(("BACKUP_RUN_ID", "interrupted".into()));
    let child = operator(&["dump"], &env).spawn().unwrap();
    support::wait_until("the dump to be halfway", || dump_under_way(destination)).await;
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
