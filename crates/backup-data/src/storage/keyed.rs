//! Whole objects under a key, for the physical backups' files (WAL, base backups), which do
//! not fit the one-artifact-per-run layout of dumps.
//!
//! A directory writes `<key>.upload` and renames it into place, so a listing never shows a
//! half-written object; `.upload`, not the store's usual `.partial`, because WAL has files of
//! its own called `.partial`. S3 shows an object only once its PUT completed.

use super::directory::{
    create_private, io_error, not_found_or, parent, remove_file_if_present, sync_dir,
};
use super::{ArtifactWriter, ByteStream, Storage, StorageError};
use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::{ObjectStore as _, ObjectStoreExt as _};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::fs;
use tokio::io::AsyncWriteExt as _;

/// Suffix of a keyed object being written into a directory destination.
pub const UPLOAD_SUFFIX: &str = ".upload";

impl Storage {
    /// Stores `data` under `key` (relative to the destination's prefix), replacing what was
    /// there; visible only once whole.
    pub async fn put_object(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        match self {
            Self::Directory(store) => {
                let final_path = store.path(key);
                let dir = parent(&final_path).to_owned();
                fs::create_dir_all(&dir)
                    .await
                    .map_err(io_error("create", &dir))?;
                let temp = with_suffix(&final_path, UPLOAD_SUFFIX);
                let mut file = create_private(&temp).await?;
                let written = async {
                    file.write_all(&data).await?;
                    file.flush().await?;
                    file.sync_all().await
                };
                if let Err(source) = written.await {
                    let _ = fs::remove_file(&temp).await;
                    return Err(io_error("write", &temp)(source));
                }
                drop(file);
                fs::rename(&temp, &final_path)
                    .await
                    .map_err(io_error("rename into place", &final_path))?;
                sync_dir(&dir).await
            }
            Self::S3(store) => {
                store
                    .store
                    .put(&store.path(key), data.into())
                    .await
                    .map_err(store.error("write", key))?;
                Ok(())
            }
        }
    }

    /// Starts a large object written in chunks (a base backup), like a dump's artifact.
    pub async fn begin_object(&self, key: &str) -> Result<ArtifactWriter, StorageError> {
        match self {
            Self::Directory(store) => store.begin_key(key).await,
            Self::S3(store) => store.begin_key(key).await,
        }
    }

    pub async fn get_object(&self, key: &str) -> Result<Bytes, StorageError> {
        match self {
            Self::Directory(store) => {
                let path = store.path(key);
                let data = fs::read(&path).await.map_err(not_found_or("read", &path))?;
                Ok(data.into())
            }
            Self::S3(store) => {
                let result = store
                    .store
                    .get(&store.path(key))
                    .await
                    .map_err(store.error("read", key))?;
                result.bytes().await.map_err(store.error("read", key))
            }
        }
    }

    pub async fn open_object(&self, key: &str) -> Result<ByteStream, StorageError> {
        match self {
            Self::Directory(store) => store.open_key(key).await,
            Self::S3(store) => store.open_key(key).await,
        }
    }

    /// Deleting what is already gone succeeds: retention and a crashed clean-up may race.
    pub async fn delete_object(&self, key: &str) -> Result<(), StorageError> {
        match self {
            Self::Directory(store) => {
                let path = store.path(key);
                remove_file_if_present(&path).await?;
                sync_dir(parent(&path)).await.or_else(|error| match error {
                    StorageError::Io { ref source, .. } if source.kind() == ErrorKind::NotFound => {
                        Ok(())
                    }
                    error => Err(error),
                })
            }
            Self::S3(store) => match store.store.delete(&store.path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(error) => Err(store.error("delete", key)(error)),
            },
        }
    }

    /// Every complete object under `dir`, as keys relative to `dir`, sorted; a missing
    /// folder is empty. Unfinished directory writes are left out.
    pub async fn list_objects(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = match self {
            Self::Directory(store) => {
                let root = store.path(dir);
                let mut keys = Vec::new();
                list_files(&root, &root, &mut keys).await?;
                keys
            }
            Self::S3(store) => {
                let base = store.path(dir);
                let objects: Vec<_> = store
                    .store
                    .list(Some(&base))
                    .try_collect()
                    .await
                    .map_err(store.error("list", dir))?;
                objects
                    .into_iter()
                    .filter_map(|object| {
                        let rest: Vec<_> = object.location.prefix_match(&base)?.collect();
                        Some(
                            rest.iter()
                                .map(|part| part.as_ref())
                                .collect::<Vec<_>>()
                                .join("/"),
                        )
                    })
                    .collect()
            }
        };
        keys.sort();
        Ok(keys)
    }

    /// Removes unfinished directory writes under `dir` (a killed writer's); S3 has none.
    pub async fn remove_unfinished_objects(&self, dir: &str) -> Result<(), StorageError> {
        let Self::Directory(store) = self else {
            return Ok(());
        };
        let root = store.path(dir);
        let mut entries = match fs::read_dir(&root).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error("list", &root)(error)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(io_error("list", &root))?
        {
            if entry.file_name().to_string_lossy().ends_with(UPLOAD_SUFFIX) {
                remove_file_if_present(&entry.path()).await?;
            }
        }
        Ok(())
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

async fn list_files(root: &Path, dir: &Path, keys: &mut Vec<String>) -> Result<(), StorageError> {
    let mut entries = match fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error("list", dir)(error)),
    };
    while let Some(entry) = entries.next_entry().await.map_err(io_error("list", dir))? {
        let path = entry.path();
        let kind = entry
            .file_type()
            .await
            .map_err(io_error("inspect", &path))?;
        if kind.is_dir() {
            Box::pin(list_files(root, &path, keys)).await?;
        } else if kind.is_file() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(UPLOAD_SUFFIX) || name.ends_with(super::layout::PARTIAL_SUFFIX) {
                continue;
            }
            if let Ok(relative) = path.strip_prefix(root) {
                keys.push(relative.display().to_string());
            }
        }
    }
    Ok(())
}
