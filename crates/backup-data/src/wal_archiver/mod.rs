//! The streaming WAL archiver: supervises `pg_receivewal` writing into a local spool and
//! ships what it writes to the Backup's WAL area. Complete segments and history files are
//! hashed, stored, and only then removed from the spool; the segment being written is
//! uploaded as a `.partial` every sync interval when it changed, bounding what a lost
//! primary takes with it.
//!
//! It never touches the database's Pods: it is a replication client of the read-write
//! Service with a physical slot, so the server keeps WAL until it was received. On start
//! it lists the archive and, with an empty spool, makes pg_receivewal resume right after
//! the newest archived segment: a restart leaves no gap as long as the slot kept the WAL.
//! A gap that does happen is reported (status, metric), never papered over.

mod receiver;
pub mod recoverability;
pub mod server;
mod shipper;
pub mod spool;
pub mod status;

use crate::pg::{PgConnection, PgTools};
use crate::storage::{BackupRef, Storage};
use crate::wal::SegmentSize;
use crate::wal_store::WalStore;
use server::SharedStatus;
use shipper::Shipper;
use status::ErrorCategory;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// pg_receivewal is started again after this, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the spool is looked at for completed segments.
const POLL: Duration = Duration::from_millis(500);

pub struct ArchiverConfig {
    pub tools: PgTools,
    /// A role with REPLICATION (the superuser) through the read-write Service.
    pub connection: PgConnection,
    pub slot: String,
    /// A local directory for pg_receivewal, e.g. an emptyDir.
    pub spool: PathBuf,
    /// How often the current `.partial` is uploaded when it changed.
    pub sync_interval: Duration,
    pub backup: BackupRef,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiverError {
    #[error("the spool directory {path} cannot be used")]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Drops the archiver's slot for good, when its Backup is deleted: a slot nobody streams
/// from keeps the server's WAL forever. A slot that is not there (never created, or
/// dropped by an earlier attempt) counts as dropped: `false` then.
pub async fn drop_slot_for_good(
    tools: &PgTools,
    connection: &PgConnection,
    slot: &str,
) -> Result<bool, crate::pg::PgError> {
    match receiver::drop_slot(tools, connection, slot).await {
        Ok(()) => Ok(true),
        Err(crate::pg::PgError::Failed { stderr, .. }) if stderr.contains("does not exist") => {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Runs until `cancel`, then ships what pg_receivewal completed and the current partial.
pub async fn run(
    config: ArchiverConfig,
    storage: &Storage,
    status: SharedStatus,
    cancel: CancellationToken,
) -> Result<(), ArchiverError> {
    let spool_error = |source| ArchiverError::Spool {
        path: config.spool.clone(),
        source,
    };
    tokio::fs::create_dir_all(&config.spool)
        .await
        .map_err(spool_error)?;
    let Some(size) = segment_size(&config, &status, &cancel).await else {
        return Ok(());
    };
    let mut shipper = Shipper::new(
        WalStore::new(storage, config.backup.clone(), size),
        config.spool.clone(),
        config.sync_interval,
        status.clone(),
    );
    let mut backoff = FIRST_BACKOFF;
    let mut next_start = Instant::now();
    let mut seed_allowed = true;
    let mut started_once = false;
    let mut running: Option<(receiver::Receiver, Instant)> = None;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if running.is_none() && Instant::now() >= next_start {
            // Listing first: where to resume depends on what the archive holds.
            // Listed, so that a restart resumes after the newest archived segment; shipping
            // may still fail, and the spool then holds WAL until the store is back.
            if shipper.ensure_listed().await {
                shipper.ship(false).await;
                match start(&config, &mut shipper, seed_allowed).await {
                    Ok(receiver) => {
                        let mut status = status.lock().expect("status lock");
                        if started_once {
                            status.restarts += 1;
                        }
                        status.streaming = true;
                        status.clear_error(ErrorCategory::ServerUnreachable);
                        started_once = true;
                        running = Some((receiver, Instant::now()));
                    }
                    Err(message) => {
                        record(&status, ErrorCategory::ServerUnreachable, message);
                        next_start = Instant::now() + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            } else {
                next_start = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        let exited = async {
            match running.as_mut() {
                Some((receiver, _)) => receiver.child.wait().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            exit = exited => {
                let (receiver, since) = running.take().expect("it was running");
                let stderr = receiver.stderr.await.unwrap_or_default();
                status.lock().expect("status lock").streaming = false;
                let category = receiver::classify_exit(&stderr);
                let message = format!(
                    "pg_receivewal stopped ({}): {stderr}",
                    exit.map_or("unknown status".to_owned(), |s| s.to_string())
                );
                tracing::warn!(%message, "WAL streaming stopped; starting again");
                shipper.ship(true).await;
                if category == ErrorCategory::Gap {
                    shipper.record_gap(None, message).await;
                    // The stream cannot resume where the spool or the slot stands: start
                    // again from the server's current position, after the gap.
                    shipper.clear_spool_partials().await;
                    if let Err(error) =
                        receiver::drop_slot(&config.tools, &config.connection, &config.slot).await
                    {
                        tracing::warn!(error = %error_text::describe(&error), "could not drop the slot after a gap");
                    }
                    seed_allowed = false;
                } else {
                    record(&status, category, message);
                }
                if since.elapsed() > MAX_BACKOFF {
                    backoff = FIRST_BACKOFF;
                }
                next_start = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            _ = poll.tick() => {
                if shipper.ensure_listed().await {
                    shipper.ship(false).await;
                }
                if running.is_some() {
                    seed_allowed = true;
                }
            }
            _ = cancel.cancelled() => {
                if let Some((mut receiver, _)) = running.take() {
                    let _ = receiver.child.kill().await;
                    let _ = receiver.stderr.await;
                }
                status.lock().expect("status lock").streaming = false;
                if shipper.ensure_listed().await {
                    shipper.ship(true).await;
                }
                return Ok(());
            }
        }
    }
}

pub(super) fn record(status: &SharedStatus, category: ErrorCategory, message: String) {
    status
        .lock()
        .expect("status lock")
        .record_error(category, message);
}

/// Asks the server until it answers: file names cannot be read without the segment size.
async fn segment_size(
    config: &ArchiverConfig,
    status: &SharedStatus,
    cancel: &CancellationToken,
) -> Option<SegmentSize> {
    let mut delay = FIRST_BACKOFF;
    loop {
        match crate::base_backup::store::segment_size(&config.tools, &config.connection).await {
            Ok(size) => return Some(size),
            Err(error) => record(
                status,
                ErrorCategory::ServerUnreachable,
                error_text::describe(&error),
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => return None,
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

async fn start(
    config: &ArchiverConfig,
    shipper: &mut Shipper<'_>,
    seed_allowed: bool,
) -> Result<receiver::Receiver, String> {
    receiver::ensure_slot(&config.tools, &config.connection, &config.slot)
        .await
        .map_err(|error| error_text::describe(&error))?;
    if seed_allowed {
        shipper.seed().await?;
    }
    receiver::spawn(
        &config.tools,
        &config.connection,
        &config.slot,
        &config.spool,
    )
    .map_err(|error| error_text::describe(&error))
}
