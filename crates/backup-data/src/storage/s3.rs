//! An S3-compatible bucket through `object_store`.
//!
//! Artifacts go up as multipart uploads: memory stays at a few parts whatever
//! the database size, and S3 shows the object only once the upload is
//! completed, so a dead run leaves nothing that looks like a backup.

use super::artifact::{ArtifactWriter, PendingArtifact};
use super::etag::{MultipartEtag, PartHasher, unquote};
use super::layout::{self, ARTIFACT_FILE, BackupRef, MANIFEST_FILE, RunId, RunRef};
use super::s3_config::{S3Config, client_builder, install_crypto_provider};
use super::{ByteStream, Manifest, StorageError};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Parts uploaded at once; with the one being filled, memory is about
/// `(PARALLEL_PARTS + 1) * part_size`.
const PARALLEL_PARTS: usize = 2;

pub struct S3Store {
    pub(super) store: AmazonS3,
    bucket: String,
    prefix: String,
    part_size_bytes: usize,
}

/// By hand, so no future field of the client can print credentials.
impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the client; no request is sent until an operation needs one.
    pub fn new(config: S3Config) -> Result<Self, StorageError> {
        install_crypto_provider();
        let store =
            client_builder(&config)?
                .build()
                .map_err(|error| StorageError::InvalidS3Config {
                    reason: error_text::describe(&error),
                })?;
        Ok(Self {
            store,
            bucket: config.bucket,
            prefix: layout::normalize_prefix(&config.prefix),
            part_size_bytes: config.part_size_bytes,
        })
    }

    fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    pub(super) fn path(&self, relative: &str) -> Path {
        Path::from(self.key(relative))
    }

    pub fn location(&self, relative: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(relative))
    }

    pub(super) fn error(
        &self,
        operation: &'static str,
        relative: &str,
    ) -> impl FnOnce(object_store::Error) -> StorageError + use<> {
        let location = self.location(relative);
        move |source| match source {
            object_store::Error::NotFound { .. } => StorageError::NotFound { location },
            source => StorageError::ObjectStore {
                operation,
                location,
                source,
            },
        }
    }

    pub(super) async fn begin_artifact(
        &self,
        run: &RunRef,
    ) -> Result<ArtifactWriter, StorageError> {
        self.begin_key(&run.artifact_key()).await
    }

    pub(super) async fn begin_key(&self, key: &str) -> Result<ArtifactWriter, StorageError> {
        let key = key.to_owned();
        let upload = self
            .store
            .put_multipart(&self.path(&key))
            .await
            .map_err(self.error("start uploading", &key))?;
        let pending = PendingUpload {
            upload: WriteMultipart::new_with_chunk_size(upload, self.part_size_bytes),
            parts: PartHasher::new(self.part_size_bytes),
            location: self.location(&key),
        };
        Ok(ArtifactWriter::new(
            PendingArtifact::S3(pending),
            self.location(&key),
        ))
    }

    /// Whether the store holds the upload as it was sent, without reading it: the ETag it
    /// gave the completed upload is the one computed from the parts sent (see
    /// [`super::etag`]), and the object under the key has that ETag and the size written.
    /// `Err` says why that could not be confirmed; the caller then reads the object back.
    pub(super) async fn confirm_upload(
        &self,
        key: &str,
        receipt: &UploadReceipt,
        size_bytes: u64,
    ) -> Result<(), String> {
        receipt.expected.confirms(receipt.e_tag.as_deref())?;
        let head = self
            .store
            .head(&self.path(key))
            .await
            .map_err(|error| error_text::describe(&self.error("inspect", key)(error)))?;
        if head.size != size_bytes {
            return Err(format!(
                "the stored object has {} bytes, but {size_bytes} were sent",
                head.size
            ));
        }
        let stored = head.e_tag.as_deref().map(unquote);
        if stored != receipt.e_tag.as_deref().map(unquote) {
            return Err(format!(
                "the stored object's ETag {} is not the one the upload was given",
                head.e_tag.as_deref().unwrap_or("(none)")
            ));
        }
        Ok(())
    }

    /// A single PUT: S3 never shows a half-written object.
    pub(super) async fn put_manifest(
        &self,
        run: &RunRef,
        manifest: &Manifest,
    ) -> Result<(), StorageError> {
        let key = run.manifest_key();
        self.store
            .put(&self.path(&key), manifest.to_json().into())
            .await
            .map_err(self.error("write", &key))?;
        Ok(())
    }

    pub(super) async fn read_manifest_bytes(&self, run: &RunRef) -> Result<Vec<u8>, StorageError> {
        let key = run.manifest_key();
        let result = self
            .store
            .get(&self.path(&key))
            .await
            .map_err(self.error("read", &key))?;
        let bytes = result.bytes().await.map_err(self.error("read", &key))?;
        Ok(bytes.to_vec())
    }

    /// Objects under a Backup, grouped by run id; keys that do not fit the
    /// layout are not ours and are ignored.
    async fn objects_by_run(
        &self,
        backup: &BackupRef,
    ) -> Result<BTreeMap<RunId, Vec<object_store::ObjectMeta>>, StorageError> {
        let backup_dir = backup.relative_dir();
        let base = self.path(&backup_dir);
        let objects: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(self.error("list", &backup_dir))?;
        let mut runs: BTreeMap<RunId, Vec<_>> = BTreeMap::new();
        for object in objects {
            let Some(rest) = object.location.prefix_match(&base) else {
                continue;
            };
            let parts: Vec<_> = rest.collect();
            if let [run_id, _file] = parts.as_slice()
                && let Ok(run_id) = RunId::new(run_id.as_ref())
            {
                runs.entry(run_id).or_default().push(object);
            }
        }
        Ok(runs)
    }

    pub(super) async fn list_runs_with_manifest(
        &self,
        backup: &BackupRef,
    ) -> Result<Vec<RunId>, StorageError> {
        Ok(self
            .objects_by_run(backup)
            .await?
            .into_iter()
            .filter(|(_, objects)| objects.iter().any(|object| is_named(object, MANIFEST_FILE)))
            .map(|(run_id, _)| run_id)
            .collect())
    }

    pub(super) async fn open_artifact(&self, run: &RunRef) -> Result<ByteStream, StorageError> {
        self.open_key(&run.artifact_key()).await
    }

    /// The object under `key`, streamed as the store delivers it.
    pub(super) async fn open_key(&self, key: &str) -> Result<ByteStream, StorageError> {
        let result = self
            .store
            .get(&self.path(key))
            .await
            .map_err(self.error("read", key))?;
        let location = self.location(key);
        let stream = result.into_stream().map(move |chunk| {
            chunk.map_err(|source| StorageError::ObjectStore {
                operation: "read",
                location: location.clone(),
                source,
            })
        });
        Ok(stream.boxed())
    }

    pub(super) async fn delete_run(&self, run: &RunRef) -> Result<(), StorageError> {
        // Manifest first: a run stops being complete before its data goes.
        for key in [run.manifest_key(), run.artifact_key()] {
            match self.store.delete(&self.path(&key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(self.error("delete", &key)(error)),
            }
        }
        Ok(())
    }

    /// Artifacts without a manifest, older than the cutoff: a run that died
    /// between completing the upload and writing the manifest.
    pub(super) async fn remove_stale(
        &self,
        backup: &BackupRef,
        cutoff: SystemTime,
    ) -> Result<Vec<String>, StorageError> {
        let cutoff: chrono::DateTime<chrono::Utc> = cutoff.into();
        let mut removed = Vec::new();
        for (run_id, objects) in self.objects_by_run(backup).await? {
            if objects.iter().any(|object| is_named(object, MANIFEST_FILE)) {
                continue;
            }
            let key = backup.run(run_id).artifact_key();
            let stale = objects
                .iter()
                .any(|object| is_named(object, ARTIFACT_FILE) && object.last_modified < cutoff);
            if stale {
                match self.store.delete(&self.path(&key)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        removed.push(self.location(&key))
                    }
                    Err(error) => return Err(self.error("delete", &key)(error)),
                }
            }
        }
        Ok(removed)
    }
}

