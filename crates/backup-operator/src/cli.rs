//! Command line of the `backup-operator` binary. Every flag has an
//! environment fallback named in [`backup_job::env`], which is how the
//! controller's Jobs pass settings and Secrets.

use anyhow::{Context as _, bail};
use backup_data::compression::Compression;
use backup_data::dump_plan::MAX_JOBS;
use backup_data::pg::{PgConnection, PgTools};
use backup_data::storage::{BackupRef, RunId, S3Config, StorageConfig, Verification};
use backup_job::env::*;
use backup_job::report::DEFAULT_TERMINATION_LOG;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use secret::SecretString;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "backup-operator",
    version,
    about = "Backs up and restores PostgreSQL databases"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump a database into the destination, verify it and apply retention.
    Dump(DumpArgs),
    /// Restore a backup (the newest by default) into a database.
    Restore(RestoreArgs),
    /// Delete every artifact of one Backup (its folder under the destination).
    Purge(PurgeArgs),
    /// Restore drill: restore a backup into a throwaway server in a scratch directory and
    /// check its tables, row counts and an optional query. Needs the PostgreSQL server programs.
    Verify(VerifyArgs),
    /// Stream WAL from the server (pg_receivewal with a physical slot) into the Backup's
    /// WAL area until stopped; serves /status and /metrics.
    ArchiveWal(physical::ArchiveWalArgs),
    /// Drop a deleted physical Backup's replication slot (it would keep the server's WAL
    /// forever); a slot that does not exist counts as dropped.
    DropWalSlot(physical::DropWalSlotArgs),
    /// Take a physical base backup (pg_basebackup) into the destination, verify it, and
    /// apply retention to base backups and WAL.
    BaseBackup(physical::BaseBackupArgs),
    /// Fill an empty data directory for point-in-time recovery: base backup, every WAL
    /// file needed (verified), recovery.signal and settings.
    PrepareRecovery(physical::PrepareRecoveryArgs),
    /// Copy this binary into DIR, for a container of another image (a drill runs in the
    /// Database's PostgreSQL image).
    Install(InstallArgs),
    /// Run the controller.
    Run(backup_operator::controller::RunArgs),
}

#[derive(Debug, Args)]
pub struct PgArgs {
    #[arg(long = "host", env = PGHOST)]
    pub host: Option<String>,
    #[arg(long = "port", env = PGPORT)]
    pub port: Option<u16>,
    #[arg(long = "username", env = PGUSER)]
    pub user: Option<String>,
    /// Only from the environment, so it never appears in the process list.
    #[arg(skip = std::env::var(PGPASSWORD).ok().map(SecretString::from))]
    pub password: Option<SecretString>,
    #[arg(long = "dbname", env = PGDATABASE)]
    pub dbname: String,
    /// Directory of psql, pg_dump and pg_restore; PATH is searched when unset.
    #[arg(long, env = PG_BIN_DIR)]
    pub pg_bin_dir: Option<PathBuf>,
    /// Seconds to keep retrying a server that refuses connections or is still starting
    /// before the run fails; a wrong password fails at once.
    #[arg(long = "connect-patience", env = PG_CONNECT_PATIENCE, default_value_t = 120)]
    pub connect_patience_seconds: u64,
}

impl PgArgs {
    pub fn connection(&self) -> PgConnection {
        PgConnection {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            dbname: self.dbname.clone(),
        }
    }

    pub fn tools(&self) -> PgTools {
        PgTools::new(self.pg_bin_dir.clone())
            .with_connect_patience(Duration::from_secs(self.connect_patience_seconds))
    }
}

