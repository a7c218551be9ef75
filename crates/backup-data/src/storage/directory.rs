//! A directory destination, usually a mounted PersistentVolumeClaim.
//!
//! Files are written as `<name>.partial`, fsynced, renamed into place and the
//! directory fsynced, so after a crash a file under its final name is whole.

use super::artifact::{ArtifactWriter, PendingArtifact};
use super::layout::{ARTIFACT_FILE, BackupRef, MANIFEST_FILE, PARTIAL_SUFFIX, RunId, RunRef};
use super::{ByteStream, Manifest, StorageError};
use futures::StreamExt as _;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::fs;
use tokio::io::AsyncWriteExt as _;
use tokio_util::io::ReaderStream;

#[derive(Debug)]
pub struct DirectoryStore {
    root: PathBuf,
}

impl DirectoryStore {
    /// The directory must exist: creating it would hide a volume that is not
    /// mounted and fill the container's own disk instead.
    pub async fn open(root: PathBuf) -> Result<Self, StorageError> {
        let unavailable = |source| StorageError::DirectoryUnavailable {
            path: root.clone(),
            source,
        };
        let metadata = fs::metadata(&root).await.map_err(unavailable)?;
        if !metadata.is_dir() {
            return Err(unavailable(std::io::Error::new(
                ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        Ok(Self { root })
    }

    pub fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    pub(super) fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub(super) async fn begin_artifact(
        &self,
        run: &RunRef,
    ) -> Result<ArtifactWriter, StorageError> {
        self.begin_key(&format!("{}/{ARTIFACT_FILE}", run.relative_dir()))
            .await
    }

    /// Starts writing `key` as `<key>.partial`, renamed into place on commit.
    pub(super) async fn begin_key(&self, key: &str) -> Result<ArtifactWriter, StorageError> {
        let final_path = self.path(key);
        let dir = parent(&final_path).to_owned();
        fs::create_dir_all(&dir)
            .await
            .map_err(io_error("create", &dir))?;
        let partial_path = partial_path(&final_path);
        let file = create_private(&partial_path).await?;
        let location = final_path.display().to_string();
        // Every folder from the file's up to the root may be new; each one's entry lives
        // in its parent, which must be synced too.
        let dirs_to_sync = dir
            .ancestors()
            .take_while(|d| d.starts_with(&self.root))
            .map(Path::to_owned)
            .collect();
        let file = PartialFile {
            file,
            partial_path,
            final_path,
            dirs_to_sync,
        };
        Ok(ArtifactWriter::new(
            PendingArtifact::Directory(file),
            location,
        ))
    }

    pub(super) async fn put_manifest(
        &self,
        run: &RunRef,
        manifest: &Manifest,
    ) -> Result<(), StorageError> {
        let final_path = self.path(&run.manifest_key());
        let partial_path = partial_path(&final_path);
        let mut file = create_private(&partial_path).await?;
        let written = async {
            file.write_all(&manifest.to_json()).await?;
            file.flush().await?;
            file.sync_all().await
        };
        if let Err(source) = written.await {
            let _ = fs::remove_file(&partial_path).await;
            return Err(io_error("write", &partial_path)(source));
        }
        drop(file);
        fs::rename(&partial_path, &final_path)
            .await
            .map_err(io_error("rename into place", &final_path))?;
        sync_dir(parent(&final_path)).await
    }

    pub(super) async fn read_manifest_bytes(&self, run: &RunRef) -> Result<Vec<u8>, StorageError> {
        let path = self.path(&run.manifest_key());
        fs::read(&path).await.map_err(not_found_or("read", &path))
    }

    /// Run ids under a Backup whose folder holds a manifest.
    pub(super) async fn list_runs_with_manifest(
        &self,
        backup: &BackupRef,
    ) -> Result<Vec<RunId>, StorageError> {
        let mut run_ids = Vec::new();
        for (run_id, run_dir) in self.run_dirs(backup).await? {
            if fs::try_exists(run_dir.join(MANIFEST_FILE))
                .await
                .map_err(io_error("inspect", &run_dir))?
            {
                run_ids.push(run_id);
            }
        }
        Ok(run_ids)
    }

    /// Every folder under a Backup whose name is a valid run id; others are
    /// not ours and are left alone.
    async fn run_dirs(&self, backup: &BackupRef) -> Result<Vec<(RunId, PathBuf)>, StorageError> {
        let backup_dir = self.path(&backup.relative_dir());
        let mut entries = match fs::read_dir(&backup_dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error("list", &backup_dir)(error)),
        };
        let mut runs = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(io_error("list", &backup_dir))?
        {
            let is_dir = entry
                .file_type()
                .await
                .map_err(io_error("inspect", &entry.path()))?
                .is_dir();
            let run_id = entry
                .file_name()
                .to_str()
                .and_then(|name| RunId::new(name).ok());
            if let (true, Some(run_id)) = (is_dir, run_id) {
                runs.push((run_id, entry.path()));
            }
        }
        Ok(runs)
    }

    pub(super) async fn open_artifact(&self, run: &RunRef) -> Result<ByteStream, StorageError> {
        self.open_key(&run.artifact_key()).await
    }

    /// The file under `key`, streamed in chunks.
    pub(super) async fn open_key(&self, key: &str) -> Result<ByteStream, StorageError> {
        let path = self.path(key);
        let file = fs::File::open(&path)
            .await
            .map_err(not_found_or("open", &path))?;
        let location = path.display().to_string();
        let stream =
            ReaderStream::with_capacity(file, super::artifact::CHUNK_SIZE).map(move |chunk| {
                chunk.map_err(|source| StorageError::Io {
                    operation: "read",
                    location: location.clone(),
                    source,
                })
            });
        Ok(stream.boxed())
    }

    pub(super) async fn delete_run(&self, run: &RunRef) -> Result<(), StorageError> {
        let run_dir = self.path(&run.relative_dir());
        remove_file_if_present(&run_dir.join(MANIFEST_FILE)).await?;
        // The run must stop counting as complete before its data goes, even if
        // the machine stops right here.
        if fs::try_exists(&run_dir).await.unwrap_or(false) {
            sync_dir(&run_dir).await?;
        }
        match fs::remove_dir_all(&run_dir).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error("delete", &run_dir)(error)),
        }
    }

    pub(super) async fn remove_stale(
        &self,
        backup: &BackupRef,
        cutoff: SystemTime,
    ) -> Result<Vec<String>, StorageError> {
        let mut removed = Vec::new();
        for (_, run_dir) in self.run_dirs(backup).await? {
            let complete = fs::try_exists(run_dir.join(MANIFEST_FILE))
                .await
                .map_err(io_error("inspect", &run_dir))?;
            let mut entries = fs::read_dir(&run_dir)
                .await
                .map_err(io_error("list", &run_dir))?;
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(io_error("list", &run_dir))?
            {
                let name = entry.file_name();
                let is_partial = name.to_string_lossy().ends_with(PARTIAL_SUFFIX);
                let is_orphan_artifact = !complete && name == ARTIFACT_FILE;
                if !(is_partial || is_orphan_artifact) {
                    continue;
                }
                let path = entry.path();
                let modified = entry
                    .metadata()
                    .await
                    .and_then(|metadata| metadata.modified())
                    .map_err(io_error("inspect", &path))?;
                if modified < cutoff {
                    remove_file_if_present(&path).await?;
                    removed.push(path.display().to_string());
                }
            }
            // Only succeeds when nothing is left, which is the point.
            let _ = fs::remove_dir(&run_dir).await;
        }
        Ok(removed)
    }
}

/// The artifact file while it is being written.
pub(crate) struct PartialFile {
    file: fs::File,
    partial_path: PathBuf,
    final_path: PathBuf,
    dirs_to_sync: Vec<PathBuf>,
}

impl PartialFile {
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.file
            .write_all(chunk)
            .await
            .map_err(io_error("write", &self.partial_path))
    }