fn is_named(object: &object_store::ObjectMeta, name: &str) -> bool {
    object.location.filename() == Some(name)
}

/// An unfinished multipart upload.
pub(crate) struct PendingUpload {
    upload: WriteMultipart,
    /// Cut at the same boundaries as `upload` cuts its parts.
    parts: PartHasher,
    location: String,
}

/// What the store answered when an upload was completed, and what it should have answered.
#[derive(Debug)]
pub(crate) struct UploadReceipt {
    e_tag: Option<String>,
    expected: MultipartEtag,
}

impl PendingUpload {
    pub(super) fn error(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(object_store::Error) -> StorageError + use<> {
        let location = self.location.clone();
        move |source| StorageError::ObjectStore {
            operation,
            location,
            source,
        }
    }

    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        // Waiting here is what stops a fast pg_dump from filling memory when
        // the network is slower than the database.
        self.upload
            .wait_for_capacity(PARALLEL_PARTS)
            .await
            .map_err(self.error("upload a part of"))?;
        self.parts.update(&chunk);
        self.upload.put(chunk);
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<UploadReceipt, StorageError> {
        let error = self.error("complete the upload of");
        let result = self.upload.finish().await.map_err(error)?;
        Ok(UploadReceipt {
            e_tag: result.e_tag,
            expected: self.parts.finish(),
        })
    }

    /// Also deletes the parts already uploaded, which S3 would otherwise keep
    /// (and bill) until a lifecycle rule removes them.
    pub(crate) async fn abort(self) -> Result<(), StorageError> {
        let error = self.error("abort the upload of");
        self.upload.abort().await.map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::s3_config::tests::config;

    #[test]
    fn locations_include_bucket_and_normalized_prefix() {
        let store = S3Store::new(config("https://s3.example.com", false)).unwrap();
        assert_eq!(store.location("app/x"), "s3://backups/team/app/x");
    }
}
