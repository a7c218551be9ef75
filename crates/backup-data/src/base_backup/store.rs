//! Where base backups live in storage and how they are listed and removed.

use super::BaseCompression;
use super::manifest::{ARCHIVE_FILE, BaseManifest, MANIFEST_FILE};
use crate::pg::{PgConnection, PgError, PgTools};
use crate::storage::{BackupRef, RunRef, Storage, StorageError};
use crate::wal::SegmentSize;

/// `<database>/<backup>/base/<run-id>`.
pub fn run_dir(run: &RunRef) -> String {
    format!("{}/{}", run.backup.base_dir(), run.run_id)
}

pub fn archive_key(run: &RunRef, compression: BaseCompression) -> String {
    format!(
        "{}/{ARCHIVE_FILE}{}",
        run_dir(run),
        compression.file_suffix()
    )
}

pub fn manifest_key(run: &RunRef) -> String {
    format!("{}/{MANIFEST_FILE}", run_dir(run))
}

pub(super) async fn put_manifest(
    storage: &Storage,
    run: &RunRef,
    manifest: &BaseManifest,
) -> Result<(), StorageError> {
    storage
        .put_object(&manifest_key(run), manifest.to_json().into())
        .await
}

/// The manifest of a complete base backup, `None` when it has none.
pub async fn read_manifest(
    storage: &Storage,
    run: &RunRef,
) -> Result<Option<BaseManifest>, StorageError> {
    let key = manifest_key(run);
    let bytes = match storage.get_object(&key).await {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    let manifest =
        BaseManifest::from_json(&bytes).map_err(|error| StorageError::InvalidManifest {
            location: storage.location(&key),
            reason: error.to_string(),
        })?;
    if manifest.run().ok().as_ref() != Some(run) {
        return Err(StorageError::InvalidManifest {
            location: storage.location(&key),
            reason: format!("it describes run {}, not {run}", manifest.run_id),
        });
    }
    Ok(Some(manifest))
}

/// Complete base backups of one Backup, oldest first.
pub async fn list(
    storage: &Storage,
    backup: &BackupRef,
) -> Result<Vec<BaseManifest>, StorageError> {
    let mut manifests = Vec::new();
    for key in storage.list_objects(&backup.base_dir()).await? {
        let Some((run_id, MANIFEST_FILE)) = key.split_once('/') else {
            continue;
        };
        let Ok(run_id) = crate::storage::RunId::new(run_id) else {
            continue;
        };
        if let Some(manifest) = read_manifest(storage, &backup.run(run_id)).await? {
            manifests.push(manifest);
        }
    }
    manifests.sort_by(|a, b| (a.end_time, &a.run_id).cmp(&(b.end_time, &b.run_id)));
    Ok(manifests)
}

/// Manifest first: the base backup stops counting before its data goes.
pub async fn delete(storage: &Storage, run: &RunRef) -> Result<(), StorageError> {
    storage.delete_object(&manifest_key(run)).await?;
    for compression in [
        BaseCompression::None,
        BaseCompression::Lz4,
        BaseCompression::Gzip,
    ] {
        storage
            .delete_object(&archive_key(run, compression))
            .await?;
    }
    Ok(())
}

/// The server's WAL segment size, which decides how LSNs map to file names.
pub async fn segment_size(
    tools: &PgTools,
    connection: &PgConnection,
) -> Result<SegmentSize, PgError> {
    let text = tools
        .query(
            connection,
            "SELECT setting::bigint * CASE unit WHEN '8kB' THEN 8192 WHEN 'MB' THEN 1048576 ELSE 1 END FROM pg_settings WHERE name = 'wal_segment_size'",
        )
        .await?;
    Ok(text
        .parse::<u64>()
        .ok()
        .and_then(|bytes| SegmentSize::new(bytes).ok())
        .unwrap_or_default())
}
