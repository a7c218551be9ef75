//! Removing every artifact of one Backup, for a Backup deleted with `deletionPolicy:
//! Delete`. The operator calls it directly for S3; for a claim the user provided it runs as
//! the `purge` subcommand in a Job that mounts the claim.

use std::time::Duration;

use crate::storage::{BackupRef, RunId, Storage, StorageError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Complete runs deleted, newest first.
    pub deleted_runs: Vec<String>,
    /// Partial files and artifacts without a manifest removed.
    pub removed_leftovers: Vec<String>,
}

/// Deletes the complete runs newest first (each manifest before its artifact, so a purge
/// interrupted halfway leaves only whole runs listed), then whatever dead runs left behind,
/// then the Backup's folder if it is empty. Running it again after an interruption finishes
/// the job.
pub async fn purge(storage: &Storage, backup: &BackupRef) -> Result<PurgeReport, StorageError> {
    let mut report = PurgeReport::default();
    for manifest in storage.list_complete(backup).await? {
        storage
            .delete_run(&backup.run(RunId::new(&manifest.run_id)?))
            .await?;
        report.deleted_runs.push(manifest.run_id);
    }
    report.removed_leftovers = storage.remove_stale(backup, Duration::ZERO).await?;
    if let Storage::Directory(_) = storage {
        // Only succeeds when empty, which is the point; S3 has no folders to remove.
        let backup_dir = storage.location(&backup.relative_dir());
        let _ = tokio::fs::remove_dir(&backup_dir).await;
        let _ = tokio::fs::remove_dir(storage.location(backup.database())).await;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::ContentDigest;
    use crate::storage::{Manifest, StorageConfig};
    use chrono::Utc;

    async fn store_run(storage: &Storage, backup: &BackupRef, run_id: &str) {
        let run = backup.run(RunId::new(run_id).unwrap());
        let digest: ContentDigest = storage.put_artifact(&run, &b"dump"[..]).await.unwrap();
        let manifest = Manifest::new(&run, Utc::now(), "17", &digest);
        storage.put_manifest(&manifest).await.unwrap();
    }

    #[tokio::test]
    async fn purge_removes_every_run_of_one_backup_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let config = StorageConfig::Directory {
            path: dir.path().to_owned(),
        };
        let storage = Storage::open(config).await.unwrap();
        let nightly = BackupRef::new("shop", "nightly").unwrap();
        let weekly = BackupRef::new("shop", "weekly").unwrap();
        store_run(&storage, &nightly, "20260101T020000Z").await;
        store_run(&storage, &nightly, "20260102T020000Z").await;
        store_run(&storage, &weekly, "20260101T030000Z").await;

        let report = purge(&storage, &nightly).await.unwrap();
        assert_eq!(report.deleted_runs.len(), 2);
        assert!(storage.list_complete(&nightly).await.unwrap().is_empty());
        assert_eq!(storage.list_complete(&weekly).await.unwrap().len(), 1);
        assert!(!dir.path().join("shop/nightly").exists());

        // A second purge (a retried clean-up Job) finds nothing and succeeds.
        assert_eq!(
            purge(&storage, &nightly).await.unwrap(),
            PurgeReport::default()
        );
    }
}
