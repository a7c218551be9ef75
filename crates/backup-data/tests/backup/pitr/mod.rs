//! Continuous WAL archiving and point-in-time recovery against real PostgreSQL 17 servers
//! with 1 MiB WAL segments: the archiver (pg_receivewal), base backups, recovery prepared
//! into a data directory and a real server started on it.

mod archiving;
mod recovery;
mod retention;
mod storage;
mod timelines;

use crate::support::postgres::PgServer;
use crate::support::{self, TIMEOUT};
use backup_data::base_backup::manifest::BaseManifest;
use backup_data::base_backup::{self, BaseBackupRequest, BaseCompression};
use backup_data::recovery_prepare::{self, PrepareError, PrepareRequest, Prepared};
use backup_data::storage::{RunId, Storage};
use backup_data::wal::{SegmentSize, WalFile, WalListing};
use backup_data::wal_archiver::server::SharedStatus;
use backup_data::wal_archiver::status::ArchiverStatus;
use backup_data::wal_archiver::{self, ArchiverConfig};
use backup_data::wal_store::WalStore;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SLOT: &str = "pgop_archiver";
pub const SMALL: u64 = 1024 * 1024;

pub fn size() -> SegmentSize {
    SegmentSize::new(SMALL).unwrap()
}

/// An archiver running in the test's runtime.
pub struct Archiver {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    pub status: SharedStatus,
}

impl Archiver {
    pub fn start(server: &PgServer, storage: Arc<Storage>, spool: PathBuf) -> Self {
        // The archiver's log shows in the output of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("info")
            .try_init();
        let config = ArchiverConfig {
            tools: server.tools(),
            connection: server.connection("postgres"),
            slot: SLOT.into(),
            spool,
            sync_interval: Duration::from_secs(1),
            backup: support::backup_ref(),
        };
        let status: SharedStatus = Arc::new(Mutex::new(ArchiverStatus::default()));
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (status, cancel) = (status.clone(), cancel.clone());
            async move {
                wal_archiver::run(config, &storage, status, cancel)
                    .await
                    .unwrap();
            }
        });
        Self {
            cancel,
            task,
            status,
        }
    }

    pub fn status(&self) -> ArchiverStatus {
        self.status.lock().unwrap().clone()
    }

    /// Stops as a Pod's SIGTERM would: ships what is complete and the partial.
    pub async fn stop(self) -> ArchiverStatus {
        self.cancel.cancel();
        self.task.await.unwrap();
        self.status.lock().unwrap().clone()
    }

    /// Stops as a crash would: the task is dropped mid-work and pg_receivewal killed.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Polls `check` until it holds; a deadline bounds the wait, it is not a delay.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn wait_streaming(server: &PgServer) {
    wait_for("the archiver's slot is active", || async {
        server
            .psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{SLOT}' AND active"),
            )
            .await
            == "1"
    })
    .await;
}

pub async fn listing(storage: &Storage) -> WalListing {
    WalStore::new(storage, support::backup_ref(), size())
        .list()
        .await
        .unwrap()
}

/// Completes the segment being written and waits until the archive holds it. A record is
/// written first: right after a switch the current segment is empty, and switching an
/// empty segment does nothing.
pub async fn switch_and_wait_archived(server: &PgServer, storage: &Storage) -> String {
    server
        .psql(
            "postgres",
            "SELECT pg_logical_emit_message(false, 'pgop', 'switch')",
        )
        .await;
    let segment = server
        .psql("postgres", "SELECT pg_walfile_name(pg_current_wal_lsn())")
        .await;
    server.psql("postgres", "SELECT pg_switch_wal()").await;
    wait_archived(storage, &segment).await;
    segment
}

pub async fn wait_archived(storage: &Storage, name: &str) {
    let file = WalFile::parse(name, size()).unwrap();
    wait_for(&format!("{name} is archived"), || async {
        listing(storage).await.archive.contains(file)
    })
    .await;
}

pub async fn base_backup(server: &PgServer, storage: &Storage, run_id: &str) -> BaseManifest {
    base_backup::take(BaseBackupRequest {
        tools: &server.tools(),
        connection: &server.connection("postgres"),
        storage,
        backup: support::backup_ref(),
        run_id: Some(RunId::new(run_id).unwrap()),
        compression: BaseCompression::Lz4,
        verification: Default::default(),
    })
    .await
    .unwrap()
}

/// The server's clock now, in UTC.
pub async fn server_now(server: &PgServer) -> DateTime<Utc> {
    let text = server
        .psql(
            "postgres",
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        )
        .await;
    DateTime::parse_from_rfc3339(&text).unwrap().into()
}

/// A data directory prepared for recovery: `dir/data`.
pub async fn prepare(
    storage: &Storage,
    target_time: Option<DateTime<Utc>>,
) -> Result<(TempDir, Prepared), PrepareError> {
    let dir = tempfile::Builder::new()
        .prefix("pg-recovered-")
        .tempdir()
        .unwrap();
    let prepared = recovery_prepare::prepare(PrepareRequest {
        storage,
        backup: support::backup_ref(),
        data_dir: dir.path().join("data"),
        target_time,
        base_backup: None,
    })
    .await?;
    Ok((dir, prepared))
}

/// Starts PostgreSQL on a prepared directory and waits until recovery ended and it promoted.
pub async fn start_recovered(dir: TempDir, bin_dir: PathBuf) -> PgServer {
    let server = PgServer::start_on(dir, bin_dir);
    wait_for("the recovered server is promoted", || async {
        server.psql("postgres", "SELECT pg_is_in_recovery()").await == "f"
    })
    .await;
    server
}
