//! One backup run: `pg_dump` → storage → manifest → verification → retention.
//!
//! The order is what makes a failed run harmless: the artifact is committed
//! only after `pg_dump` exited 0, the manifest is written only after the
//! commit, and anything that fails before the manifest is verified removes
//! what the run wrote.

use crate::error_chain::describe;
use crate::pg::{PgConnection, PgError, PgTools, RunningTool};
use crate::storage::{
    self, ArtifactWriter, BackupRef, Manifest, RunId, RunRef, Storage, StorageError,
};
use chrono::{DateTime, SubsecRound as _, Utc};
use futures::StreamExt as _;
use std::time::Duration;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

/// Read size from pg_dump's stdout; a pipe delivers at most 64 KiB at once.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct DumpRequest {
    pub connection: PgConnection,
    pub tools: PgTools,
    pub backup: BackupRef,
    /// `None` names the run after its start time.
    pub run_id: Option<RunId>,
    /// Complete runs kept after this one succeeds, this one included.
    pub retention: usize,
    /// Leftovers of dead runs older than this are removed after the dump.
    pub stale_after: Duration,
}

#[derive(Debug, Clone)]
pub struct DumpReport {
    pub manifest: Manifest,
    pub location: String,
    /// Run ids deleted by retention.
    pub pruned: Vec<String>,
    /// Clean-up that failed after the backup itself succeeded. The backup is
    /// good, so these do not fail the run (a retry would only take another).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("retention must keep at least 1 backup")]
    ZeroRetention,

    #[error("cannot query the database server before dumping")]
    Connect(#[source] PgError),

    #[error("the backup destination cannot be written")]
    Storage(#[source] StorageError),

    #[error("pg_dump failed, so no backup was stored")]
    PgDump(#[source] PgError),

    #[error("reading pg_dump's output failed, so no backup was stored")]
    ReadOutput(#[source] std::io::Error),

    #[error("writing the manifest failed, so the dump was removed")]
    Manifest(#[source] StorageError),

    #[error("verifying {location} failed ({reason}), so the run was removed")]
    Verify { location: String, reason: String },

    #[error("cancelled before the dump finished, so no backup was stored")]
    Cancelled,
}

/// Runs one backup. `cancel` (SIGTERM when a Pod is deleted) stops pg_dump
/// and discards the partial artifact.
pub async fn dump(
    storage: &Storage,
    request: &DumpRequest,
    cancel: &CancellationToken,
) -> Result<DumpReport, DumpError> {
    if request.retention == 0 {
        return Err(DumpError::ZeroRetention);
    }
    let started = Utc::now().trunc_subsecs(0);
    let run = request.backup.run(
        request
            .run_id
            .clone()
            .unwrap_or_else(|| RunId::from_time(started)),
    );
    let server_version = request
        .tools
        .server_version(&request.connection)
        .await
        .map_err(DumpError::Connect)?;
    tracing::info!(%run, %server_version, location = %storage.artifact_location(&run), "dump starting");

    let manifest = store_dump(storage, request, &run, started, &server_version, cancel).await?;
    let location = storage.artifact_location(&run);
    if let Err(reason) = verify(storage, &run, &manifest).await {
        delete_logged(storage, &run).await;
        return Err(DumpError::Verify { location, reason });
    }
    tracing::info!(%location, size_bytes = manifest.size_bytes, sha256 = %manifest.sha256, "dump stored and verified");

    let mut warnings = Vec::new();
    let pruned = match storage.prune(&request.backup, request.retention).await {
        Ok(expired) => expired
            .into_iter()
            .map(|manifest| manifest.run_id)
            .collect(),
        Err(error) => {
            warnings.push(format!("retention was not applied: {}", describe(&error)));
            Vec::new()
        }
    };
    match storage
        .remove_stale(&request.backup, request.stale_after)
        .await
    {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(?removed, "removed leftovers of earlier runs")
        }
        Ok(_) => {}
        Err(error) => warnings.push(format!(
            "leftovers of earlier runs were not removed: {}",
            describe(&error)
        )),
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok(DumpReport {
        manifest,
        location,
        pruned,
        warnings,
    })
}

/// Streams pg_dump into a new artifact and writes the manifest; on any
/// failure nothing of the run is left complete.
async fn store_dump(
    storage: &Storage,
    request: &DumpRequest,
    run: &RunRef,
    started: DateTime<Utc>,
    server_version: &str,
    cancel: &CancellationToken,
) -> Result<Manifest, DumpError> {
    let mut writer = storage
        .begin_artifact(run)
        .await
        .map_err(DumpError::Storage)?;
    let mut pg_dump = match request.tools.spawn_pg_dump(&request.connection) {
        Ok(pg_dump) => pg_dump,
        Err(error) => {
            storage::abort_logged(writer).await;
            return Err(DumpError::PgDump(error));
        }
    };
    let copied = tokio::select! {
        copied = copy_output(&mut pg_dump, &mut writer) => copied,
        () = cancel.cancelled() => Err(DumpError::Cancelled),
    };
    if let Err(error) = copied {
        pg_dump.kill().await;
        storage::abort_logged(writer).await;
        return Err(error);
    }
    // pg_dump may close stdout cleanly and still report an error; only its
    // exit status says the dump is whole.
    if let Err(error) = pg_dump.wait().await {
        storage::abort_logged(writer).await;
        return Err(DumpError::PgDump(error));
    }
    let digest = writer.commit().await.map_err(DumpError::Storage)?;
    let manifest = Manifest::new(run, started, server_version, &digest);
    if let Err(error) = storage.put_manifest(&manifest).await {
        delete_logged(storage, run).await;
        return Err(DumpError::Manifest(error));
    }
    Ok(manifest)
}

async fn copy_output(
    pg_dump: &mut RunningTool,
    writer: &mut ArtifactWriter,
) -> Result<(), DumpError> {
    let stdout = pg_dump.take_stdout().expect("pg_dump's stdout is piped");
    let mut chunks = ReaderStream::with_capacity(stdout, READ_CHUNK);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(DumpError::ReadOutput)?;
        writer.write(chunk).await.map_err(DumpError::Storage)?;
    }
    Ok(())
}

/// Reads back what a later restore will read: the manifest, and the
/// artifact's bytes hashed again, so a storage layer that lost or altered
/// data fails this run instead of a restore months later.
async fn verify(storage: &Storage, run: &RunRef, written: &Manifest) -> Result<(), String> {
    let read = storage
        .read_manifest(run)
        .await
        .map_err(|error| describe(&error))?;
    if &read != written {
        return Err("the manifest read back differs from the one written".into());
    }
    let stored = storage
        .hash_artifact(run)
        .await
        .map_err(|error| describe(&error))?;
    if stored != written.digest() {
        return Err(format!(
            "stored artifact has {} bytes with sha256 {}, but {} bytes with sha256 {} were written",
            stored.size_bytes, stored.sha256, written.size_bytes, written.sha256
        ));
    }
    Ok(())
}

async fn delete_logged(storage: &Storage, run: &RunRef) {
    if let Err(error) = storage.delete_run(run).await {
        tracing::warn!(%run, error = %describe(&error), "could not remove the failed run");
    }
}
