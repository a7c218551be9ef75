//! Restoring one backup: find it, download and check it, then `pg_restore`.
//!
//! The target database is touched only after the downloaded bytes match the
//! manifest's size and SHA-256, so a corrupt or truncated artifact can never
//! replace good data with a partial restore.

use crate::digest::{ContentDigest, DigestWriter};
use crate::pg::{PgConnection, PgError, PgTools};
use crate::storage::manifest::FORMAT_PG_DUMP_DIRECTORY_TAR;
use crate::storage::{BackupRef, Manifest, RunId, Storage, StorageError};
use futures::StreamExt as _;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The target; its database receives the restore.
    pub connection: PgConnection,
    pub tools: PgTools,
    /// The series to restore from, which may name another database.
    pub backup: BackupRef,
    /// `None` restores the newest complete run.
    pub run_id: Option<RunId>,
    /// Where the artifact is downloaded; it needs room for one backup.
    pub temp_dir: PathBuf,
    /// pg_restore's parallel jobs. With 1 the restore is one transaction; with more it is
    /// not, and a failed run leaves a partly restored target that a repeat replaces.
    pub jobs: u32,
    /// Restore the dump's GRANTs and REVOKEs. A restore drill does not: its throwaway server
    /// has none of the roles they name (pg_dump does not dump roles), and a GRANT to a
    /// missing role fails the whole one-transaction restore.
    pub privileges: bool,
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub manifest: Manifest,
    pub location: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("no complete backup of {backup} exists to restore")]
    NoBackup { backup: String },

    #[error("could not find the backup to restore")]
    Find(#[source] StorageError),

    #[error("cannot restore {location}: {reason}; the target database was not touched")]
    Unreadable { location: String, reason: String },

    #[error("cannot find out which version pg_restore is; the target database was not touched")]
    PgRestoreVersion(#[source] PgError),

    #[error("could not unpack {location} for pg_restore; the target database was not touched")]
    Unpack {
        location: String,
        #[source]
        source: std::io::Error,
    },

    #[error("could not download {location}; the target database was not touched")]
    Download {
        location: String,
        #[source]
        source: StorageError,
    },

    #[error(
        "could not write the download into {dir}; give it room for one backup or choose another directory with {}",
        backup_job::env::BACKUP_TEMP_DIR
    )]
    TempFile {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{location} is corrupt: it has {} bytes with sha256 {}, but its manifest says {} bytes with sha256 {}; the target database was not touched",
        actual.size_bytes, actual.sha256, expected.size_bytes, expected.sha256
    )]
    Corrupt {
        location: String,
        expected: ContentDigest,
        actual: ContentDigest,
    },

    #[error(
        "pg_restore failed; it ran in one transaction, so the target database was left as it was"
    )]
    PgRestore(#[source] PgError),

    #[error(
        "pg_restore with {jobs} jobs failed; a parallel restore is not one transaction, so the target database may be partly restored: run the restore again (it replaces what it restored) or restore with 1 job"
    )]
    PgRestoreParallel {
        jobs: u32,
        #[source]
        source: PgError,
    },

    #[error("cannot reach the target database; it was not touched")]
    Connect(#[source] PgError),

    #[error("cancelled; the target database was left as it was")]
    Cancelled,

    #[error(
        "cancelled during a restore with {jobs} jobs; the target database may be partly restored: run the restore again"
    )]
    CancelledParallel { jobs: u32 },
}

pub async fn restore(
    storage: &Storage,
    request: &RestoreRequest,
    cancel: &CancellationToken,
) -> Result<RestoreReport, RestoreError> {
    let manifest = choose_run(storage, request).await?;
    let run = manifest
        .run()
        .map_err(|error| RestoreError::Find(error.into()))?;
    let location = storage.artifact_location(&run);
    let pg_restore_version = request
        .tools
        .tool_version("pg_restore")
        .await
        .map_err(RestoreError::PgRestoreVersion)?;
    if let Some(reason) = crate::readable::refusal(&manifest, &pg_restore_version) {
        return Err(RestoreError::Unreadable { location, reason });
    }
    // Reach the server before the download, so a target that is not up yet waits (within
    // the connect patience) instead of failing after minutes of downloading.
    request
        .tools
        .server_version(&request.connection)
        .await
        .map_err(RestoreError::Connect)?;
    tracing::info!(%run, %location, format = %manifest.format, "downloading");
    let download = tokio::select! {
        download = download_checked(storage, &manifest, &location, &request.temp_dir) => download?,
        () = cancel.cancelled() => return Err(RestoreError::Cancelled),
    };

    let jobs = request.jobs.max(1);
    tracing::info!(target = %request.connection.describe(), jobs, "artifact verified, restoring");
    // pg_restore runs in one transaction, so a run that lost its connection changed nothing
    // and can be repeated: a Service briefly without endpoints (a readiness probe that timed
    // out on a busy node) must not fail the restore. Other failures end it at once.
    let deadline = tokio::time::Instant::now() + request.tools.connect_patience();
    loop {
        let mut pg_restore = request
            .tools
            .spawn_pg_restore(
                &request.connection,
                download.path(),
                jobs,
                request.privileges,
            )
            .map_err(RestoreError::PgRestore)?;
        // Killing pg_restore mid-way aborts its single transaction.
        let finished = tokio::select! {
            finished = pg_restore.wait() => finished,
            () = cancel.cancelled() => {
                pg_restore.kill().await;
                return Err(if jobs > 1 { RestoreError::CancelledParallel { jobs } } else { RestoreError::Cancelled });
            }
        };
        match finished {
            Ok(()) => break,
            Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, "pg_restore lost the server; repeating it");
                request
                    .tools
                    .server_version(&request.connection)
                    .await
                    .map_err(RestoreError::Connect)?;
            }
            Err(source) if jobs > 1 => {
                return Err(RestoreError::PgRestoreParallel { jobs, source });
            }
            Err(error) => return Err(RestoreError::PgRestore(error)),
        }
    }
    drop(download);
    Ok(RestoreReport { manifest, location })
}

