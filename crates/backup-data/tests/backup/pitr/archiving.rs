use super::*;
use crate::support::Destination;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Segments reach the archive with their checksums and the status says so; a byte flipped
/// in a stored segment stops a recovery with an error naming that segment.
async fn archived_segments_are_verified_on_recovery(destination: Destination) {
    let server = PgServer::start_with_small_wal().await;
    let storage = Arc::new(destination.storage().await);
    let spool = tempfile::tempdir().unwrap();
    let archiver = Archiver::start(&server, storage.clone(), spool.path().into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop_server = CancellationToken::new();
    tokio::spawn(wal_archiver::server::serve(
        listener,
        archiver.status.clone(),
        stop_server.clone(),
    ));
    wait_streaming(&server).await;
    base_backup(&server, &storage, "base-1").await;
    server
        .psql(
            "postgres",
            "CREATE TABLE t AS SELECT generate_series(1, 20000) AS id",
        )
        .await;
    let last = switch_and_wait_archived(&server, &storage).await;

    wait_for("the status names the last segment", || async {
        archiver.status().last_archived_segment.as_deref() >= Some(last.as_str())
    })
    .await;
    let status = get(addr, "/status").await;
    assert!(status.contains("\"lastArchivedSegment\""), "{status}");
    assert!(status.contains("\"streaming\":true"), "{status}");
    let metrics = get(addr, "/metrics").await;
    assert!(
        metrics.contains("backup_operator_wal_archived_bytes_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("backup_operator_wal_gaps_total 0"),
        "{metrics}"
    );
    stop_server.cancel();
    archiver.stop().await;

    // Every archived file reads back as stored.
    let listing = listing(&storage).await;
    let wal = WalStore::new(&storage, support::backup_ref(), size());
    for stored in listing.entries.values() {
        wal.fetch(stored).await.unwrap();
    }
    assert!(listing.archive.segments().count() >= 2);
    let (_dir, prepared) = prepare(&storage, None).await.unwrap();
    assert!(prepared.wal_files.contains(&last), "{prepared:?}");

    let stored = &listing.entries[&WalFile::parse(&last, size()).unwrap()];
    let key = format!("app/nightly/wal/{}", stored.name(size()));
    let path = destination.file_of(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let error = prepare(&storage, None).await.unwrap_err().to_string();
    assert!(
        error.contains(&last) && error.contains("corrupt"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_segments_are_verified_on_recovery_in_a_directory() {
    archived_segments_are_verified_on_recovery(Destination::directory().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_segments_are_verified_on_recovery_in_s3() {
    archived_segments_are_verified_on_recovery(Destination::s3().await).await;
}

/// Writes go on while the archiver is killed twice, once keeping its spool and once
/// losing it (a Pod rescheduled): the archive has no gap, and a recovery to its end has
/// every row.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_archiver_resumes_without_a_gap() {
    let server = PgServer::start_with_small_wal().await;
    let destination = Destination::directory().await;
    let storage = Arc::new(destination.storage().await);
    server.psql("postgres", "CREATE TABLE t (id int)").await;
    let spool = tempfile::tempdir().unwrap();
    let archiver = Archiver::start(&server, storage.clone(), spool.path().into());
    wait_streaming(&server).await;
    base_backup(&server, &storage, "base-1").await;

    let writing = CancellationToken::new();
    let writer = tokio::spawn({
        let (connection, tools, writing) = (
            server.connection("postgres"),
            server.tools(),
            writing.clone(),
        );
        async move {
            let mut batches = 0u32;
            while !writing.is_cancelled() {
                tools
                    .query(
                        &connection,
                        "INSERT INTO t SELECT generate_series(1, 2000); SELECT pg_switch_wal() WHERE random() < 0.3",
                    )
                    .await
                    .unwrap();
                batches += 1;
            }
            batches
        }
    });

    wait_for("a few segments are archived", || async {
        archiver.status().archived_segments >= 3
    })
    .await;
    archiver.kill().await;

    // Same spool: what pg_receivewal left there is shipped and streaming continues.
    let archiver = Archiver::start(&server, storage.clone(), spool.path().into());
    wait_for("more segments are archived after the restart", || async {
        archiver.status().archived_segments >= 3
    })
    .await;
    archiver.kill().await;

    // A new, empty spool: streaming resumes after the newest archived segment.
    let fresh_spool = tempfile::tempdir().unwrap();
    let archiver = Archiver::start(&server, storage.clone(), fresh_spool.path().into());
    wait_for("segments are archived from the new spool", || async {
        archiver.status().archived_segments >= 3
    })
    .await;
    writing.cancel();
    let batches = writer.await.unwrap();
    assert!(batches > 0);
    let rows = server.psql("postgres", "SELECT count(*) FROM t").await;
    switch_and_wait_archived(&server, &storage).await;
    let status = archiver.stop().await;
    assert!(status.gaps.is_empty(), "{:?}", status.gaps);

    let (dir, prepared) = prepare(&storage, None).await.unwrap();
    assert_eq!(prepared.base_backup, "base-1");
    let recovered = start_recovered(dir, server.bin_dir().into()).await;
    assert_eq!(
        recovered.psql("postgres", "SELECT count(*) FROM t").await,
        rows
    );
}

/// WAL removed from the server before it was archived (the slot dropped while the
/// archiver was down) is reported as a gap in the status and the metrics, archiving goes
/// on after it, and a recovery through it stops naming the missing segment.
#[tokio::test(flavor = "multi_thread")]
async fn wal_removed_before_archiving_is_reported_as_a_gap() {
    let server = PgServer::start_with_small_wal().await;
    let destination = Destination::directory().await;
    let storage = Arc::new(destination.storage().await);
    server.psql("postgres", "CREATE TABLE t (id int)").await;
    let spool = tempfile::tempdir().unwrap();
    let archiver = Archiver::start(&server, storage.clone(), spool.path().into());
    wait_streaming(&server).await;
    base_backup(&server, &storage, "base-1").await;
    let last_before = switch_and_wait_archived(&server, &storage).await;
    archiver.kill().await;

    wait_for("the slot is released", || async {
        server
            .psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{SLOT}' AND active"),
            )
            .await
            == "0"
    })
    .await;
    server
        .psql(
            "postgres",
            &format!("SELECT pg_drop_replication_slot('{SLOT}')"),
        )
        .await;
    let next = WalFile::parse(&last_before, size())
        .map(|f| match f {
            WalFile::Segment(s) => s.next(size()).unwrap().file_name(size()),
            other => panic!("{other:?}"),
        })
        .unwrap();
    wait_for(&format!("the server removed {next}"), || async {
        server
            .psql(
                "postgres",
                "INSERT INTO t SELECT generate_series(1, 1000); SELECT pg_switch_wal(); CHECKPOINT",
            )
            .await;
        server
            .psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_ls_waldir() WHERE name = '{next}'"),
            )
            .await
            == "0"
    })
    .await;

    let fresh_spool = tempfile::tempdir().unwrap();
    let archiver = Archiver::start(&server, storage.clone(), fresh_spool.path().into());
    wait_for("the gap is reported", || async {
        !archiver.status().gaps.is_empty()
    })
    .await;
    // Streaming starts again from the server's current position, after the gap.
    wait_streaming(&server).await;
    server
        .psql("postgres", "INSERT INTO t SELECT generate_series(1, 1000)")
        .await;
    switch_and_wait_archived(&server, &storage).await;
    let status = archiver.stop().await;
    assert_eq!(status.gaps.len(), 1, "{:?}", status.gaps);
    let gap = &status.gaps[0];
    assert_eq!(gap.after.as_deref(), Some(last_before.as_str()));
    assert!(
        gap.message.contains("already been removed"),
        "{}",
        gap.message
    );
    assert!(gap.next.is_some(), "{gap:?}");
    assert!(
        status
            .metrics()
            .contains("backup_operator_wal_gaps_total 1")
    );

    let error = prepare(&storage, None).await.unwrap_err().to_string();
    assert!(
        error.contains(&next) && error.contains("missing"),
        "{error}"
    );
}
