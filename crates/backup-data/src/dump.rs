//! One backup run: `pg_dump` → storage → verification → manifest → retention.
//!
//! The order is what makes a failed run harmless: the artifact is committed
//! only after `pg_dump` exited 0, the manifest is written only after the
//! artifact was verified, and anything that fails before the manifest is read
//! back removes what the run wrote.

use crate::compression::Compression;
use crate::dump_plan::{self, DumpPlan, PlanError};
use crate::pg::{PgConnection, PgError, PgTools, RunningTool};
use crate::row_counts::SnapshotSession;
use crate::storage::{
    self, ArtifactWriter, BackupRef, CommittedArtifact, Manifest, RunId, RunRef, Storage,
    StorageError, Verification, Verified,
};
use chrono::{SubsecRound as _, Utc};
use error_text::describe;
use futures::StreamExt as _;
use std::path::PathBuf;
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
    /// How an S3 upload is verified; a directory's artifact is always read back.
    pub verification: Verification,
    /// `None` chooses: zstd where the server and pg_dump allow it, else gzip.
    pub compression: Option<Compression>,
    /// pg_dump's parallel jobs; more than 1 dumps the directory format into `scratch_dir`
    /// first, which needs room for the compressed dump.
    pub jobs: u32,
    pub scratch_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct DumpReport {
    /// Also says how the artifact was compressed, and why not as by default when it fell back.
    pub manifest: Manifest,
    pub location: String,
    /// How the artifact was verified before the manifest was written.
    pub verified: Verified,
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

    #[error("counting the rows of each table in the dump's snapshot failed, so nothing was dumped")]
    RowCounts(#[source] PgError),

    #[error("the backup destination cannot be written")]
    Storage(#[source] StorageError),

    #[error("cannot find out which version pg_dump is")]
    PgDumpVersion(#[source] PgError),

    #[error("cannot dump with these settings")]
    Plan(#[source] PlanError),

    #[error("pg_dump failed, so no backup was stored")]
    PgDump(#[source] PgError),

    #[error(
        "could not make room for pg_dump's directory in {dir}; give it room for one compressed dump or choose another directory with {}",
        backup_job::env::BACKUP_TEMP_DIR
    )]
    Scratch {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("packing pg_dump's directory into the artifact failed, so no backup was stored")]
    Pack(#[source] crate::tar_stream::PackError),

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
    let plan = plan_dump(request).await?;
    if let Some(note) = &plan.note {
        tracing::warn!("{note}");
    }
    tracing::info!(%run, %server_version, compression = %plan.compression, jobs = plan.jobs,
        format = plan.format(), location = %storage.artifact_location(&run), "dump starting");

    // The counts and the dump see one snapshot, so a restore drill can compare them exactly.
    let session = tokio::select! {
        session = SnapshotSession::open(&request.tools, &request.connection) => {
            session.map_err(DumpError::RowCounts)?
        }
        () = cancel.cancelled() => return Err(DumpError::Cancelled),
    };
    let snapshot = Some(session.id());
    let stored = if plan.jobs > 1 {
        store_directory_dump(storage, request, &plan, &run, snapshot, cancel).await
    } else {
        store_dump(storage, request, &plan, &run, snapshot, cancel).await
    };
    let row_counts = session.close().await;
    let committed = stored?;
    let location = storage.artifact_location(&run);
    let verified = match storage
        .verify_artifact(&run, &committed, request.verification)
        .await
    {
        Ok(verified) => verified,
        Err(reason) => {
            delete_logged(storage, &run).await;
            return Err(DumpError::Verify { location, reason });
        }
    };
    let mut manifest =
        Manifest::new(&run, started, &server_version, &committed.digest).with_dump(plan.record());
    manifest.row_counts = Some(row_counts);
    if let Err(error) = storage.put_manifest(&manifest).await {
        delete_logged(storage, &run).await;
        return Err(DumpError::Manifest(error));
    }
    if let Err(reason) = read_back_manifest(storage, &run, &manifest).await {
        delete_logged(storage, &run).await;
        return Err(DumpError::Verify { location, reason });
    }
    tracing::info!(%location, size_bytes = manifest.size_bytes, sha256 = %manifest.sha256, %verified, "dump stored and verified");

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
        verified,
        pruned,
        warnings,
    })
}

/// Asks the server and pg_dump for their versions, which decide the compression.
async fn plan_dump(request: &DumpRequest) -> Result<DumpPlan, DumpError> {
    let server = request
        .tools
        .server_version_num(&request.connection)
        .await
        .map_err(DumpError::Connect)?;
    let pg_dump = request
        .tools
        .tool_version("pg_dump")
        .await
        .map_err(DumpError::PgDumpVersion)?;
    dump_plan::plan(request.compression, request.jobs, pg_dump, &server).map_err(DumpError::Plan)
}

/// Streams pg_dump into a new artifact and commits it once pg_dump succeeded;
/// on any failure the partial artifact is discarded.
async fn store_dump(
    storage: &Storage,
    request: &DumpRequest,
    plan: &DumpPlan,
    run: &RunRef,
    snapshot: Option<&str>,
    cancel: &CancellationToken,
) -> Result<CommittedArtifact, DumpError> {
    let mut writer = storage
        .begin_artifact(run)
        .await
        .map_err(DumpError::Storage)?;
    let spawned = request.tools.spawn_pg_dump(
        &request.connection,
        &plan.compression,
        &plan.pg_dump,
        plan.output(&request.scratch_dir),
        snapshot,
    );
    let mut pg_dump = match spawned {
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
    // What follows is the time a backup takes beyond pg_dump's own.
    tracing::debug!(
        bytes = writer.bytes_written(),
        "pg_dump finished; committing the artifact"
    );
    writer.commit().await.map_err(DumpError::Storage)
}

/// pg_dump with several jobs into a scratch directory, then the directory packed into a
/// new artifact. The artifact is begun first, so a run id that is already complete is
/// refused before the dump; the scratch directory is removed whatever happens.
async fn store_directory_dump(
    storage: &Storage,
    request: &DumpRequest,
    plan: &DumpPlan,
    run: &RunRef,
    snapshot: Option<&str>,
    cancel: &CancellationToken,
) -> Result<CommittedArtifact, DumpError> {
    let mut writer = storage
        .begin_artifact(run)
        .await
        .map_err(DumpError::Storage)?;
    let packed = match dump_into_scratch(request, plan, snapshot, cancel).await {
        Ok(scratch) => tokio::select! {
            packed = crate::tar_stream::pack_directory(scratch.path(), &mut writer) => packed.map_err(DumpError::Pack),
            () = cancel.cancelled() => Err(DumpError::Cancelled),
        },
        Err(error) => Err(error),
    };
    if let Err(error) = packed {
        storage::abort_logged(writer).await;
        return Err(error);
    }
    tracing::debug!(
        bytes = writer.bytes_written(),
        "pg_dump's directory packed; committing the artifact"
    );
    writer.commit().await.map_err(DumpError::Storage)
}

/// Runs pg_dump into a new directory under the scratch directory, which is deleted when
/// the returned handle is dropped (or at once, on failure).
async fn dump_into_scratch(
    request: &DumpRequest,
    plan: &DumpPlan,
    snapshot: Option<&str>,
    cancel: &CancellationToken,
) -> Result<tempfile::TempDir, DumpError> {
    let scratch = tempfile::Builder::new()
        .prefix("pg_dump-")
        .tempdir_in(&request.scratch_dir)
        .map_err(|source| DumpError::Scratch {
            dir: request.scratch_dir.clone(),
            source,
        })?;
    let mut pg_dump = request
        .tools
        .spawn_pg_dump(
            &request.connection,
            &plan.compression,
            &plan.pg_dump,
            plan.output(scratch.path()),
            snapshot,
        )
        .map_err(DumpError::PgDump)?;
    tokio::select! {
        finished = pg_dump.wait() => finished.map_err(DumpError::PgDump)?,
        () = cancel.cancelled() => {
            pg_dump.kill().await;
            return Err(DumpError::Cancelled);
        }
    }
    Ok(scratch)
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

/// Reads back the manifest a later restore will read, so a storage layer that
/// lost or altered it fails this run instead of a restore months later. The
/// artifact itself was verified before the manifest was written.
async fn read_back_manifest(
    storage: &Storage,
    run: &RunRef,
    written: &Manifest,
) -> Result<(), String> {
    let read = storage
        .read_manifest(run)
        .await
        .map_err(|error| describe(&error))?;
    if &read != written {
        return Err("the manifest read back differs from the one written".into());
    }
    Ok(())
}

async fn delete_logged(storage: &Storage, run: &RunRef) {
    if let Err(error) = storage.delete_run(run).await {
        tracing::warn!(%run, error = %describe(&error), "could not remove the failed run");
    }
}
