//! Command line of the physical backup subcommands: `archive-wal` (a long-running Pod per
//! Backup), `base-backup` and `prepare-recovery` (Jobs). Flags fall back to the environment
//! named in [`backup_job::env`], like the other subcommands.

use super::{PgArgs, SeriesArgs, StorageArgs};
use backup_data::base_backup::BaseCompression;
use backup_data::storage::Verification;
use backup_job::env::*;
use backup_job::report::DEFAULT_TERMINATION_LOG;
use chrono::{DateTime, Utc};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ArchiveWalArgs {
    /// The read-write Service, as a role with REPLICATION (the superuser).
    #[command(flatten)]
    pub pg: PgArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Physical replication slot; created on whichever server the Service leads to.
    #[arg(long, env = WAL_SLOT_NAME, default_value = "_pgop_wal_archiver")]
    pub slot: String,
    /// Local directory for pg_receivewal (an emptyDir).
    #[arg(long, env = WAL_SPOOL_DIR)]
    pub spool_dir: PathBuf,
    /// Seconds between uploads of the segment being written, when it changed.
    #[arg(long = "sync-interval", env = WAL_SYNC_INTERVAL_SECONDS, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub sync_interval_seconds: u64,
    /// Where `/status` (JSON) and `/metrics` (Prometheus) are served.
    #[arg(long, env = WAL_STATUS_ADDRESS, default_value = "0.0.0.0:8080")]
    pub status_address: SocketAddr,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

impl ArchiveWalArgs {
    pub fn sync_interval(&self) -> Duration {
        Duration::from_secs(self.sync_interval_seconds)
    }
}

#[derive(Debug, Args)]
pub struct DropWalSlotArgs {
    /// The read-write Service, as a role with REPLICATION (the superuser).
    #[command(flatten)]
    pub pg: PgArgs,
    /// The archiver's physical replication slot.
    #[arg(long, env = WAL_SLOT_NAME)]
    pub slot: String,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

#[derive(Debug, Args)]
pub struct BaseBackupArgs {
    #[command(flatten)]
    pub pg: PgArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Client-side compression of the tar stream.
    #[arg(long, env = BASE_BACKUP_COMPRESSION, value_enum, default_value_t = BaseCompression::Lz4)]
    pub compression: BaseCompression,
    /// Base backups to keep, this one included; older ones and the WAL only they need go.
    #[arg(long, env = BACKUP_RETENTION, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention: u32,
    /// How the upload to S3 is verified, as for a dump (`etag` or `read`); a directory is
    /// always read back.
    #[arg(long = "s3-verify", env = S3_VERIFY, value_enum, default_value_t = Verification::Etag)]
    pub s3_verify: Verification,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

#[derive(Debug, Args)]
pub struct PrepareRecoveryArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// `--run-id` picks the base backup; by default the newest that reaches the target.
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Recover up to this time (RFC 3339, e.g. 2026-12-06T07:00:00Z); the end of the
    /// archive when unset.
    #[arg(long, env = RECOVERY_TARGET_TIME)]
    pub target_time: Option<DateTime<Utc>>,
    /// The new Database's data directory; must be empty or absent.
    #[arg(long, env = RECOVERY_DATA_DIR)]
    pub data_dir: PathBuf,
    #[arg(long, env = TERMINATION_LOG_PATH, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}
