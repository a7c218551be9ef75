//! The binary as a Job runs it: settings from the environment, one JSON line
//! on stdout and in the termination log, exit status for success.

use crate::run::{pg_env, run};
use backup_job::report::Outcome;
use backup_test_support::{self as support, Destination, SOURCE_DB, postgres::PgServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_and_restore_commands_report_one_json_line() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    server.create_database("restored").await;
    let destination = Destination::s3().await;

    let mut env = pg_env(&server, SOURCE_DB);
    env.extend(destination.env());
    env.push(("BACKUP_RETENTION", "3".into()));
    let dumped = run(&["dump"], env).await;
    assert!(
        dumped.success,
        "dump failed: {}\n{}",
        dumped.stdout, dumped.stderr
    );
    let Outcome::Succeeded(summary) = dumped.outcome() else {
        panic!("dump reported failure: {}", dumped.stdout);
    };
    let json: serde_json::Value = serde_json::from_str(&dumped.termination_message).unwrap();
    for field in [
        "location",
        "sizeBytes",
        "sha256",
        "runId",
        "time",
        "serverVersion",
        "pruned",
    ] {
        assert!(json.get(field).is_some(), "{field} missing: {json}");
    }
    assert!(
        summary
            .location
            .starts_with("s3://backups/team-a/app/nightly/"),
        "{}",
        summary.location
    );
    assert_eq!(summary.pruned, Some(vec![]));
    assert!(!dumped.stderr.contains(support::postgres::PASSWORD));

    let mut env = pg_env(&server, "restored");
    env.extend(destination.env());
    env.push(("BACKUP_DATABASE", SOURCE_DB.into()));
    let restored = run(&["restore"], env).await;
    assert!(
        restored.success,
        "restore failed: {}\n{}",
        restored.stdout, restored.stderr
    );
    let Outcome::Succeeded(restored_summary) = restored.outcome() else {
        panic!("restore reported failure: {}", restored.stdout);
    };
    assert_eq!(restored_summary.sha256, summary.sha256);
    assert_eq!(
        support::fingerprint(&server, "restored").await,
        support::fingerprint(&server, SOURCE_DB).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dump_exits_non_zero_with_the_reason() {
    let server = PgServer::start().await;
    let destination = Destination::directory().await;
    let mut env = pg_env(&server, "does-not-exist");
    env.extend(destination.env());

    let failed = run(&["dump"], env).await;

    assert!(!failed.success);
    match failed.outcome() {
        Outcome::Failed { error } => {
            assert!(
                error.contains("database \"does-not-exist\" does not exist"),
                "{error}"
            );
        }
        other => panic!("reported {other:?}"),
    }
    assert!(!failed.stdout.contains(support::postgres::PASSWORD));
    assert!(!failed.stderr.contains(support::postgres::PASSWORD));
}

#[tokio::test]
async fn a_missing_destination_is_explained() {
    let failed = run(
        &["dump"],
        vec![
            ("PGDATABASE", "app".into()),
            ("BACKUP_NAME", "nightly".into()),
        ],
    )
    .await;
    assert!(!failed.success);
    match failed.outcome() {
        Outcome::Failed { error } => assert!(error.contains("BACKUP_DESTINATION_PATH"), "{error}"),
        other => panic!("reported {other:?}"),
    }
}
