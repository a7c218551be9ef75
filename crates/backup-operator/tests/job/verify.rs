//! `backup-operator verify` as a drill Job runs it: settings from the environment, a
//! throwaway server of its own, one JSON line on stdout and in the termination log, and an
//! exit status that says whether the drill passed.

use backup_job::report::TERMINATION_MESSAGE_LIMIT;
use backup_job::verify_report::VerifyOutcome;
use backup_test_support::{self as support, Destination, postgres::PgServer};
use std::os::unix::fs::chown;

use crate::run::{operator, operator_at};

/// Runs `verify` on the newest run of the sample data dumped to S3, with `query`, as the
/// server's user: initdb refuses root. Returns the exit status and the outcome.
async fn verify(query: &str) -> (bool, VerifyOutcome) {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::s3().await;
    support::dump(&destination.storage().await, &server, "r1", 3).await;

    let dir = tempfile::tempdir().unwrap();
    let (work, log) = (dir.path().join("work"), dir.path().join("termination-log"));
    std::fs::create_dir(&work).unwrap();
    std::fs::write(&log, "").unwrap();
    let run_as = server.run_as();
    if let Some((uid, gid)) = run_as {
        for path in [dir.path(), &work, &log] {
            chown(path, Some(uid), Some(gid)).unwrap();
        }
    }
    let mut env = destination.env();
    env.extend([
        ("BACKUP_DATABASE", support::SOURCE_DB.to_string()),
        ("BACKUP_NAME", support::BACKUP_NAME.to_string()),
        ("BACKUP_RUN_ID", "r1".to_string()),
        ("VERIFY_WORK_DIR", work.display().to_string()),
        ("VERIFY_QUERY", query.to_string()),
        ("PG_BIN_DIR", server.bin_dir().display().to_string()),
        ("TERMINATION_LOG_PATH", log.display().to_string()),
    ]);
    let mut command = match run_as {
        // The build's directory may be closed to other users (a checkout in a private
        // temporary directory): the server's user runs a copy it can reach.
        Some((uid, gid)) => {
            let copy = dir.path().join("backup-operator");
            std::fs::copy(env!("CARGO_BIN_EXE_backup-operator"), &copy).unwrap();
            chown(&copy, Some(uid), Some(gid)).unwrap();
            let mut command = operator_at(&copy, &["verify"], &env);
            command.uid(uid).gid(gid);
            command
        }
        None => operator(&["verify"], &env),
    };
    let output = command.output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let message = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        stdout.trim_end(),
        message,
        "one line on stdout and in the termination log; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(message.len() <= TERMINATION_MESSAGE_LIMIT);
    (
        output.status.success(),
        VerifyOutcome::parse(&message).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_that_passes_reports_what_it_checked() {
    let (success, outcome) = verify("SELECT count(*) = 2000 FROM samples").await;
    let VerifyOutcome::Passed(summary) = outcome else {
        panic!("the drill failed: {outcome:?}");
    };
    assert!(success);
    assert_eq!(summary.run_id, "r1");
    assert_eq!((summary.tables_checked, summary.rows_checked), (1, 2000));
    assert!(summary.row_counts_compared && summary.query_checked);
    assert!(
        summary.location.ends_with("app/nightly/r1/dump.pgdump"),
        "{}",
        summary.location
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_whose_query_is_false_fails_saying_so() {
    let (success, outcome) = verify("SELECT false").await;
    assert!(!success, "exit status 0 for a failed drill");
    let VerifyOutcome::Failed { error } = outcome else {
        panic!("a false query passed: {outcome:?}");
    };
    assert!(error.contains("returned \"f\" instead of true"), "{error}");
}
