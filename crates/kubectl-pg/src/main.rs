//! `kubectl pg`: the day-2 commands for the PostgreSQL operators' Databases, as a kubectl
//! plugin (kubectl runs `kubectl-pg` from PATH for `kubectl pg ...`).
//!
//! Every API call goes through kube-rs with the user's own kubeconfig, so the plugin can do
//! exactly what the user may do and nothing more. A failure is one line on stderr naming what
//! is wrong and what to do, with exit code 1.

mod backup;
mod cli;
mod failure;
mod follow;
mod promote;
mod psql;
mod report;
mod restore;
mod status;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};
use failure::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(Failure::new(format!("cannot start: {error}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => fail(failure),
    }
}

fn fail(failure: Failure) -> ExitCode {
    eprintln!("error: {failure}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let target = cli::connect(&cli.global).await?;
    match cli.command {
        Command::Status { database, output } => status::run(&target, database, output).await,
        Command::Psql {
            database,
            replica,
            args,
        } => psql::run(&target, &database, replica, &args).await,
        Command::Backup {
            backup,
            now,
            wait,
            timeout,
            operator_timeout,
        } => {
            let timeouts = follow::Timeouts {
                pickup: operator_timeout,
                total: timeout,
            };
            backup::run(&target, &backup, now, wait, timeouts).await
        }
        Command::Restore {
            backup,
            to,
            run,
            time,
            name,
            no_wait,
            timeout,
            operator_timeout,
        } => {
            restore::run(
                &target,
                restore::Request {
                    backup,
                    database: to,
                    run,
                    time,
                    name,
                    wait: !no_wait,
                    timeouts: follow::Timeouts {
                        pickup: operator_timeout,
                        total: timeout,
                    },
                },
            )
            .await
        }
        Command::Report { database, output } => report::run(&target, &database, output).await,
        Command::Promote {
            database,
            instance,
            timeout,
        } => promote::run(&target, &database, &instance, timeout).await,
    }
}
