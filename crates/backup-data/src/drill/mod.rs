//! A restore drill: proves that an artifact restores, without touching any real database.
//!
//! A throwaway server is created in a scratch directory ([`server`]), the artifact is
//! restored into it by the same [`crate::restore::restore`] a Restore uses (download, size
//! and SHA-256 checked against the manifest, `pg_restore` in one transaction), and then the
//! result is checked ([`contents`]): every table of the archive's table of contents exists,
//! each table has the rows counted at dump time (when the manifest recorded them), and the
//! user's query returns true. The server is stopped whatever the outcome.

pub mod contents;
pub mod server;

use crate::pg::{PgError, PgTools};
use crate::restore::{RestoreError, RestoreRequest, restore};
use crate::row_counts::{COUNT_ROWS_SQL, parse_counts};
use crate::storage::{BackupRef, Manifest, RunId, Storage};
use contents::ListError;
use server::{ServerError, ServerSettings, ThrowawayServer};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct DrillRequest {
    pub backup: BackupRef,
    /// `None` drills the newest complete run.
    pub run_id: Option<RunId>,
    pub server: ServerSettings,
    /// SQL that must return exactly one row holding `true` on the restored database.
    pub query: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DrillReport {
    pub manifest: Manifest,
    pub location: String,
    /// Tables of the archive found in the restored database.
    pub tables_checked: usize,
    /// Rows of the restored tables; compared one by one when `row_counts_compared`.
    pub rows_checked: u64,
    /// False for an artifact whose manifest predates recorded row counts.
    pub row_counts_compared: bool,
    pub query_checked: bool,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("the throwaway PostgreSQL server for the drill could not be started")]
    Server(#[source] ServerError),

    #[error("the artifact did not restore")]
    Restore(#[source] RestoreError),

    #[error("the table of contents of {location} could not be listed")]
    List {
        location: String,
        #[source]
        source: ListError,
    },

    #[error("the restored database could not be inspected")]
    Inspect(#[source] PgError),

    #[error("{0}")]
    Unexpected(String),

    #[error("tables listed in {location} are missing after the restore: {}", tables.join(", "))]
    MissingTables {
        location: String,
        tables: Vec<String>,
    },

    #[error("row counts of run {run_id} differ from those recorded at dump time: {differences}")]
    RowCounts { run_id: String, differences: String },

    #[error("the verification query failed on the restored database")]
    Query(#[source] PgError),

    #[error("the verification query returned {output:?} instead of true")]
    QueryFalse { output: String },

    #[error("cancelled before the drill finished")]
    Cancelled,
}

pub async fn drill(
    storage: &Storage,
    request: &DrillRequest,
    cancel: &CancellationToken,
) -> Result<DrillReport, DrillError> {
    let started = Instant::now();
    let server = ThrowawayServer::start(&request.server)
        .await
        .map_err(DrillError::Server)?;
    let checked = tokio::select! {
        checked = check(storage, request, &server, cancel) => checked,
        () = cancel.cancelled() => Err(DrillError::Cancelled),
    };
    server.stop().await;
    let mut report = checked?;
    report.duration = started.elapsed();
    tracing::info!(
        run = %report.manifest.run_id,
        tables = report.tables_checked,
        rows = report.rows_checked,
        seconds = report.duration.as_secs(),
        "drill passed"
    );
    Ok(report)
}

async fn check(
    storage: &Storage,
    request: &DrillRequest,
    server: &ThrowawayServer,
    cancel: &CancellationToken,
) -> Result<DrillReport, DrillError> {
    let tools = PgTools::new(request.server.bin_dir.clone());
    let connection = server.connection();
    let restored = restore(
        storage,
        &RestoreRequest {
            connection: connection.clone(),
            tools: tools.clone(),
            backup: request.backup.clone(),
            run_id: request.run_id.clone(),
            temp_dir: server.download_dir(),
            // One transaction: a drill measures whether the artifact restores, not how fast.
            jobs: 1,
            privileges: false,
        },
        cancel,
    )
    .await
    .map_err(DrillError::Restore)?;
    let (manifest, location) = (restored.manifest, restored.location);
    let run = manifest
        .run()
        .map_err(|error| DrillError::Unexpected(error.to_string()))?;

    let archive = contents::archive_tables(
        storage,
        &run,
        &manifest.format,
        &server.download_dir(),
        &tools,
        &connection,
    )
    .await
    .map_err(|source| DrillError::List {
        location: location.clone(),
        source,
    })?;
    let tables = tools
        .query(&connection, contents::TABLES_SQL)
        .await
        .map_err(DrillError::Inspect)?;
    let tables = contents::parse_tables(&tables).map_err(DrillError::Unexpected)?;
    let missing = contents::missing_tables(&archive, &tables);
    if !missing.is_empty() {
        return Err(DrillError::MissingTables {
            location,
            tables: missing,
        });
    }

    let counts = tools
        .query(&connection, COUNT_ROWS_SQL)
        .await
        .map_err(DrillError::Inspect)?;
    let counts = parse_counts(&counts).map_err(DrillError::Unexpected)?;
    let rows_checked = match &manifest.row_counts {
        Some(recorded) => contents::compare_rows(recorded, &counts).map_err(|differences| {
            DrillError::RowCounts {
                run_id: manifest.run_id.clone(),
                differences,
            }
        })?,
        None => counts.values().sum(),
    };

    if let Some(query) = &request.query {
        let output = tools
            .query(&connection, query)
            .await
            .map_err(DrillError::Query)?;
        if output != "t" {
            return Err(DrillError::QueryFalse { output });
        }
    }
    Ok(DrillReport {
        row_counts_compared: manifest.row_counts.is_some(),
        manifest,
        location,
        tables_checked: archive.len(),
        rows_checked,
        query_checked: request.query.is_some(),
        duration: Duration::ZERO,
    })
}
