//! `S3_VERIFY` reaches the data path: the binary reads it back and refuses what it does not know.

use crate::run::{pg_env, run};
use backup_test_support::{self as support, Destination, SOURCE_DB, postgres::PgServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_the_verification_from_s3_verify() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::s3().await;
    let mut env = pg_env(&server, SOURCE_DB);
    env.extend(destination.env());

    env.push(("S3_VERIFY", "read".into()));
    let read = run(&["dump"], env.clone()).await;
    assert!(read.success, "{}\n{}", read.stdout, read.stderr);
    assert_eq!(destination.s3_server().artifact_downloads(), 1);

    env.pop();
    env.push(("S3_VERIFY", "md5".into()));
    let refused = run(&["dump"], env).await;
    assert!(refused.error().contains("md5"), "{}", refused.stderr);
}
