//! Where backups go: a directory (a mounted volume) or an S3-compatible bucket.
//!
//! A run is complete exactly when its manifest exists, and the manifest is
//! written only after the artifact is whole and durable. Every operation here
//! keeps that true even when the process is killed between two steps:
//! artifacts are written under a name (directory) or in a form (an unfinished
//! multipart upload) that no reader takes for a backup, and deletion removes
//! the manifest before the artifact.

mod artifact;
mod directory;
mod error;
mod etag;
mod keyed;
pub mod layout;
pub mod manifest;
pub mod retention;
mod s3;
mod s3_config;
mod verify;

pub use artifact::{ArtifactWriter, CommittedArtifact};
pub use directory::DirectoryStore;
pub use error::StorageError;
pub use keyed::UPLOAD_SUFFIX;
pub use layout::{BackupRef, RunId, RunRef};
pub use manifest::Manifest;
pub use s3::S3Store;
pub use s3_config::S3Config;
pub use verify::{Verification, Verified};

use crate::digest::{ContentDigest, DigestWriter};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// An artifact's content as it is read back.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// Which destination to use, as the command line or the controller gives it.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// A directory that exists, usually a PersistentVolumeClaim's mount path.
    Directory {
        path: PathBuf,
    },
    S3(S3Config),
}

/// One destination. An enum rather than a trait object: there are two, and
/// matching keeps each operation's behaviour per backend visible in one place.
#[derive(Debug)]
pub enum Storage {
    Directory(DirectoryStore),
    S3(S3Store),
}

impl Storage {
    /// Checks the configuration; a directory must already exist, a bucket is
    /// first contacted by the operation that needs it.
    pub async fn open(config: StorageConfig) -> Result<Self, StorageError> {
        match config {
            StorageConfig::Directory { path } => {
                Ok(Self::Directory(DirectoryStore::open(path).await?))
            }
            StorageConfig::S3(config) => Ok(Self::S3(S3Store::new(config)?)),
        }
    }

    /// Where a key lives, for messages and results: a path or an `s3://` URL.
    pub fn location(&self, key: &str) -> String {
        match self {
            Self::Directory(store) => store.location(key),
            Self::S3(store) => store.location(key),
        }
    }

    pub fn artifact_location(&self, run: &RunRef) -> String {
        self.location(&run.artifact_key())
    }

    /// Starts writing a run's artifact. Nothing is visible as a backup until
    /// [`ArtifactWriter::commit`] and then [`Storage::put_manifest`] succeed.
    /// Refuses a run id that already has a manifest, so a complete backup is
    /// never overwritten.
    pub async fn begin_artifact(&self, run: &RunRef) -> Result<ArtifactWriter, StorageError> {
        if self.manifest_exists(run).await? {
            return Err(StorageError::AlreadyComplete {
                location: self.location(&run.manifest_key()),
            });
        }
        match self {
            Self::Directory(store) => store.begin_artifact(run).await,
            Self::S3(store) => store.begin_artifact(run).await,
        }
    }

    /// Writes a whole artifact from a reader; on a read or write error the
    /// partial artifact is removed and the error returned.
    pub async fn put_artifact(
        &self,
        run: &RunRef,
        reader: impl AsyncRead + Unpin,
    ) -> Result<ContentDigest, StorageError> {
        let mut writer = self.begin_artifact(run).await?;
        let mut chunks = ReaderStream::with_capacity(reader, artifact::CHUNK_SIZE);
        while let Some(chunk) = chunks.next().await {
            let written = match chunk {
                Ok(chunk) => writer.write(chunk).await,
                Err(source) => Err(StorageError::Io {
                    operation: "read the artifact source for",
                    location: writer.location().to_owned(),
                    source,
                }),
            };
            if let Err(error) = written {
                abort_logged(writer).await;
                return Err(error);
            }
        }
        Ok(writer.commit().await?.digest)
    }

    /// Marks a run complete. Call only after the artifact was committed.
    pub async fn put_manifest(&self, manifest: &Manifest) -> Result<(), StorageError> {
        let run = manifest
            .run()
            .map_err(|error| StorageError::InvalidManifest {
                location: manifest.run_id.clone(),
                reason: error.to_string(),
            })?;
        match self {
            Self::Directory(store) => store.put_manifest(&run, manifest).await,
            Self::S3(store) => store.put_manifest(&run, manifest).await,
        }
    }

