//! Retention of physical backups: the newest base backups by count, and the archived WAL
//! from the oldest kept one onwards. Base backups go first (manifest before data), then the
//! WAL only they needed: a crash between the two leaves extra WAL, never a base backup
//! without its WAL.

use crate::base_backup::manifest::InvalidBaseManifest;
use crate::base_backup::store as base_store;
use crate::storage::retention::ZeroRetention;
use crate::storage::{BackupRef, RunId, Storage, StorageError};
use crate::wal::{SegmentSize, wal_retention};
use crate::wal_store::{WalStore, WalStoreError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub base_backups: Vec<String>,
    pub wal_files: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Wal(#[from] WalStoreError),
    #[error(transparent)]
    Manifest(#[from] InvalidBaseManifest),
    #[error(transparent)]
    ZeroRetention(#[from] ZeroRetention),
}

/// Keeps `keep` base backups and the WAL they need. With no base backup nothing is pruned:
/// the first one may still be running, and it needs the WAL archived meanwhile.
pub async fn prune(
    storage: &Storage,
    backup: &BackupRef,
    keep: usize,
) -> Result<Pruned, PruneError> {
    let manifests = base_store::list(storage, backup).await?;
    let Some(newest) = manifests.last() else {
        return Ok(Pruned::default());
    };
    let size: SegmentSize = newest.segment_size()?;
    let backups = manifests
        .iter()
        .map(|m| m.base_backup())
        .collect::<Result<Vec<_>, _>>()?;
    let plan = wal_retention(&backups, keep, size)?;
    for id in &plan.delete {
        let run_id = RunId::new(id).map_err(StorageError::from)?;
        base_store::delete(storage, &backup.run(run_id)).await?;
    }
    let wal = WalStore::new(storage, backup.clone(), size);
    let listing = wal.list().await?;
    let wal_files = wal.prune(&listing, &plan).await?;
    Ok(Pruned {
        base_backups: plan.delete,
        wal_files,
    })
}
