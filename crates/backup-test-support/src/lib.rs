//! Fixtures shared by the scenarios of the backup data path (`backup-data`) and of the
//! binary that runs it in Jobs (`backup-operator`): real servers, sample data, and the two
//! destinations behind one interface so each scenario runs against both.

pub mod postgres;
pub mod s3;
mod tamper;

use backup_data::drill::DrillRequest;
use backup_data::drill::server::ServerSettings;
use backup_data::dump::{DumpReport, DumpRequest};
use backup_data::restore::RestoreRequest;
use backup_data::storage::{BackupRef, RunId, Storage, StorageConfig, Verification};
use postgres::PgServer;
use s3::S3Server;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const SOURCE_DB: &str = "app";
pub const BACKUP_NAME: &str = "nightly";
/// S3 keys start with this, to check that the prefix is honoured.
pub const S3_PREFIX: &str = "team-a";

/// Generous: these bound waits on a busy 2-core machine, they are not delays.
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub enum Destination {
    Directory(TempDir),
    S3(S3Server),
}

impl Destination {
    pub async fn directory() -> Self {
        Self::Directory(
            tempfile::Builder::new()
                .prefix("backups-")
                .tempdir()
                .unwrap(),
        )
    }

    pub async fn s3() -> Self {
        Self::S3(S3Server::start().await)
    }

    pub fn config(&self) -> StorageConfig {
        match self {
            Self::Directory(dir) => StorageConfig::Directory {
                path: dir.path().to_owned(),
            },
            Self::S3(server) => StorageConfig::S3(server.config(S3_PREFIX)),
        }
    }

    pub async fn storage(&self) -> Storage {
        Storage::open(self.config()).await.unwrap()
    }

    /// Every stored file, relative to where the layout starts
    /// (`<database>/<backup>/<run>/<file>`), sorted.
    pub fn stored_files(&self) -> Vec<String> {
        match self {
            Self::Directory(dir) => {
                let mut files: Vec<String> = files_under(dir.path())
                    .into_iter()
                    .map(|path| path.strip_prefix(dir.path()).unwrap().display().to_string())
                    .collect();
                files.sort();
                files
            }
            Self::S3(server) => server
                .keys()
                .into_iter()
                .map(|key| {
                    key.strip_prefix(&format!("{S3_PREFIX}/"))
                        .unwrap_or_else(|| panic!("key {key} is outside the prefix"))
                        .to_owned()
                })
                .collect(),
        }
    }

    /// The file on this machine that holds the bytes stored under `key`.
    pub fn file_of(&self, key: &str) -> PathBuf {
        match self {
            Self::Directory(dir) => dir.path().join(key),
            Self::S3(server) => server.object_path(&format!("{S3_PREFIX}/{key}")),
        }
    }

    /// The server behind an S3 destination.
    pub fn s3_server(&self) -> &S3Server {
        match self {
            Self::S3(server) => server,
            Self::Directory(_) => panic!("not an S3 destination"),
        }
    }

    pub fn s3_server_mut(&mut self) -> &mut S3Server {
        match self {
            Self::S3(server) => server,
            Self::Directory(_) => panic!("not an S3 destination"),
        }
    }

    /// Environment for the `backup-operator` binary.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Directory(dir) => {
                vec![("BACKUP_DESTINATION_PATH", dir.path().display().to_string())]
            }
            Self::S3(server) => server.env(S3_PREFIX),
        }
    }
}

pub fn backup_ref() -> BackupRef {
    BackupRef::new(SOURCE_DB, BACKUP_NAME).unwrap()
}

pub fn dump_request(server: &PgServer, run_id: &str, retention: usize) -> DumpRequest {
    DumpRequest {
        connection: server.connection(SOURCE_DB),
        tools: server.tools(),
        backup: backup_ref(),
        run_id: Some(RunId::new(run_id).unwrap()),
        retention,
        stale_after: Duration::from_secs(3600),
        verification: Verification::default(),
        compression: None,
        jobs: 1,
        scratch_dir: std::env::temp_dir(),
    }
}

pub async fn dump(
    storage: &Storage,
    server: &PgServer,
    run_id: &str,
    retention: usize,
) -> DumpReport {
    backup_data::dump::dump(
        storage,
        &dump_request(server, run_id, retention),
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|error| panic!("dump failed: {}", error_text::describe(&error)))
}

