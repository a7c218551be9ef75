//! `archive-wal`, `base-backup` and `prepare-recovery` as their Pods and Jobs run them:
//! settings from the environment, one JSON line on stdout and in the termination log.

use crate::run::{Running, pg_env, run};
use backup_test_support::postgres::PgServer;
use backup_test_support::{Destination, TIMEOUT};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn result(stdout: &str, termination_message: &str) -> Value {
    let line = stdout.lines().next().unwrap_or_default();
    assert_eq!(line, termination_message);
    serde_json::from_str(line).unwrap()
}

async fn status(addr: &str) -> Option<Value> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let body = response.split("\r\n\r\n").nth(1)?;
    serde_json::from_str(body).ok()
}

async fn wait_for<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + TIMEOUT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_wal_base_backup_and_prepare_recovery_from_the_environment() {
    let server = PgServer::start_with_small_wal().await;
    let destination = Destination::directory().await;
    let spool = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut env = pg_env(&server, "postgres");
    env.extend(destination.env());
    env.push(("BACKUP_DATABASE", "app".into()));

    let mut archiver_env = env.clone();
    archiver_env.extend([
        ("WAL_SLOT_NAME", "pgop_cli".to_owned()),
        ("WAL_SPOOL_DIR", spool.path().display().to_string()),
        ("WAL_SYNC_INTERVAL_SECONDS", "1".to_owned()),
        ("WAL_STATUS_ADDRESS", address.clone()),
    ]);
    let archiver = Running::start(&["archive-wal"], archiver_env);
    wait_for("the slot is streaming", async || {
        server
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgop_cli' AND active",
            )
            .await
            == "1"
    })
    .await;

    let mut backup_env = env.clone();
    backup_env.push(("BACKUP_RUN_ID", "base-1".into()));
    let finished = run(&["base-backup"], backup_env).await;
    assert!(finished.success, "{}", finished.stderr);
    let outcome = result(&finished.stdout, &finished.termination_message);
    assert_eq!(outcome["result"], "Succeeded");
    assert_eq!(outcome["baseBackup"]["runId"], "base-1");

    server
        .psql(
            "postgres",
            "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id",
        )
        .await;
    let segment = server
        .psql("postgres", "SELECT pg_walfile_name(pg_current_wal_lsn())")
        .await;
    server.psql("postgres", "SELECT pg_switch_wal()").await;
    wait_for("the status shows the segment archived", async || {
        status(&address).await.is_some_and(|s| {
            s["lastArchivedSegment"]
                .as_str()
                .is_some_and(|last| last >= segment.as_str())
        })
    })
    .await;
    archiver.terminate();
    let stopped = archiver.finish().await;
    assert!(stopped.success, "{}", stopped.stderr);
    let outcome = result(&stopped.stdout, &stopped.termination_message);
    assert_eq!(outcome["result"], "Stopped");
    assert_eq!(outcome["gaps"], 0);

    let target = tempfile::tempdir().unwrap();
    let data_dir = target.path().join("data");
    let mut prepare_env = env.clone();
    prepare_env.push(("RECOVERY_DATA_DIR", data_dir.display().to_string()));
    let mut too_early = prepare_env.clone();
    too_early.push(("RECOVERY_TARGET_TIME", "2000-01-01T00:00:00Z".into()));
    let refused = run(&["prepare-recovery"], too_early).await;
    assert!(!refused.success);
    let outcome = result(&refused.stdout, &refused.termination_message);
    let error = outcome["error"].as_str().unwrap();
    assert!(
        error.contains("outside what the archive can restore"),
        "{error}"
    );

    let prepared = run(&["prepare-recovery"], prepare_env).await;
    assert!(prepared.success, "{}", prepared.stderr);
    let outcome = result(&prepared.stdout, &prepared.termination_message);
    assert_eq!(outcome["baseBackup"], "base-1");
    assert!(data_dir.join("recovery.signal").exists());
    assert!(data_dir.join("pgop_wal").join(&segment).exists());
}
