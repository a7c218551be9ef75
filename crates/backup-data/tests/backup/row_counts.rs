//! Row counts are taken in the snapshot `pg_dump` dumps: rows committed after the snapshot
//! was exported are in neither the counts nor the dump.

use crate::support::{self, postgres::PgServer};
use backup_data::compression::Compression;
use backup_data::pg::DumpOutput;
use backup_data::row_counts::SnapshotSession;
use tokio::io::AsyncReadExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_dump_share_one_snapshot_while_writes_go_on() {
    let server = PgServer::start().await;
    support::seed_sample_data(&server).await;
    let (tools, connection) = (server.tools(), server.connection(support::SOURCE_DB));

    let session = SnapshotSession::open(&tools, &connection).await.unwrap();
    // Committed after the export: the snapshot must not see these.
    server
        .psql(
            support::SOURCE_DB,
            "INSERT INTO samples (id) SELECT g FROM generate_series(5001, 5005) g",
        )
        .await;
    let pg_dump_version = tools.tool_version("pg_dump").await.unwrap();
    let mut pg_dump = tools
        .spawn_pg_dump(
            &connection,
            &Compression::LEGACY,
            &pg_dump_version,
            DumpOutput::Stdout,
            Some(session.id()),
        )
        .unwrap();
    let mut archive = Vec::new();
    pg_dump
        .take_stdout()
        .unwrap()
        .read_to_end(&mut archive)
        .await
        .unwrap();
    pg_dump.wait().await.unwrap();
    let counts = session.close().await;
    assert_eq!(counts, [("public.samples".to_string(), 2000)].into());

    server.create_database("copy").await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &archive).unwrap();
    tools
        .spawn_pg_restore(&server.connection("copy"), file.path(), 1, true)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(
        server.psql("copy", "SELECT count(*) FROM samples").await,
        "2000"
    );
    assert_eq!(
        server
            .psql(support::SOURCE_DB, "SELECT count(*) FROM samples")
            .await,
        "2005"
    );
}
