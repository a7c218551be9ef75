//! What the controller tells each kind of Job, as typed values. Each renders itself into
//! the environment ([`EnvEntry`]) that the `dump`, `restore` and `purge` subcommands parse
//! back (`backup-operator`'s `cli.rs`), so the two sides agree by construction; a test
//! there runs the round trip.

use crate::entry::{EnvEntry, SecretKey};
use crate::env::*;

/// A `dump` run: one backup of one database into the series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpJob {
    pub connection: Connection,
    pub series: Series,
    /// Fixed by the controller, so a restarted operator finds the run it started.
    pub run_id: String,
    /// Complete runs to keep, this one included.
    pub retention: u32,
    pub destination: Destination,
    /// `ALGORITHM[:LEVEL]`; `None` lets the Job choose from the versions it finds.
    pub compression: Option<String>,
    /// pg_dump's parallel jobs.
    pub jobs: u32,
}

/// A `restore` run: one run of the series into the connection's database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreJob {
    /// The target, which is not necessarily the database the series was dumped from.
    pub connection: Connection,
    pub series: Series,
    /// The newest complete run when unset.
    pub run_id: Option<String>,
    pub destination: Destination,
    /// pg_restore's parallel jobs; 1 restores in one transaction.
    pub jobs: u32,
}

/// A `verify` run: a restore drill of one run of the series into a throwaway server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyJob {
    pub series: Series,
    /// Chosen by the controller, which records the result against it.
    pub run_id: String,
    pub destination: Destination,
    pub query: Option<String>,
    pub work_dir: String,
}

/// A `purge` run: deletes the whole series. It needs no database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeJob {
    pub series: Series,
    pub destination: Destination,
}

/// An `archive-wal` process: streams the connection's WAL into the series' WAL area until
/// stopped. The connection's role must be allowed to replicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveWalJob {
    pub connection: Connection,
    pub series: Series,
    pub destination: Destination,
    /// Physical replication slot, one per Backup.
    pub slot: String,
    /// pg_receivewal's directory (an emptyDir).
    pub spool_dir: String,
    /// Seconds between uploads of the segment being written.
    pub sync_seconds: u32,
}

/// A `base-backup` run: one `pg_basebackup` into the series, then retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseBackupJob {
    pub connection: Connection,
    pub series: Series,
    pub run_id: String,
    /// Base backups to keep, this one included.
    pub retention: u32,
    pub destination: Destination,
}

/// A `prepare-recovery` run: fills a new Database's empty data directory from the series'
/// base backups and archived WAL. It needs no database connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareRecoveryJob {
    pub series: Series,
    pub destination: Destination,
    /// RFC 3339; the end of the archive when unset.
    pub target_time: Option<String>,
    pub data_dir: String,
}

/// How to reach PostgreSQL; the credentials stay in a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub user: SecretKey,
    pub password: SecretKey,
    pub dbname: SecretKey,
}

/// Where in the destination the runs are filed: `<database>/<backup>/<run-id>/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    pub database: String,
    pub backup: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A directory in the Job's filesystem, e.g. a claim's mount path.
    Directory {
        path: String,
    },
    S3(S3Destination),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Destination {
    pub endpoint: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub force_path_style: bool,
    /// The data path refuses plain HTTP unless this says the user asked for it.
    pub allow_http: bool,
    pub access_key_id: SecretKey,
    pub secret_access_key: SecretKey,
}

impl DumpJob {
    pub fn env(&self) -> Vec<EnvEntry> {
        let mut env = self.connection.env();
        env.extend(self.series.env());
        env.push(EnvEntry::plain(BACKUP_RUN_ID, &self.run_id));
        env.push(EnvEntry::plain(
            BACKUP_RETENTION,
            self.retention.to_string(),
        ));
        env.extend(self.destination.env());
        env.extend(
            self.compression
                .as_ref()
                .map(|compression| EnvEntry::plain(BACKUP_COMPRESSION, compression)),
        );
        env.push(EnvEntry::plain(BACKUP_JOBS, self.jobs.to_string()));
        env
    }
}

impl RestoreJob {
    pub fn env(&self) -> Vec<EnvEntry> {
        let mut env = self.connection.env();
        env.extend(self.series.env());
        env.extend(
            self.run_id
                .as_ref()
                .map(|run_id| EnvEntry::plain(BACKUP_RUN_ID, run_id)),
        );
        env.extend(self.destination.env());
        env.push(EnvEntry::plain(BACKUP_JOBS, self.jobs.to_string()));
        env
    }
}

