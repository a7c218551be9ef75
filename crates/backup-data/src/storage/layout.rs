//! Where a run's files live: `<prefix>/<database>/<backup-name>/<run-id>/`
//! holding `dump.pgdump` and, once that is complete, `manifest.json`.
//!
//! Names become path segments on disk and in S3 keys, so they are restricted
//! to characters that mean the same thing in both and cannot climb out of
//! their folder.

use chrono::{DateTime, Utc};
use std::fmt;

pub const ARTIFACT_FILE: &str = "dump.pgdump";
pub const MANIFEST_FILE: &str = "manifest.json";
/// Folders under a Backup that hold physical backups, not runs of dumps: continuous WAL
/// (`wal/`) and base backups (`base/<run-id>/`). No run id may take these names.
pub const WAL_FOLDER: &str = "wal";
pub const BASE_FOLDER: &str = "base";
/// Suffix of files still being written in a directory destination.
pub const PARTIAL_SUFFIX: &str = ".partial";

const MAX_SEGMENT_LEN: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {value:?} cannot be used as a path segment: use 1 to {MAX_SEGMENT_LEN} letters, digits, '.', '_' or '-', not only dots"
)]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
}

fn validate_segment(what: &'static str, value: &str) -> Result<(), InvalidName> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let valid = !value.is_empty()
        && value.len() <= MAX_SEGMENT_LEN
        && value.chars().all(allowed)
        && !value.chars().all(|c| c == '.');
    if valid {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            value: value.to_owned(),
        })
    }
}

/// The series of runs of one Backup of one database; retention counts within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackupRef {
    database: String,
    backup: String,
}

impl BackupRef {
    pub fn new(database: &str, backup: &str) -> Result<Self, InvalidName> {
        validate_segment("database name", database)?;
        validate_segment("backup name", backup)?;
        Ok(Self {
            database: database.to_owned(),
            backup: backup.to_owned(),
        })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn backup(&self) -> &str {
        &self.backup
    }

    /// `<database>/<backup>`, relative to the destination's prefix.
    pub fn relative_dir(&self) -> String {
        format!("{}/{}", self.database, self.backup)
    }

    /// `<database>/<backup>/wal`, where the archived WAL lives.
    pub fn wal_dir(&self) -> String {
        format!("{}/{WAL_FOLDER}", self.relative_dir())
    }

    /// `<database>/<backup>/base`, where each base backup has a folder.
    pub fn base_dir(&self) -> String {
        format!("{}/{BASE_FOLDER}", self.relative_dir())
    }

    pub fn run(&self, run_id: RunId) -> RunRef {
        RunRef {
            backup: self.clone(),
            run_id,
        }
    }
}

/// One run's identifier, unique within its [`BackupRef`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    pub fn new(value: &str) -> Result<Self, InvalidName> {
        validate_segment("run id", value)?;
        if [WAL_FOLDER, BASE_FOLDER].contains(&value) {
            return Err(InvalidName {
                what: "run id (reserved for physical backups)",
                value: value.to_owned(),
            });
        }
        Ok(Self(value.to_owned()))
    }

    /// The default id: the start time in UTC, which sorts like the runs do.
    pub fn from_time(time: DateTime<Utc>) -> Self {
        Self(time.format("%Y%m%dT%H%M%SZ").to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One run of one Backup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunRef {
    pub backup: BackupRef,
    pub run_id: RunId,
}

impl RunRef {
    /// `<database>/<backup>/<run-id>`, relative to the destination's prefix.
    pub fn relative_dir(&self) -> String {
        format!("{}/{}", self.backup.relative_dir(), self.run_id)
    }

    pub fn artifact_key(&self) -> String {
        format!("{}/{ARTIFACT_FILE}", self.relative_dir())
    }

    pub fn manifest_key(&self) -> String {
        format!("{}/{MANIFEST_FILE}", self.relative_dir())
    }
}

impl fmt::Display for RunRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.relative_dir())
    }
}

/// A key prefix without leading, trailing or doubled slashes, so `a/`, `/a`
/// and `a` all name the same place.
pub fn normalize_prefix(prefix: &str) -> String {
    prefix
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_follow_the_documented_layout() {
        let run = BackupRef::new("app", "nightly")
            .unwrap()
            .run(RunId::new("20250101T020000Z").unwrap());
        assert_eq!(
            run.artifact_key(),
            "app/nightly/20250101T020000Z/dump.pgdump"
        );
        assert_eq!(
            run.manifest_key(),
            "app/nightly/20250101T020000Z/manifest.json"
        );
    }

    #[test]
    fn names_that_could_escape_their_folder_are_refused() {
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(254)] {
            assert!(RunId::new(bad).is_err(), "{bad:?} was accepted");
            assert!(BackupRef::new(bad, "b").is_err(), "{bad:?} was accepted");
        }
        for good in ["app", "my-db.prod", "20250101T020000Z", "Run_1", "..a"] {
            assert!(RunId::new(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn physical_backup_folders_are_never_run_ids() {
        // Otherwise a dump run could land in the WAL area, and the directory store's
        // clean-up of stale `.partial` writes would walk into it.
        assert!(RunId::new("wal").is_err());
        assert!(RunId::new("base").is_err());
        let backup = BackupRef::new("app", "nightly").unwrap();
        assert_eq!(backup.wal_dir(), "app/nightly/wal");
        assert_eq!(backup.base_dir(), "app/nightly/base");
    }

    #[test]
    fn default_run_ids_sort_by_time() {
        let early = RunId::from_time(Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap());
        let late = RunId::from_time(Utc.with_ymd_and_hms(2025, 11, 2, 3, 4, 5).unwrap());
        assert_eq!(early.as_str(), "20250102T030405Z");
        assert!(early < late);
    }

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(normalize_prefix("/backups//team/"), "backups/team");
        assert_eq!(normalize_prefix(""), "");
    }
}