async fn choose_run(storage: &Storage, request: &RestoreRequest) -> Result<Manifest, RestoreError> {
    match &request.run_id {
        Some(run_id) => storage
            .read_manifest(&request.backup.run(run_id.clone()))
            .await
            .map_err(RestoreError::Find),
        None => storage
            .list_complete(&request.backup)
            .await
            .map_err(RestoreError::Find)?
            .into_iter()
            .next()
            .ok_or_else(|| RestoreError::NoBackup {
                backup: request.backup.relative_dir(),
            }),
    }
}

/// What pg_restore reads: a custom-format file or a pg_dump directory. Deleted when dropped.
enum Download {
    File(NamedTempFile),
    Directory(TempDir),
}

impl Download {
    fn path(&self) -> &Path {
        match self {
            Self::File(file) => file.path(),
            Self::Directory(dir) => dir.path(),
        }
    }
}

/// Downloads the artifact, hashing on the way, and returns it only when it matches the
/// manifest: a custom-format dump into a file (pg_restore with several jobs needs to seek
/// in it), a packed directory unpacked into a directory.
async fn download_checked(
    storage: &Storage,
    manifest: &Manifest,
    location: &str,
    temp_dir: &Path,
) -> Result<Download, RestoreError> {
    if manifest.format == FORMAT_PG_DUMP_DIRECTORY_TAR {
        download_unpacked(storage, manifest, location, temp_dir).await
    } else {
        download_file(storage, manifest, location, temp_dir)
            .await
            .map(Download::File)
    }
}

async fn download_unpacked(
    storage: &Storage,
    manifest: &Manifest,
    location: &str,
    temp_dir: &Path,
) -> Result<Download, RestoreError> {
    let run = manifest
        .run()
        .map_err(|error| RestoreError::Find(error.into()))?;
    let download_error = |source| RestoreError::Download {
        location: location.to_owned(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix("restore-")
        .tempdir_in(temp_dir)
        .map_err(|source| RestoreError::TempFile {
            dir: temp_dir.to_owned(),
            source,
        })?;
    let stream = storage.open_artifact(&run).await.map_err(download_error)?;
    let unpacked = crate::tar_stream::unpack_stream(stream, dir.path())
        .await
        .map_err(download_error)?;
    let expected = manifest.digest();
    if unpacked.digest != expected {
        return Err(RestoreError::Corrupt {
            location: location.to_owned(),
            expected,
            actual: unpacked.digest,
        });
    }
    unpacked.unpacked.map_err(|source| RestoreError::Unpack {
        location: location.to_owned(),
        source,
    })?;
    Ok(Download::Directory(dir))
}

/// Downloads into a temporary file; the file is deleted when dropped.
async fn download_file(
    storage: &Storage,
    manifest: &Manifest,
    location: &str,
    temp_dir: &Path,
) -> Result<NamedTempFile, RestoreError> {
    let temp_error = |source| RestoreError::TempFile {
        dir: temp_dir.to_owned(),
        source,
    };
    let download_error = |source| RestoreError::Download {
        location: location.to_owned(),
        source,
    };
    let run = manifest
        .run()
        .map_err(|error| RestoreError::Find(error.into()))?;
    let temp = tempfile::Builder::new()
        .prefix("restore-")
        .suffix(".pgdump")
        .tempfile_in(temp_dir)
        .map_err(temp_error)?;
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(temp_error)?);
    let mut stream = storage.open_artifact(&run).await.map_err(download_error)?;
    let mut digest = DigestWriter::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(download_error)?;
        digest.update(&chunk);
        file.write_all(&chunk).await.map_err(temp_error)?;
    }
    file.flush().await.map_err(temp_error)?;
    let actual = digest.finish();
    let expected = manifest.digest();
    if actual != expected {
        return Err(RestoreError::Corrupt {
            location: location.to_owned(),
            expected,
            actual,
        });
    }
    Ok(temp)
}