/// Exactly one destination: a directory or a bucket.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Directory destination, e.g. the mount path of a PersistentVolumeClaim.
    #[arg(long, env = BACKUP_DESTINATION_PATH)]
    pub destination_path: Option<PathBuf>,
    /// S3 endpoint URL; AWS itself when unset.
    #[arg(long, env = S3_ENDPOINT)]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = S3_BUCKET)]
    pub s3_bucket: Option<String>,
    #[arg(long, env = S3_PREFIX, default_value = "")]
    pub s3_prefix: String,
    #[arg(long, env = S3_REGION, default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = S3_FORCE_PATH_STYLE, default_value = "true", value_parser = BoolishValueParser::new())]
    pub s3_force_path_style: bool,
    #[arg(long, env = S3_ALLOW_HTTP, default_value = "false", value_parser = BoolishValueParser::new())]
    pub s3_allow_http: bool,
    #[arg(long, env = S3_PART_SIZE_MIB, default_value_t = 16, value_parser = clap::value_parser!(u32).range(5..=5120))]
    pub s3_part_size_mib: u32,
    /// Seconds to keep retrying one S3 request (at most 10 times) before the run fails.
    #[arg(long = "s3-retry-timeout", env = S3_RETRY_TIMEOUT, default_value_t = S3Config::DEFAULT_RETRY_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub s3_retry_timeout_seconds: u64,
    /// Only from the environment, like the secret key.
    #[arg(skip = std::env::var(AWS_ACCESS_KEY_ID).ok())]
    pub access_key_id: Option<String>,
    #[arg(skip = std::env::var(AWS_SECRET_ACCESS_KEY).ok().map(SecretString::from))]
    pub secret_access_key: Option<SecretString>,
}

impl StorageArgs {
    pub fn config(&self) -> anyhow::Result<StorageConfig> {
        match (&self.destination_path, &self.s3_bucket) {
            (Some(_), Some(_)) => bail!(
                "both {BACKUP_DESTINATION_PATH} and {S3_BUCKET} are set; choose one destination"
            ),
            (None, None) => bail!(
                "no destination: set {BACKUP_DESTINATION_PATH} for a directory or {S3_BUCKET} for S3"
            ),
            (Some(path), None) => Ok(StorageConfig::Directory { path: path.clone() }),
            (None, Some(bucket)) => {
                let (Some(access_key_id), Some(secret_access_key)) =
                    (&self.access_key_id, &self.secret_access_key)
                else {
                    bail!(
                        "S3 needs credentials: set {AWS_ACCESS_KEY_ID} and {AWS_SECRET_ACCESS_KEY}"
                    );
                };
                Ok(StorageConfig::S3(S3Config {
                    endpoint: self
                        .s3_endpoint
                        .clone()
                        .filter(|endpoint| !endpoint.is_empty()),
                    bucket: bucket.clone(),
                    prefix: self.s3_prefix.clone(),
                    region: self.s3_region.clone(),
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret_access_key.clone(),
                    path_style: self.s3_force_path_style,
                    allow_http: self.s3_allow_http,
                    part_size_bytes: self.s3_part_size_mib as usize * 1024 * 1024,
                    retry_timeout: Duration::from_secs(self.s3_retry_timeout_seconds),
                }))
            }
        }
    }
}

/// Which series of backups, shared by `dump` and `restore`.
#[derive(Debug, Args)]
pub struct SeriesArgs {
    /// Name the backups are filed under; defaults to the database name.
    #[arg(long, env = BACKUP_DATABASE)]
    pub backup_database: Option<String>,
    /// Name of the Backup resource.
    #[arg(long, env = BACKUP_NAME)]
    pub backup_name: String,
    #[arg(long, env = BACKUP_RUN_ID)]
    pub run_id: Option<String>,
}

impl SeriesArgs {
    pub fn backup(&self, dbname: &str) -> anyhow::Result<BackupRef> {
        let database = self.backup_database.as_deref().unwrap_or(dbname);
        BackupRef::new(database, &self.backup_name).with_context(|| {
            format!("set {BACKUP_DATABASE} to a name usable in paths when the database name is not")
        })
    }

