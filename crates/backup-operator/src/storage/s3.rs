//! An S3-compatible bucket through `object_store`.
//!
//! Artifacts go up as multipart uploads: memory stays at a few parts whatever
//! the database size, and S3 shows the object only once the upload is
//! completed, so a dead run leaves nothing that looks like a backup.

use super::artifact::{ArtifactWriter, PendingArtifact};
use super::etag::{MultipartEtag, PartHasher, unquote};
use super::layout::{self, ARTIFACT_FILE, BackupRef, MANIFEST_FILE, RunId, RunRef};
use super::{ByteStream, Manifest, StorageError};
use crate::secret::Secret;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt as _, RetryConfig, WriteMultipart};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// S3 refuses parts under 5 MiB except the last one.
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploaded at once; with the one being filled, memory is about
/// `(PARALLEL_PARTS + 1) * part_size`.
const PARALLEL_PARTS: usize = 2;

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `https://host[:port]`; `None` means AWS itself, for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Key prefix before `<database>/`; slashes at either end are ignored.
    pub prefix: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`; most
    /// S3-compatible servers (MinIO, Ceph) need it and AWS accepts it.
    pub path_style: bool,
    /// Allow `http://` endpoints; loopback endpoints are always allowed.
    pub allow_http: bool,
    pub part_size_bytes: usize,
    /// How long one request is retried before its error is reported.
    pub retry_timeout: Duration,
}

impl S3Config {
    pub const DEFAULT_PART_SIZE_BYTES: usize = 16 * 1024 * 1024;
    pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(120);
}

pub struct S3Store {
    store: AmazonS3,
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
        let invalid = |reason: String| StorageError::InvalidS3Config { reason };
        if config.bucket.is_empty() {
            return Err(invalid("the bucket name is empty".into()));
        }
        if config.part_size_bytes < MIN_PART_SIZE {
            return Err(invalid(format!(
                "part size {} bytes is below S3's minimum of 5 MiB",
                config.part_size_bytes
            )));
        }
        let allow_http = match &config.endpoint {
            Some(endpoint) => {
                let allowed = config.allow_http || is_loopback_endpoint(endpoint)?;
                if endpoint.starts_with("http://") && !allowed {
                    return Err(invalid(format!(
                        "endpoint {endpoint} is plain HTTP; use https:// or set {}=true to send backups unencrypted",
                        crate::env::S3_ALLOW_HTTP
                    )));
                }
                allowed
            }
            None => false,
        };
        install_crypto_provider();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(10))
                    // One part at a slow 1 MiB/s still fits.
                    .with_timeout(Duration::from_secs(300)),
            )
            .with_retry(RetryConfig {
                retry_timeout: config.retry_timeout,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder
            .build()
            .map_err(|error| invalid(crate::error_chain::describe(&error)))?;
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

    fn path(&self, relative: &str) -> Path {
        Path::from(self.key(relative))
    }

    pub fn location(&self, relative: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(relative))
    }

    fn error(
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
        let key = run.artifact_key();
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
        run: &RunRef,
        receipt: &UploadReceipt,
        size_bytes: u64,
    ) -> Result<(), String> {
        receipt.expected.confirms(receipt.e_tag.as_deref())?;
        let key = run.artifact_key();
        let head =
            self.store.head(&self.path(&key)).await.map_err(|error| {
                crate::error_chain::describe(&self.error("inspect", &key)(error))
            })?;
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
        let key = run.artifact_key();
        let result = self
            .store
            .get(&self.path(&key))
            .await
            .map_err(self.error("read", &key))?;
        let location = self.location(&key);
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
    fn error(
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

/// Whether plain HTTP to this endpoint stays on this machine.
fn is_loopback_endpoint(endpoint: &str) -> Result<bool, StorageError> {
    let url = reqwest::Url::parse(endpoint).map_err(|error| StorageError::InvalidS3Config {
        reason: format!("endpoint {endpoint:?} is not a URL: {error}"),
    })?;
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// reqwest is built without a default TLS crypto provider so that the whole
/// workspace uses ring, as kube does; the process-wide default must be set
/// once before the first client is built. A second call finds it set.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, allow_http: bool) -> S3Config {
        S3Config {
            endpoint: Some(endpoint.to_owned()),
            bucket: "backups".into(),
            prefix: "/team/".into(),
            region: "us-east-1".into(),
            access_key_id: "key".into(),
            secret_access_key: Secret::new("secret"),
            path_style: true,
            allow_http,
            part_size_bytes: S3Config::DEFAULT_PART_SIZE_BYTES,
            retry_timeout: S3Config::DEFAULT_RETRY_TIMEOUT,
        }
    }

    #[test]
    fn plain_http_is_refused_unless_loopback_or_allowed() {
        let refused = S3Store::new(config("http://minio.storage.svc:9000", false)).unwrap_err();
        assert!(
            refused.to_string().contains("S3_ALLOW_HTTP=true"),
            "{refused}"
        );
        S3Store::new(config("http://minio.storage.svc:9000", true)).unwrap();
        S3Store::new(config("http://127.0.0.1:9000", false)).unwrap();
        S3Store::new(config("http://[::1]:9000", false)).unwrap();
        S3Store::new(config("http://localhost:9000", false)).unwrap();
        S3Store::new(config("https://s3.example.com", false)).unwrap();
    }

    #[test]
    fn locations_include_bucket_and_normalized_prefix() {
        let store = S3Store::new(config("https://s3.example.com", false)).unwrap();
        assert_eq!(store.location("app/x"), "s3://backups/team/app/x");
    }

    #[test]
    fn debug_output_hides_the_secret_key() {
        let rendered = format!("{:?}", config("https://s3.example.com", false));
        assert!(!rendered.contains("\"secret\""), "{rendered}");
    }
}
