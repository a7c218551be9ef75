//! Prepares a new Database's data directory for point-in-time recovery before its server
//! starts: the chosen base backup unpacked and verified, every WAL file of the recovery plan
//! fetched and verified into `pgop_wal/`, `recovery.signal`, and settings whose
//! `restore_command` only copies those local files. Anything corrupt or missing stops the
//! preparation with an error naming it.

pub mod choose;
pub mod settings;

use crate::base_backup::store as base_store;
use crate::base_backup::unpack::unpack_base;
use crate::base_backup::{BaseCompression, manifest::InvalidBaseManifest};
use crate::storage::{BackupRef, RunId, Storage, StorageError};
use crate::wal::{SegmentSize, WalFile};
use crate::wal_store::{WalStore, WalStoreError};
use choose::ChooseError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

pub struct PrepareRequest<'a> {
    pub storage: &'a Storage,
    pub backup: BackupRef,
    /// Must not exist or be empty.
    pub data_dir: PathBuf,
    /// None recovers to the end of the archive.
    pub target_time: Option<DateTime<Utc>>,
    /// Recover from this base backup only; by default the newest that reaches the target.
    pub base_backup: Option<RunId>,
}

/// What was prepared; also written to `pgop_recovery.json` in the data directory.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prepared {
    pub base_backup: String,
    pub timeline: u32,
    pub target_time: Option<DateTime<Utc>>,
    pub wal_files: Vec<String>,
    /// Every record before this position is in the fetched complete segments.
    pub restorable_to: String,
    /// The last file is a streaming `.partial`, copied under its segment's name.
    pub partial_tail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Choose(#[from] ChooseError),
    #[error(transparent)]
    Wal(#[from] WalStoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Manifest(#[from] InvalidBaseManifest),
    #[error(
        "base backup {run} is corrupt: it reads back with SHA-256 {actual} ({size} bytes), but its manifest records {expected}; choose another base backup"
    )]
    CorruptBase {
        run: String,
        expected: String,
        actual: String,
        size: u64,
    },
    #[error("base backup {run} cannot be unpacked into {dir}")]
    Unpack {
        run: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {dir} is not empty; recovery prepares only an empty one")]
    NotEmpty { dir: PathBuf },
    #[error("could not write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the archive can restore to now, for a Backup's status: the window along the
/// timeline the newest base backup leads to, its gaps and unusable base backups, and the
/// same in words. `None` without a base backup.
pub async fn window(
    storage: &Storage,
    backup: &BackupRef,
) -> Result<Option<(crate::wal::Window, String)>, PrepareError> {
    let manifests = base_store::list(storage, backup).await?;
    let Some(newest) = manifests.last() else {
        return Ok(None);
    };
    let size = newest.segment_size()?;
    let backups = manifests
        .iter()
        .map(|m| m.base_backup())
        .collect::<Result<Vec<_>, _>>()?;
    let wal = WalStore::new(storage, backup.clone(), size);
    let listing = wal.list().await?;
    let histories = wal.histories(&listing).await?;
    let times = listing.times();
    let newest = backups.last().expect("not empty");
    let history = crate::wal::recovery_plan::latest_timeline(&newest.position, &histories)
        .map_err(|source| ChooseError::Plan {
            base: newest.id.clone(),
            source,
        })?;
    let window = crate::wal::window(&listing.archive, &backups, &history, &times);
    let text = choose::describe_window(&backups, &listing.archive, &histories, &times);
    Ok(Some((window, text)))
}

pub async fn prepare(request: PrepareRequest<'_>) -> Result<Prepared, PrepareError> {
    let mut manifests = base_store::list(request.storage, &request.backup).await?;
    if let Some(run_id) = &request.base_backup {
        manifests.retain(|m| m.run_id == run_id.as_str());
        if manifests.is_empty() {
            return Err(StorageError::NotFound {
                location: request.storage.location(&base_store::manifest_key(
                    &request.backup.run(run_id.clone()),
                )),
            }
            .into());
        }
    }
    let size = match manifests.last() {
        Some(manifest) => manifest.segment_size()?,
        None => SegmentSize::DEFAULT,
    };
    let backups = manifests
        .iter()
        .map(|m| m.base_backup())
        .collect::<Result<Vec<_>, _>>()?;
    let wal = WalStore::new(request.storage, request.backup.clone(), size);
    let listing = wal.list().await?;
    let histories = wal.histories(&listing).await?;
    let choice = choose::choose(
        &backups,
        &listing.archive,
        &histories,
        &listing.times(),
        request.target_time,
    )?;
    let manifest = manifests
        .iter()
        .find(|m| m.run_id == choice.base.id)
        .expect("the choice is one of the manifests");
    tracing::info!(base = %manifest.run_id, timeline = %choice.plan.timeline, files = choice.plan.files.len(), "preparing recovery");

    let dir = &request.data_dir;
    prepare_empty_dir(dir).await?;
    let run = manifest.run()?;
    let compression = BaseCompression::parse(&manifest.compression).unwrap_or_default();
    let stream = request
        .storage
        .open_object(&base_store::archive_key(&run, compression))
        .await?;
    let unpacked = unpack_base(stream, compression, dir).await?;
    if unpacked.digest.sha256 != manifest.sha256
        || unpacked.digest.size_bytes != manifest.size_bytes
    {
        return Err(PrepareError::CorruptBase {
            run: manifest.run_id.clone(),
            expected: manifest.sha256.clone(),
            actual: unpacked.digest.sha256,
            size: unpacked.digest.size_bytes,
        });
    }
    unpacked.unpacked.map_err(|source| PrepareError::Unpack {
        run: manifest.run_id.clone(),
        dir: dir.clone(),
        source,
    })?;

    let wal_dir = dir.join(settings::WAL_DIR);
    create_dir(&wal_dir).await?;
    let mut names = Vec::new();
    for file in &choice.plan.files {
        let data = fetch_listed(&wal, &listing, *file).await?;
        // The server asks for the segment's own name; a partial's zero tail reads as the
        // end of the WAL.
        let name = match file {
            WalFile::Partial(segment) => WalFile::Segment(*segment).file_name(size),
            _ => file.file_name(size),
        };
        write(&wal_dir.join(&name), &data).await?;
        names.push(file.file_name(size));
    }

    write(&dir.join("recovery.signal"), b"").await?;
    append(
        &dir.join("postgresql.auto.conf"),
        settings::auto_conf(choice.plan.timeline, request.target_time).as_bytes(),
    )
    .await?;
    let prepared = Prepared {
        base_backup: manifest.run_id.clone(),
        timeline: choice.plan.timeline.get(),
        target_time: request.target_time,
        wal_files: names,
        restorable_to: choice.plan.restorable_to.to_string(),
        partial_tail: choice.plan.partial_tail.map(|s| s.file_name(size)),
    };
    let json = serde_json::to_vec_pretty(&prepared).expect("serializable");
    write(&dir.join("pgop_recovery.json"), &json).await?;
    Ok(prepared)
}

/// The listed `file`, verified. The archiver goes on while a recovery prepares: every
/// `archive.syncSeconds` it stores a newer `.partial` of the segment being written and
/// deletes the one before, and once the server finishes the segment it stores it whole in
/// the partial's place. Either holds all the listed partial held, so a partial gone since
/// the listing is read from whatever superseded it.
async fn fetch_listed(
    wal: &WalStore<'_>,
    listing: &crate::wal::WalListing,
    file: WalFile,
) -> Result<bytes::Bytes, PrepareError> {
    let gone = match wal.fetch(&listing.entries[&file]).await {
        Err(WalStoreError::Storage(gone @ StorageError::NotFound { .. })) => gone,
        fetched => return Ok(fetched?),
    };
    let WalFile::Partial(segment) = file else {
        return Err(gone.into());
    };
    let now = wal.list().await?;
    let superseding = [WalFile::Segment(segment), WalFile::Partial(segment)]
        .iter()
        .find_map(|f| now.entries.get(f));
    match superseding {
        Some(stored) => {
            tracing::info!(file = %wal.location(stored), "the listed partial segment was superseded; reading its successor");
            Ok(wal.fetch(stored).await?)
        }
        None => Err(gone.into()),
    }
}

async fn prepare_empty_dir(dir: &Path) -> Result<(), PrepareError> {
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await
        && entries.next_entry().await.ok().flatten().is_some()
    {
        return Err(PrepareError::NotEmpty {
            dir: dir.to_owned(),
        });
    }
    create_dir(dir).await?;
    // PostgreSQL refuses a data directory others can read.
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(|source| PrepareError::Write {
            path: dir.to_owned(),
            source,
        })
}

async fn create_dir(dir: &Path) -> Result<(), PrepareError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| PrepareError::Write {
            path: dir.to_owned(),
            source,
        })
}

