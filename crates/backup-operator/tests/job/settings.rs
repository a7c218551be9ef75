//! The Backup's compression and jobs as the Job receives them (BACKUP_COMPRESSION,
//! BACKUP_JOBS): a parallel dump into a directory restored with the same jobs, and a
//! setting the tools cannot honour refused with the reason.

use crate::run::{pg_env, run};
use backup_job::report::Outcome;
use backup_test_support::{self as support, Destination, SOURCE_DB, postgres::PgServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_lz4_dump_restores_with_the_same_jobs() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    server.create_database("restored").await;
    let destination = Destination::directory().await;

    let mut env = pg_env(&server, SOURCE_DB);
    env.extend(destination.env());
    env.push(("BACKUP_COMPRESSION", "lz4:4".into()));
    env.push(("BACKUP_JOBS", "2".into()));
    let dumped = run(&["dump"], env).await;
    let Outcome::Succeeded(summary) = dumped.outcome() else {
        panic!("dump failed: {}\n{}", dumped.stdout, dumped.stderr);
    };
    let reported = summary.compression.expect("the compression is reported");
    assert_eq!((reported.setting.as_str(), reported.note), ("lz4:4", None));
    let manifest = std::fs::read_to_string(
        destination.file_of(&format!("app/nightly/{}/manifest.json", summary.run_id)),
    )
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["format"], "pg_dump-directory-tar");
    assert_eq!(manifest["jobs"], 2);

    let mut env = pg_env(&server, "restored");
    env.extend(destination.env());
    env.push(("BACKUP_DATABASE", SOURCE_DB.into()));
    env.push(("BACKUP_JOBS", "2".into()));
    let restored = run(&["restore"], env).await;
    assert!(
        matches!(restored.outcome(), Outcome::Succeeded(_)),
        "restore failed: {}\n{}",
        restored.stdout,
        restored.stderr
    );
    assert_eq!(
        support::fingerprint(&server, "restored").await,
        support::fingerprint(&server, SOURCE_DB).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_out_of_range_are_refused_with_the_accepted_range() {
    let server = PgServer::start().await;
    let destination = Destination::directory().await;
    for (name, value, reason) in [
        ("BACKUP_JOBS", "17", "17 is not in 1..=16"),
        ("BACKUP_COMPRESSION", "zstd:30", "use 1 to 22"),
    ] {
        let mut env = pg_env(&server, SOURCE_DB);
        env.extend(destination.env());
        env.push((name, value.into()));
        let error = run(&["dump"], env).await.error();
        assert!(error.contains(reason), "{name}={value}: {error}");
    }
}
