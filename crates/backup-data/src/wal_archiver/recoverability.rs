//! The recoverability window, recomputed by the archiver itself: it has the storage access
//! the operator lacks, and it knows when something new was archived. One listing (plus the
//! manifests and history files) per computation, at most every [`EVERY`], so a large archive
//! is not listed twice a second.

use super::server::SharedStatus;
use super::status::RecoverabilityReport;
use crate::recovery_prepare;
use crate::storage::{BackupRef, Storage};
use chrono::Utc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the window is computed.
pub const EVERY: Duration = Duration::from_secs(30);

/// Computes the window every [`EVERY`] until `cancel`. A failure keeps the last window and
/// is logged: the archiving itself reports store errors in `lastError`.
pub async fn watch(
    storage: &Storage,
    backup: &BackupRef,
    status: SharedStatus,
    cancel: CancellationToken,
) {
    loop {
        match report(storage, backup).await {
            Ok(report) => status.lock().expect("status lock").recoverability = report,
            Err(error) => tracing::warn!(%error, "could not compute the recoverability window"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// The window now; `None` before the first base backup.
pub async fn report(
    storage: &Storage,
    backup: &BackupRef,
) -> Result<Option<RecoverabilityReport>, recovery_prepare::PrepareError> {
    let Some((window, description)) = recovery_prepare::window(storage, backup).await? else {
        return Ok(None);
    };
    let time = |point: Option<crate::wal::window::RecoverablePoint>| point?.time.map(|t| t.at);
    Ok(Some(RecoverabilityReport {
        first_recoverable_time: time(window.first()),
        last_recoverable_time: time(window.last()),
        timeline: window.timeline.get(),
        gaps: window.gaps.len(),
        description,
        computed_at: Utc::now(),
    }))
}
