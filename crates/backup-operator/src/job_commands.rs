//! The subcommands a Job runs (`dump`, `restore`, `purge`): the command line turned into a
//! request for the data path (`backup-data`), and the result left where the controller
//! reads it (`backup_job::report`).

use crate::cli::{Command, DumpArgs, PurgeArgs, RestoreArgs, VerifyArgs};
use anyhow::Context as _;
use backup_data::drill::server::ServerSettings;
use backup_data::drill::{DrillRequest, drill};
use backup_data::dump::{DumpRequest, dump};
use backup_data::restore::{RestoreRequest, restore};
use backup_data::storage::Storage;
use backup_job::report::{DEFAULT_TERMINATION_LOG, Outcome, RunSummary};
use backup_job::verify_report::{VerifyOutcome, VerifySummary};
use error_text::describe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Runs one Job's subcommand to its end; `run` is the controller's and never comes here.
pub async fn run(command: Command) -> ExitCode {
    match command {
        Command::Dump(args) => {
            let termination_log = args.termination_log.clone();
            finish(run_dump(args).await, &termination_log)
        }
        Command::Restore(args) => {
            let termination_log = args.termination_log.clone();
            finish(run_restore(args).await, &termination_log)
        }
        Command::Purge(args) => {
            let termination_log = args.termination_log.clone();
            match run_purge(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => finish(Err(error), &termination_log),
            }
        }
        Command::Verify(args) => {
            let termination_log = args.termination_log.clone();
            let outcome = match run_verify(args).await {
                Ok(summary) => VerifyOutcome::Passed(summary),
                Err(error) => {
                    let error = describe(error.as_ref());
                    tracing::error!("{error}");
                    VerifyOutcome::Failed { error }
                }
            };
            outcome.publish(&termination_log);
            match outcome {
                VerifyOutcome::Passed(_) => ExitCode::SUCCESS,
                VerifyOutcome::Failed { .. } => ExitCode::FAILURE,
            }
        }
        Command::ArchiveWal(args) => crate::physical_commands::archive_wal(args).await,
        Command::BaseBackup(args) => crate::physical_commands::base_backup(args).await,
        Command::DropWalSlot(args) => crate::physical_commands::drop_wal_slot(args).await,
        Command::PrepareRecovery(args) => crate::physical_commands::prepare_recovery(args).await,
        Command::Install(args) => match crate::install::install(&args.dir) {
            Ok(target) => {
                println!("installed {}", target.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("backup-operator install: {}", describe(&error));
                ExitCode::FAILURE
            }
        },
        Command::Run(_) => unreachable!("the controller is started before logging is set up"),
    }
}

/// Deletes a Backup's artifacts; the controller only needs the exit status, and the error
/// in the termination message when it fails.
async fn run_purge(args: PurgeArgs) -> anyhow::Result<()> {
    let backup = args.backup()?;
    let storage = Storage::open(args.storage.config()?).await?;
    let report = backup_data::purge::purge(&storage, &backup).await?;
    tracing::info!(
        deleted_runs = ?report.deleted_runs,
        removed_leftovers = ?report.removed_leftovers,
        "purged {}",
        storage.location(&backup.relative_dir())
    );
    Ok(())
}

async fn run_dump(args: DumpArgs) -> anyhow::Result<RunSummary> {
    let request = DumpRequest {
        connection: args.pg.connection(),
        tools: args.pg.tools(),
        backup: args.series.backup(&args.pg.dbname)?,
        run_id: args.series.run_id()?,
        retention: args.retention as usize,
        stale_after: args.stale_after(),
        verification: args.s3_verify,
        compression: args.compression,
        jobs: args.jobs,
        scratch_dir: args.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
    };
    let storage = Storage::open(args.storage.config()?).await?;
    let report = dump(&storage, &request, &cancel_on_signal()?).await?;
    Ok(RunSummary::from(&report))
}

async fn run_restore(args: RestoreArgs) -> anyhow::Result<RunSummary> {
    let request = RestoreRequest {
        connection: args.pg.connection(),
        tools: args.pg.tools(),
        backup: args.series.backup(&args.pg.dbname)?,
        run_id: args.series.run_id()?,
        temp_dir: args.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
        jobs: args.jobs,
        privileges: true,
    };
    let storage = Storage::open(args.storage.config()?).await?;
    let report = restore(&storage, &request, &cancel_on_signal()?).await?;
    Ok(RunSummary::from(&report))
}

/// A restore drill of one run into a throwaway server; the result says what it checked.
async fn run_verify(args: VerifyArgs) -> anyhow::Result<VerifySummary> {
    let request = DrillRequest {
        backup: args.backup()?,
        run_id: args.series.run_id()?,
        server: ServerSettings {
            bin_dir: args.pg_bin_dir.clone(),
            work_dir: args.work_dir.clone(),
            run_as: None,
        },
        query: args.query.clone(),
    };
    let storage = Storage::open(args.storage.config()?).await?;
    let report = drill(&storage, &request, &cancel_on_signal()?).await?;
    Ok(VerifySummary::from(&report))
}

fn finish(result: anyhow::Result<RunSummary>, termination_log: &Path) -> ExitCode {
    let (outcome, code) = match result {
        Ok(summary) => (Outcome::Succeeded(summary), ExitCode::SUCCESS),
        Err(error) => {
            let error = describe(error.as_ref());
            tracing::error!("{error}");
            (Outcome::Failed { error }, ExitCode::FAILURE)
        }
    };
    outcome.publish(termination_log);
    code
}

/// Help and version go to stdout as usual. A usage error is also reported
/// like any other failure, so the controller reads the reason from the
/// termination message instead of finding it empty.
pub fn refuse_arguments(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let _ = error.print();
    let termination_log = std::env::var_os(backup_job::env::TERMINATION_LOG_PATH)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TERMINATION_LOG));
    let message = error.render().to_string();
    Outcome::Failed {
        error: message.trim().to_owned(),
    }
    .publish(&termination_log);
    ExitCode::from(2)
}

/// SIGTERM (Pod deletion, Job deadline) and SIGINT cancel the run, which
/// then removes its partial artifact before exiting.
pub(crate) fn cancel_on_signal() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("could not listen for SIGINT")?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("signal received, cancelling");
        cancel.cancel();
    });
    Ok(token)
}