    pub(crate) async fn commit(mut self) -> Result<(), StorageError> {
        let synced = async {
            self.file.flush().await?;
            self.file.sync_all().await
        };
        if let Err(source) = synced.await {
            let _ = fs::remove_file(&self.partial_path).await;
            return Err(io_error("sync", &self.partial_path)(source));
        }
        drop(self.file);
        if let Err(source) = fs::rename(&self.partial_path, &self.final_path).await {
            let _ = fs::remove_file(&self.partial_path).await;
            return Err(io_error("rename into place", &self.final_path)(source));
        }
        for dir in &self.dirs_to_sync {
            sync_dir(dir).await?;
        }
        Ok(())
    }

    pub(crate) async fn abort(self) -> Result<(), StorageError> {
        drop(self.file);
        remove_file_if_present(&self.partial_path).await?;
        // Leaves the run folder when it holds anything else, such as an
        // earlier attempt's files.
        let _ = fs::remove_dir(parent(&self.partial_path)).await;
        Ok(())
    }
}

/// Backups hold every row of the database: readable by the owner and the
/// group (a Pod's `fsGroup`), not by anyone else on the volume.
pub(super) async fn create_private(path: &Path) -> Result<fs::File, StorageError> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)
        .await
        .map_err(io_error("create", path))
}

fn partial_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.as_os_str().to_owned();
    name.push(PARTIAL_SUFFIX);
    PathBuf::from(name)
}

pub(super) fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Makes renames and deletions inside `dir` survive a power loss.
pub(super) async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let handle = fs::File::open(dir).await.map_err(io_error("open", dir))?;
    handle.sync_all().await.map_err(io_error("sync", dir))
}

pub(super) async fn remove_file_if_present(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error("delete", path)(error)),
    }
}

pub(super) fn io_error(
    operation: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StorageError + use<> {
    let location = path.display().to_string();
    move |source| StorageError::Io {
        operation,
        location,
        source,
    }
}

pub(super) fn not_found_or(
    operation: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StorageError + use<> {
    let location = path.display().to_string();
    move |source| match source.kind() {
        ErrorKind::NotFound => StorageError::NotFound { location },
        _ => StorageError::Io {
            operation,
            location,
            source,
        },
    }
}