pub fn restore_request(server: &PgServer, target_db: &str, temp_dir: &Path) -> RestoreRequest {
    RestoreRequest {
        connection: server.connection(target_db),
        tools: server.tools(),
        backup: backup_ref(),
        run_id: None,
        temp_dir: temp_dir.to_owned(),
        jobs: 1,
        privileges: true,
    }
}

/// A drill of the newest run of [`backup_ref`] with a throwaway server from the same
/// programs as `server`, in `work` (a fresh directory this returns with it).
pub fn drill_request(server: &PgServer, query: Option<&str>) -> (DrillRequest, TempDir) {
    let work = tempfile::Builder::new().prefix("drill-").tempdir().unwrap();
    if let Some((uid, gid)) = server.run_as() {
        std::os::unix::fs::chown(work.path(), Some(uid), Some(gid)).unwrap();
    }
    let request = DrillRequest {
        backup: backup_ref(),
        run_id: None,
        server: ServerSettings {
            bin_dir: Some(server.bin_dir().to_owned()),
            work_dir: work.path().to_owned(),
            run_as: server.run_as(),
        },
        query: query.map(str::to_owned),
    };
    (request, work)
}

/// Rows covering the types whose text form is easy to get wrong, plus two
/// large objects (one with a chosen OID), in `SOURCE_DB`.
pub async fn seed_sample_data(server: &PgServer) {
    server.create_database(SOURCE_DB).await;
    server
        .psql(
            SOURCE_DB,
            r#"
            CREATE TABLE samples (
                id integer PRIMARY KEY,
                amount numeric(20, 6),
                happened timestamptz,
                doc jsonb,
                payload bytea,
                tags text[],
                grid integer[],
                note text
            );
            INSERT INTO samples VALUES
                (1, 12345678901234.123456, '2024-02-29 23:59:59.123456+05:30',
                 '{"a": [1, 2.5, null], "b": {"c": "ü"}}', '\x00ff10', ARRAY['x', 'y z'],
                 ARRAY[1, 2, 3], 'Grüße, 世界 🐘'),
                (2, -0.000001, '1970-01-01 00:00:00+00', '[]', '\x', ARRAY[]::text[], NULL, ''),
                (3, NULL, 'infinity', 'null', NULL, ARRAY[NULL, 'n'], ARRAY[[1, 2], [3, 4]], NULL);
            INSERT INTO samples
                SELECT g, g * 1.5, '2025-01-01'::timestamptz + g * interval '1 minute',
                       jsonb_build_object('n', g), decode(md5(g::text), 'hex'),
                       ARRAY[g::text], ARRAY[g, g + 1], repeat('é', g % 50)
                FROM generate_series(4, 2000) AS g;
            SELECT lo_from_bytea(0, convert_to('large object ü', 'UTF8'));
            SELECT lo_create(424242);
            SELECT lo_put(424242, 0, decode(repeat('ab', 100000), 'hex'));
            "#,
        )
        .await;
}

/// A digest of everything `seed_sample_data` wrote, to compare databases.
pub async fn fingerprint(server: &PgServer, dbname: &str) -> String {
    server
        .psql(
            dbname,
            "SELECT (SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM samples s) || ' ' || \
                    (SELECT string_agg(oid::text || ':' || md5(lo_get(oid)), ',' ORDER BY oid) \
                     FROM pg_largeobject_metadata)",
        )
        .await
}

/// A table big enough that dumping it takes a while and spans several
/// multipart parts: ~48 MiB of hex text, ~26 MiB once pg_dump compresses it.
pub async fn seed_big_table(server: &PgServer) {
    server.create_database(SOURCE_DB).await;
    server
        .psql(
            SOURCE_DB,
            "CREATE TABLE big AS \
             SELECT g AS id, \
                    (SELECT string_agg(md5(random()::text || g::text || i::text), '') \
                     FROM generate_series(1, 32) AS i) AS filler \
             FROM generate_series(1, 48000) AS g",
        )
        .await;
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false) {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Polls `check` until it holds; panics after `TIMEOUT`.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fails unless `storage` lists no complete run of [`backup_ref`]: nothing counts as a backup.
pub async fn assert_no_complete_run(storage: &Storage) {
    let complete = storage.list_complete(&backup_ref()).await.unwrap();
    assert!(complete.is_empty(), "complete runs listed: {complete:?}");
}
