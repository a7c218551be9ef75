//! The physical backup subcommands: `archive-wal`, `base-backup`, `prepare-recovery`.
//! Each result is one JSON line on stdout and in the termination log, like the Jobs' others.

use crate::cli::physical::{ArchiveWalArgs, BaseBackupArgs, DropWalSlotArgs, PrepareRecoveryArgs};
use anyhow::Context as _;
use backup_data::base_backup::{self, BaseBackupRequest};
use backup_data::physical_retention;
use backup_data::recovery_prepare::{self, PrepareRequest};
use backup_data::storage::Storage;
use backup_data::wal_archiver::status::ArchiverStatus;
use backup_data::wal_archiver::{self, ArchiverConfig};
use backup_job::report::publish_value;
use error_text::describe;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Streams until SIGTERM, then ships what is complete and the current partial.
pub async fn archive_wal(args: ArchiveWalArgs) -> ExitCode {
    let termination_log = args.termination_log.clone();
    let result = async {
        if args.series.run_id.is_some() {
            anyhow::bail!(
                "archive-wal has no run id; unset {}",
                backup_job::env::BACKUP_RUN_ID
            );
        }
        let backup = args.series.backup(&args.pg.dbname)?;
        let storage = Storage::open(args.storage.config()?).await?;
        let status = Arc::new(Mutex::new(ArchiverStatus::default()));
        let cancel = crate::job_commands::cancel_on_signal()?;
        let listener = tokio::net::TcpListener::bind(args.status_address)
            .await
            .with_context(|| format!("could not listen on {}", args.status_address))?;
        let server = tokio::spawn(wal_archiver::server::serve(
            listener,
            status.clone(),
            cancel.clone(),
        ));
        let config = ArchiverConfig {
            tools: args.pg.tools(),
            connection: args.pg.connection(),
            slot: args.slot.clone(),
            spool: args.spool_dir.clone(),
            sync_interval: args.sync_interval(),
            backup: backup.clone(),
        };
        // The window is computed beside the archiving, from the same storage, and stops
        // with it.
        let window_cancel = cancel.child_token();
        let archiving = async {
            let archived = wal_archiver::run(config, &storage, status.clone(), cancel).await;
            window_cancel.cancel();
            archived
        };
        let window = wal_archiver::recoverability::watch(
            &storage,
            &backup,
            status.clone(),
            window_cancel.clone(),
        );
        let (archived, ()) = tokio::join!(archiving, window);
        archived?;
        let _ = server.await;
        let status = status.lock().expect("status lock").clone();
        anyhow::Ok(status)
    };
    match result.await {
        Ok(status) => {
            let summary = json!({
                "result": "Stopped",
                "lastArchivedSegment": status.last_archived_segment,
                "gaps": status.gaps.len(),
            });
            publish_value(&summary, &summary, &termination_log);
            ExitCode::SUCCESS
        }
        Err(error) => failed(&error, &termination_log),
    }
}

/// Drops the slot of a deleted physical Backup's archiver, which has stopped.
pub async fn drop_wal_slot(args: DropWalSlotArgs) -> ExitCode {
    let termination_log = args.termination_log.clone();
    let dropped =
        wal_archiver::drop_slot_for_good(&args.pg.tools(), &args.pg.connection(), &args.slot).await;
    match dropped {
        Ok(existed) => {
            let summary = json!({"result": "Succeeded", "slot": args.slot, "dropped": existed});
            publish_value(&summary, &summary, &termination_log);
            ExitCode::SUCCESS
        }
        Err(error) => failed(&anyhow::Error::new(error), &termination_log),
    }
}

/// Takes a base backup, then applies retention to base backups and WAL.
pub async fn base_backup(args: BaseBackupArgs) -> ExitCode {
    let termination_log = args.termination_log.clone();
    let result = async {
        let backup = args.series.backup(&args.pg.dbname)?;
        let storage = Storage::open(args.storage.config()?).await?;
        let manifest = base_backup::take(BaseBackupRequest {
            tools: &args.pg.tools(),
            connection: &args.pg.connection(),
            storage: &storage,
            backup: backup.clone(),
            run_id: args.series.run_id()?,
            compression: args.compression,
            verification: args.s3_verify,
        })
        .await?;
        let pruned = physical_retention::prune(&storage, &backup, args.retention as usize).await?;
        anyhow::Ok((manifest, pruned))
    };
    match result.await {
        Ok((manifest, pruned)) => {
            let summary = json!({
                "result": "Succeeded",
                "baseBackup": manifest,
                "prunedBaseBackups": pruned.base_backups,
                "prunedWalFiles": pruned.wal_files.len(),
            });
            let fallback = json!({"result": "Succeeded", "runId": manifest.run_id});
            publish_value(&summary, &fallback, &termination_log);
            ExitCode::SUCCESS
        }
        Err(error) => failed(&error, &termination_log),
    }
}

/// Fills the new Database's data directory for recovery; the server starting on it only
/// replays local files.
pub async fn prepare_recovery(args: PrepareRecoveryArgs) -> ExitCode {
    let termination_log = args.termination_log.clone();
    let result = async {
        let Some(database) = &args.series.backup_database else {
            anyhow::bail!(
                "prepare-recovery needs {}: the database name the backups are filed under",
                backup_job::env::BACKUP_DATABASE
            );
        };
        let backup = args.series.backup(database)?;
        let storage = Storage::open(args.storage.config()?).await?;
        let prepared = recovery_prepare::prepare(PrepareRequest {
            storage: &storage,
            backup,
            data_dir: args.data_dir.clone(),
            target_time: args.target_time,
            base_backup: args.series.run_id()?,
        })
        .await?;
        anyhow::Ok(prepared)
    };
    match result.await {
        Ok(prepared) => {
            let summary = json!({
                "result": "Succeeded",
                "baseBackup": prepared.base_backup,
                "timeline": prepared.timeline,
                "targetTime": prepared.target_time,
                "walFiles": prepared.wal_files.len(),
                "restorableTo": prepared.restorable_to,
                "partialTail": prepared.partial_tail,
            });
            publish_value(&summary, &summary, &termination_log);
            ExitCode::SUCCESS
        }
        Err(error) => failed(&error, &termination_log),
    }
}

fn failed(error: &anyhow::Error, termination_log: &Path) -> ExitCode {
    let error = describe(error.as_ref());
    tracing::error!("{error}");
    let mut message = error.clone();
    message.truncate(3500);
    let line = json!({"result": "Failed", "error": message});
    publish_value(&line, &line, termination_log);
    ExitCode::FAILURE
}