async fn write(path: &Path, data: &[u8]) -> Result<(), PrepareError> {
    tokio::fs::write(path, data)
        .await
        .map_err(|source| PrepareError::Write {
            path: path.to_owned(),
            source,
        })
}

async fn append(path: &Path, data: &[u8]) -> Result<(), PrepareError> {
    use tokio::io::AsyncWriteExt as _;
    let result = async {
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .await?;
        file.write_all(data).await?;
        file.sync_all().await
    };
    result.await.map_err(|source| PrepareError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageConfig;
    use crate::wal::{Lsn, Timeline, WalSegment};

    const MIB: u64 = 1024 * 1024;

    struct Archive {
        _dir: tempfile::TempDir,
        storage: Storage,
        segment: WalSegment,
        size: SegmentSize,
    }

    async fn archive() -> Archive {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(StorageConfig::Directory {
            path: dir.path().to_owned(),
        })
        .await
        .unwrap();
        let segment = WalSegment {
            timeline: Timeline::new(1).unwrap(),
            number: 7,
        };
        let size = SegmentSize::new(MIB).unwrap();
        Archive {
            _dir: dir,
            storage,
            segment,
            size,
        }
    }

    fn wal<'a>(archive: &'a Archive) -> WalStore<'a> {
        WalStore::new(
            &archive.storage,
            BackupRef::new("shop", "pitr").unwrap(),
            archive.size,
        )
    }

    fn bytes(fill: u8) -> bytes::Bytes {
        bytes::Bytes::from(vec![fill; MIB as usize])
    }

    /// The archiver stores a newer partial (or the finished segment) and deletes the listed
    /// one while a recovery is being prepared: the successor is read, verified.
    #[tokio::test]
    async fn a_partial_superseded_after_the_listing_is_read_from_its_successor() {
        let archive = archive().await;
        let wal = wal(&archive);
        let partial = WalFile::Partial(archive.segment);
        let first = wal
            .put(partial, bytes(1), Some(Lsn(7 * MIB + 10)), Utc::now())
            .await
            .unwrap();
        let listing = wal.list().await.unwrap();

        let newer = wal
            .put(partial, bytes(2), Some(Lsn(7 * MIB + 20)), Utc::now())
            .await
            .unwrap();
        wal.delete(&first).await.unwrap();
        assert_eq!(
            fetch_listed(&wal, &listing, partial).await.unwrap(),
            bytes(2)
        );

        wal.put(
            WalFile::Segment(archive.segment),
            bytes(3),
            None,
            Utc::now(),
        )
        .await
        .unwrap();
        wal.delete(&newer).await.unwrap();
        assert_eq!(
            fetch_listed(&wal, &listing, partial).await.unwrap(),
            bytes(3)
        );
    }

    /// A listed file gone without a successor is an error naming it, never skipped.
    #[tokio::test]
    async fn a_listed_file_gone_without_a_successor_is_an_error() {
        let archive = archive().await;
        let wal = wal(&archive);
        let segment = WalFile::Segment(archive.segment);
        let stored = wal.put(segment, bytes(1), None, Utc::now()).await.unwrap();
        let listing = wal.list().await.unwrap();
        wal.delete(&stored).await.unwrap();
        let error = fetch_listed(&wal, &listing, segment).await.unwrap_err();
        assert!(
            error.to_string().contains("000000010000000000000007"),
            "{error}"
        );
    }
}