    /// The manifest of a run; [`StorageError::NotFound`] when the run is not complete.
    pub async fn read_manifest(&self, run: &RunRef) -> Result<Manifest, StorageError> {
        let bytes = match self {
            Self::Directory(store) => store.read_manifest_bytes(run).await?,
            Self::S3(store) => store.read_manifest_bytes(run).await?,
        };
        let location = self.location(&run.manifest_key());
        let manifest =
            Manifest::from_json(&bytes).map_err(|error| StorageError::InvalidManifest {
                location: location.clone(),
                reason: error.to_string(),
            })?;
        // A manifest copied into another run's folder would make retention
        // delete the wrong files.
        if manifest.run().ok().as_ref() != Some(run) {
            return Err(StorageError::InvalidManifest {
                location,
                reason: format!(
                    "it describes {}/{}/{}, not {run}",
                    manifest.database, manifest.backup_name, manifest.run_id
                ),
            });
        }
        Ok(manifest)
    }

    async fn manifest_exists(&self, run: &RunRef) -> Result<bool, StorageError> {
        match self.read_manifest(run).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Complete runs of one Backup, newest first.
    pub async fn list_complete(&self, backup: &BackupRef) -> Result<Vec<Manifest>, StorageError> {
        let run_ids = match self {
            Self::Directory(store) => store.list_runs_with_manifest(backup).await?,
            Self::S3(store) => store.list_runs_with_manifest(backup).await?,
        };
        let mut manifests = Vec::with_capacity(run_ids.len());
        for run_id in run_ids {
            match self.read_manifest(&backup.run(run_id)).await {
                Ok(manifest) => manifests.push(manifest),
                // Deleted by a concurrent prune between listing and reading.
                Err(StorageError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        manifest::sort_newest_first(&mut manifests);
        Ok(manifests)
    }

    /// The stored bytes of a run's artifact.
    pub async fn open_artifact(&self, run: &RunRef) -> Result<ByteStream, StorageError> {
        match self {
            Self::Directory(store) => store.open_artifact(run).await,
            Self::S3(store) => store.open_artifact(run).await,
        }
    }

    /// Reads the stored artifact back and hashes it.
    pub async fn hash_artifact(&self, run: &RunRef) -> Result<ContentDigest, StorageError> {
        self.hash_object(&run.artifact_key()).await
    }

    /// Reads the object stored under `key` back and hashes it.
    pub async fn hash_object(&self, key: &str) -> Result<ContentDigest, StorageError> {
        let mut stream = self.open_object(key).await?;
        let mut digest = DigestWriter::new();
        while let Some(chunk) = stream.next().await {
            digest.update(&chunk?);
        }
        Ok(digest.finish())
    }

    /// Deletes a run: manifest first, so a run interrupted halfway through
    /// deletion is no longer listed as complete, then the artifact.
    pub async fn delete_run(&self, run: &RunRef) -> Result<(), StorageError> {
        match self {
            Self::Directory(store) => store.delete_run(run).await,
            Self::S3(store) => store.delete_run(run).await,
        }
    }

    /// Keeps the `keep` newest complete runs and deletes the others,
    /// returning the manifests of what it deleted, oldest last.
    pub async fn prune(
        &self,
        backup: &BackupRef,
        keep: usize,
    ) -> Result<Vec<Manifest>, StorageError> {
        let (_, expired) = retention::split_for_retention(self.list_complete(backup).await?, keep)?;
        for manifest in &expired {
            let run = backup.run(RunId::new(&manifest.run_id)?);
            self.delete_run(&run).await?;
        }
        Ok(expired)
    }

    /// Deletes what dead runs left behind: partial files, and artifacts that
    /// never got a manifest, last modified more than `older_than` ago. The age
    /// bound spares a run that is still being written. Returns the locations
    /// removed.
    ///
    /// An S3 multipart upload that was never completed is invisible to
    /// listing through this API; a bucket lifecycle rule
    /// (`AbortIncompleteMultipartUpload`) reclaims its parts.
    pub async fn remove_stale(
        &self,
        backup: &BackupRef,
        older_than: Duration,
    ) -> Result<Vec<String>, StorageError> {
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        match self {
            Self::Directory(store) => store.remove_stale(backup, cutoff).await,
            Self::S3(store) => store.remove_stale(backup, cutoff).await,
        }
    }
}

/// Aborting is best effort: the caller is already returning the error that
/// caused it, which matters more than a failed clean-up.
pub async fn abort_logged(writer: ArtifactWriter) {
    let location = writer.location().to_owned();
    if let Err(error) = writer.abort().await {
        tracing::warn!(%location, error = %error_text::describe(&error), "could not remove the partial artifact");
    }
}
