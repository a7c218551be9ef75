//! Restore drills against real PostgreSQL: a dump is restored into a throwaway server of its
//! own, and the drill fails, saying why, on a damaged artifact, on row counts that do not
//! match those recorded at dump time, and on a query that does not return true.

use crate::support::{self, Destination, postgres::PgServer};
use backup_data::drill::{DrillError, DrillReport, drill};
use backup_data::restore::RestoreError;
use error_text::describe;
use tokio_util::sync::CancellationToken;

/// A dump of the sample data (2,000 rows in `samples`) as run `r1`.
async fn dumped(destination: &Destination) -> PgServer {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    support::dump(&destination.storage().await, &server, "r1", 3).await;
    server
}

async fn run_drill(
    destination: &Destination,
    server: &PgServer,
    query: Option<&str>,
) -> Result<DrillReport, DrillError> {
    let (request, work) = support::drill_request(server, query);
    let result = drill(
        &destination.storage().await,
        &request,
        &CancellationToken::new(),
    )
    .await;
    // The server was stopped: nothing holds the scratch directory's socket any more.
    assert!(
        !work.path().join("socket/.s.PGSQL.5432").exists(),
        "the throwaway server is still running"
    );
    result
}

async fn a_good_artifact_passes(destination: Destination) {
    let server = dumped(&destination).await;
    let manifest = destination
        .storage()
        .await
        .list_complete(&support::backup_ref())
        .await
        .unwrap();
    assert_eq!(
        manifest[0].row_counts,
        Some([("public.samples".to_string(), 2000)].into()),
        "the dump records the rows of each table"
    );

    let report = run_drill(
        &destination,
        &server,
        Some("SELECT count(*) = 2000 FROM samples"),
    )
    .await
    .unwrap_or_else(|error| panic!("drill failed: {}", describe(&error)));

    assert_eq!(report.manifest.run_id, "r1");
    assert_eq!(report.tables_checked, 1);
    assert_eq!(report.rows_checked, 2000);
    assert!(report.row_counts_compared && report.query_checked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_artifact_passes_in_a_directory() {
    a_good_artifact_passes(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_artifact_passes_in_s3() {
    a_good_artifact_passes(Destination::s3().await).await;
}

/// A parallel dump is a packed directory: the drill lists its tables from the unpacked
/// directory and compares the rows as for a single file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_dump_passes_its_drill() {
    let destination = Destination::directory().await;
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let request = backup_data::dump::DumpRequest {
        jobs: 2,
        ..support::dump_request(&server, "r1", 3)
    };
    backup_data::dump::dump(
        &destination.storage().await,
        &request,
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|error| panic!("dump failed: {}", describe(&error)));

    let report = run_drill(&destination, &server, None)
        .await
        .unwrap_or_else(|error| panic!("drill failed: {}", describe(&error)));
    assert_eq!(
        report.manifest.format,
        backup_data::storage::manifest::FORMAT_PG_DUMP_DIRECTORY_TAR
    );
    assert_eq!((report.tables_checked, report.rows_checked), (1, 2000));
    assert!(report.row_counts_compared);
}

/// pg_dump does not dump roles: the throwaway server has none of those the dump GRANTs to,
/// and the drill, which checks data, restores without privileges rather than failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_to_roles_the_drill_server_lacks_do_not_fail_it() {
    let destination = Destination::directory().await;
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    server
        .psql(
            support::SOURCE_DB,
            "CREATE ROLE reporting_ro; GRANT SELECT ON samples TO reporting_ro",
        )
        .await;
    support::dump(&destination.storage().await, &server, "r1", 3).await;

    let report = run_drill(&destination, &server, None)
        .await
        .unwrap_or_else(|error| panic!("drill failed: {}", describe(&error)));
    assert_eq!((report.tables_checked, report.rows_checked), (1, 2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_artifact_fails_before_anything_is_restored() {
    let destination = Destination::directory().await;
    let server = dumped(&destination).await;
    let artifact = destination.file_of("app/nightly/r1/dump.pgdump");
    let bytes = std::fs::read(&artifact).unwrap();
    std::fs::write(&artifact, &bytes[..bytes.len() / 2]).unwrap();

    let error = run_drill(&destination, &server, None)
        .await
        .expect_err("a truncated artifact passed the drill");

    assert!(
        matches!(error, DrillError::Restore(RestoreError::Corrupt { .. })),
        "{error:?}"
    );
    let message = describe(&error);
    assert!(message.contains("is corrupt"), "{message}");
    assert!(
        message.contains(&format!("{} bytes", bytes.len() / 2)),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_counts_that_differ_from_the_dump_fail_the_drill() {
    let destination = Destination::s3().await;
    let server = dumped(&destination).await;
    let manifest_file = destination.file_of("app/nightly/r1/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_file).unwrap()).unwrap();
    manifest["rowCounts"]["public.samples"] = serde_json::json!(2001);
    std::fs::write(&manifest_file, manifest.to_string()).unwrap();

    let error = run_drill(&destination, &server, None)
        .await
        .expect_err("a restore with fewer rows than dumped passed the drill");

    assert!(matches!(error, DrillError::RowCounts { .. }), "{error:?}");
    assert!(
        describe(&error).contains("public.samples: 2001 rows dumped, 2000 restored"),
        "{}",
        describe(&error)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_is_not_true_fails_the_drill() {
    let destination = Destination::directory().await;
    let server = dumped(&destination).await;

    let error = run_drill(
        &destination,
        &server,
        Some("SELECT count(*) > 2000 FROM samples"),
    )
    .await
    .expect_err("a false query passed the drill");
    assert!(
        matches!(error, DrillError::QueryFalse { ref output } if output == "f"),
        "{error:?}"
    );

    let error = run_drill(&destination, &server, Some("SELECT * FROM no_such_table"))
        .await
        .expect_err("a failing query passed the drill");
    assert!(matches!(error, DrillError::Query(_)), "{error:?}");
    assert!(
        describe(&error).contains("no_such_table"),
        "{}",
        describe(&error)
    );
}
