//! `base/<run-id>/manifest.json`: written last, after the archive was read back and
//! matched its SHA-256, so its presence is what makes a base backup count.

use crate::storage::layout::{BackupRef, RunId, RunRef};
use crate::wal::{BaseBackup, BaseBackupPosition, Lsn, SegmentSize, Timeline};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `pg_basebackup --format=tar --wal-method=none` to stdout: one tar of the data directory.
pub const FORMAT_BASEBACKUP_TAR: &str = "pg_basebackup-tar";
pub const ARCHIVE_FILE: &str = "base.tar";
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseManifest {
    pub database: String,
    pub backup_name: String,
    pub run_id: String,
    pub format: String,
    /// `none`, `lz4` or `gzip`, applied by pg_basebackup on the client side.
    pub compression: String,
    /// Where replay starts: the backup's checkpoint redo point.
    pub start_lsn: String,
    /// Where replay becomes consistent; no earlier point can be recovered to.
    pub end_lsn: String,
    pub timeline: u32,
    pub wal_segment_size: u64,
    pub start_time: DateTime<Utc>,
    /// Taken after pg_basebackup finished, so never earlier than the consistent point.
    pub end_time: DateTime<Utc>,
    pub server_version: String,
    pub size_bytes: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
#[error("base backup manifest of {run} is invalid: {reason}")]
pub struct InvalidBaseManifest {
    pub run: String,
    pub reason: String,
}

impl BaseManifest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn run(&self) -> Result<RunRef, InvalidBaseManifest> {
        let invalid = |reason: String| InvalidBaseManifest {
            run: self.run_id.clone(),
            reason,
        };
        let backup = BackupRef::new(&self.database, &self.backup_name)
            .map_err(|e| invalid(e.to_string()))?;
        let run_id = RunId::new(&self.run_id).map_err(|e| invalid(e.to_string()))?;
        Ok(backup.run(run_id))
    }

    pub fn segment_size(&self) -> Result<SegmentSize, InvalidBaseManifest> {
        SegmentSize::new(self.wal_segment_size).map_err(|e| InvalidBaseManifest {
            run: self.run_id.clone(),
            reason: e.to_string(),
        })
    }

    /// The backup as the WAL planning sees it.
    pub fn base_backup(&self) -> Result<BaseBackup, InvalidBaseManifest> {
        let invalid = |reason: String| InvalidBaseManifest {
            run: self.run_id.clone(),
            reason,
        };
        let lsn = |text: &str| text.parse::<Lsn>().map_err(|e| invalid(e.to_string()));
        Ok(BaseBackup {
            id: self.run_id.clone(),
            position: BaseBackupPosition {
                timeline: Timeline::new(self.timeline).map_err(|e| invalid(e.to_string()))?,
                start: lsn(&self.start_lsn)?,
                end: lsn(&self.end_lsn)?,
            },
            ended_at: self.end_time,
        })
    }
}