    pub fn run_id(&self) -> anyhow::Result<Option<RunId>> {
        Ok(self.run_id.as_deref().map(RunId::new).transpose()?)
    }
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub pg: PgArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Complete backups to keep, this one included.
    #[arg(long, env = BACKUP_RETENTION, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention: u32,
    /// Files of dead runs untouched for this long are removed after a dump.
    #[arg(long, env = BACKUP_STALE_AFTER_SECONDS, default_value_t = 6 * 3600)]
    pub stale_after_seconds: u64,
    /// How an upload to S3 is verified before the run counts: `etag` compares the ETag the
    /// store acknowledged with the MD5s of the parts sent and reads the artifact back only
    /// when they disagree; `read` always reads it back. A directory is always read back.
    #[arg(long = "s3-verify", env = S3_VERIFY, value_enum, default_value_t = Verification::Etag)]
    pub s3_verify: Verification,
    /// ALGORITHM[:LEVEL] with zstd, lz4, gzip or none. When unset: zstd:1 where the server and
    /// pg_dump are PostgreSQL 16 or newer, else gzip.
    #[arg(long, env = BACKUP_COMPRESSION)]
    pub compression: Option<Compression>,
    /// pg_dump's parallel jobs; more than 1 writes pg_dump's directory format into
    /// --temp-dir first and stores it as one tar artifact.
    #[arg(long, env = BACKUP_JOBS, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_JOBS)))]
    pub jobs: u32,
    /// Where pg_dump's directory is written when jobs > 1; defaults to $TMPDIR.
    #[arg(long, env = BACKUP_TEMP_DIR)]
    pub temp_dir: Option<PathBuf>,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

impl DumpArgs {
    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.stale_after_seconds)
    }
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The target database connection; `--dbname` receives the restore.
    #[command(flatten)]
    pub pg: PgArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Where the artifact is downloaded and checked; defaults to $TMPDIR.
    #[arg(long, env = BACKUP_TEMP_DIR)]
    pub temp_dir: Option<PathBuf>,
    /// pg_restore's parallel jobs. 1 restores in one transaction; more do not, and a
    /// failed restore leaves the target partly restored until it is run again.
    #[arg(long, env = BACKUP_JOBS, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_JOBS)))]
    pub jobs: u32,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub series: SeriesArgs,
    /// An empty directory for the throwaway server, its socket and the download.
    #[arg(long, env = VERIFY_WORK_DIR)]
    pub work_dir: PathBuf,
    /// SQL that must return true on the restored database, e.g. `SELECT count(*) > 0 FROM orders`.
    #[arg(long, env = VERIFY_QUERY)]
    pub query: Option<String>,
    /// Directory of initdb, postgres, pg_ctl, pg_restore and psql; PATH is searched when unset.
    #[arg(long, env = PG_BIN_DIR)]
    pub pg_bin_dir: Option<PathBuf>,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

impl VerifyArgs {
    /// The series to drill. It has no database connection to default the name from.
    pub fn backup(&self) -> anyhow::Result<BackupRef> {
        let Some(database) = &self.series.backup_database else {
            bail!("verify needs {BACKUP_DATABASE}: the database name the backups are filed under");
        };
        self.series.backup(database)
    }
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Directory to copy the binary into, e.g. an emptyDir shared with the next container.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub series: SeriesArgs,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

impl PurgeArgs {
    /// The series to delete. There is no database connection to default the name from,
    /// and guessing would delete another series, so it must be given.
    pub fn backup(&self) -> anyhow::Result<BackupRef> {
        let Some(database) = &self.series.backup_database else {
            bail!("purge needs {BACKUP_DATABASE}: the database name the backups are filed under");
        };
        self.series.backup(database)
    }
}

pub mod physical;

#[cfg(test)]
mod round_trip;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let (password, secret_key) = ("pg-hunter2", "s3-hunter2");
        let mut cli = Cli::try_parse_from([
            "backup-operator",
            "dump",
            "--dbname=shop",
            "--backup-name=nightly",
            "--s3-bucket=backups",
        ])
        .expect("a valid command line");
        let Command::Dump(dump) = &mut cli.command else {
            panic!("not parsed as the dump command");
        };
        // The secrets come only from the environment, which a test must not change.
        dump.pg.password = Some(SecretString::from(password));
        dump.storage.access_key_id = Some("AKIAEXAMPLE".into());
        dump.storage.secret_access_key = Some(SecretString::from(secret_key));
        let connection = dump.pg.connection();
        let config = dump.storage.config().expect("S3 settings");
        let printed = [
            format!("{connection:?}"),
            format!("{config:?}"),
            format!("{cli:?}"),
        ];
        for text in printed {
            assert!(
                !text.contains(password) && !text.contains(secret_key),
                "{text}"
            );
        }
        let exposed = connection.password.map(|p| p.expose_secret().to_string());
        assert_eq!(exposed.as_deref(), Some(password));
    }
}
