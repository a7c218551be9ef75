use crate::support::{self, Destination, SOURCE_DB, postgres::PgServer};
use backup_data::storage::{Storage, StorageConfig};
use error_text::describe;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_reported_with_its_address() {
    let server = PgServer::start().await;
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let mut request = support::dump_request(&server, "run-1", 3);
    request.connection.port = Some(closed_port());

    let error = backup_data::dump::dump(&storage, &request, &CancellationToken::new())
        .await
        .expect_err("dumped from a closed port");

    let message = describe(&error);
    assert!(
        message.contains("cannot query the database server"),
        "{message}"
    );
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(message.contains("Connection refused"), "{message}");
    assert_eq!(destination.stored_files(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported_without_revealing_it() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let mut request = support::dump_request(&server, "run-1", 3);
    request.connection.password = Some(secret::SecretString::new("not-the-password"));

    let error = backup_data::dump::dump(&storage, &request, &CancellationToken::new())
        .await
        .expect_err("dumped with a wrong password");

    let message = describe(&error);
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(
        !message.contains("not-the-password") && !format!("{error:?}").contains("not-the-password")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_s3_endpoint_is_reported_with_the_cause() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let s3 = crate::support::s3::S3Server::start().await;
    let mut config = s3.config("team-a");
    config.endpoint = Some(format!("http://127.0.0.1:{}", closed_port()));
    config.retry_timeout = Duration::from_secs(1);
    let storage = Storage::open(StorageConfig::S3(config)).await.unwrap();

    let error = backup_data::dump::dump(
        &storage,
        &support::dump_request(&server, "run-1", 3),
        &CancellationToken::new(),
    )
    .await
    .expect_err("dumped into a closed port");

    let message = describe(&error);
    assert!(message.contains("S3 request"), "{message}");
    assert!(
        message.contains("s3://backups/team-a/app/nightly/run-1"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("connect"), "{message}");
    assert!(!message.contains("test-secret-key"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_s3_credentials_are_reported() {
    let s3 = crate::support::s3::S3Server::start().await;
    let mut config = s3.config("team-a");
    config.secret_access_key = secret::SecretString::new("wrong-secret");
    let storage = Storage::open(StorageConfig::S3(config)).await.unwrap();

    let error = storage
        .list_complete(&support::backup_ref())
        .await
        .expect_err("listed with a wrong secret key");

    let message = describe(&error);
    assert!(
        message.contains("check the endpoint, bucket and credentials"),
        "{message}"
    );
    assert!(
        message.contains("SignatureDoesNotMatch") || message.contains("403"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_backup_directory_says_to_check_the_volume() {
    let error = Storage::open(StorageConfig::Directory {
        path: "/nonexistent/backups".into(),
    })
    .await
    .expect_err("opened a missing directory");
    let message = describe(&error);
    assert!(message.contains("/nonexistent/backups"), "{message}");
    assert!(message.contains("volume is mounted"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_when_no_backup_exists_says_so() {
    let server = PgServer::start().await;
    let destination = Destination::s3().await;
    let storage = destination.storage().await;
    server.create_database(SOURCE_DB).await;
    let temp = tempfile::tempdir().unwrap();

    let error = backup_data::restore::restore(
        &storage,
        &support::restore_request(&server, SOURCE_DB, temp.path()),
        &CancellationToken::new(),
    )
    .await
    .expect_err("restored nothing");
    assert_eq!(
        error.to_string(),
        "no complete backup of app/nightly exists to restore"
    );
}