impl VerifyJob {
    pub fn env(&self) -> Vec<EnvEntry> {
        let mut env = self.series.env();
        env.push(EnvEntry::plain(BACKUP_RUN_ID, &self.run_id));
        env.extend(self.destination.env());
        env.push(EnvEntry::plain(VERIFY_WORK_DIR, &self.work_dir));
        env.extend(
            self.query
                .as_ref()
                .map(|q| EnvEntry::plain(VERIFY_QUERY, q)),
        );
        env
    }
}

impl ArchiveWalJob {
    pub fn env(&self) -> Vec<EnvEntry> {
        let mut env = self.connection.env();
        env.extend(self.series.env());
        env.extend(self.destination.env());
        env.push(EnvEntry::plain(WAL_SLOT_NAME, &self.slot));
        env.push(EnvEntry::plain(WAL_SPOOL_DIR, &self.spool_dir));
        env.push(EnvEntry::plain(
            WAL_SYNC_INTERVAL_SECONDS,
            self.sync_seconds.to_string(),
        ));
        env
    }
}

impl BaseBackupJob {
    pub fn env(&self) -> Vec<EnvEntry> {
        let mut env = self.connection.env();
        env.extend(self.series.env());
        env.push(EnvEntry::plain(BACKUP_RUN_ID, &self.run_id));
        env.push(EnvEntry::plain(
            BACKUP_RETENTION,
            self.retention.to_string(),
        ));
        env.extend(self.destination.env());
        env
    }
}

impl PurgeJob {
    pub fn env(&self) -> Vec<EnvEntry> {
        let mut env = self.series.env();
        env.extend(self.destination.env());
        env
    }
}

impl PrepareRecoveryJob {
    pub fn env(&self) -> Vec<EnvEntry> {
        let mut env = self.series.env();
        env.extend(self.destination.env());
        env.push(EnvEntry::plain(RECOVERY_DATA_DIR, &self.data_dir));
        env.extend(
            self.target_time
                .as_ref()
                .map(|t| EnvEntry::plain(RECOVERY_TARGET_TIME, t)),
        );
        env
    }
}

impl Connection {
    /// The connection alone, for a Job that needs nothing else (dropping a slot).
    pub fn env_entries(&self) -> Vec<EnvEntry> {
        self.env()
    }

    fn env(&self) -> Vec<EnvEntry> {
        vec![
            EnvEntry::plain(PGHOST, &self.host),
            EnvEntry::plain(PGPORT, self.port.to_string()),
            EnvEntry::from_secret(PGUSER, &self.user),
            EnvEntry::from_secret(PGPASSWORD, &self.password),
            EnvEntry::from_secret(PGDATABASE, &self.dbname),
        ]
    }
}

impl Series {
    fn env(&self) -> Vec<EnvEntry> {
        vec![
            EnvEntry::plain(BACKUP_DATABASE, &self.database),
            EnvEntry::plain(BACKUP_NAME, &self.backup),
        ]
    }
}

impl Destination {
    fn env(&self) -> Vec<EnvEntry> {
        match self {
            Self::Directory { path } => vec![EnvEntry::plain(BACKUP_DESTINATION_PATH, path)],
            Self::S3(s3) => {
                let mut env = vec![
                    EnvEntry::plain(S3_ENDPOINT, &s3.endpoint),
                    EnvEntry::plain(S3_BUCKET, &s3.bucket),
                    EnvEntry::plain(S3_FORCE_PATH_STYLE, s3.force_path_style.to_string()),
                    EnvEntry::plain(S3_ALLOW_HTTP, s3.allow_http.to_string()),
                    EnvEntry::from_secret(AWS_ACCESS_KEY_ID, &s3.access_key_id),
                    EnvEntry::from_secret(AWS_SECRET_ACCESS_KEY, &s3.secret_access_key),
                ];
                env.extend(s3.prefix.as_ref().map(|p| EnvEntry::plain(S3_PREFIX, p)));
                env.extend(s3.region.as_ref().map(|r| EnvEntry::plain(S3_REGION, r)));
                env
            }
        }
    }
}
