//! The `backup-operator` binary: `run` starts the controller, `dump`, `restore` and
//! `purge` are what its Jobs run (job_commands.rs), `verify` a restore drill and `install`
//! its init container. One binary, so one image serves both.

mod cli;
mod install;
mod job_commands;
mod physical_commands;

use clap::Parser as _;
use cli::{Cli, Command};
use error_text::describe;
use std::io::IsTerminal as _;
use std::process::ExitCode;

// Two workers whatever the node: the controllers wait on the API server, and a dump on
// pg_dump and the object store; tokio's default of one worker per core gives each its own
// stack and malloc arena, which only adds memory on a large node (docs/performance.md).
#[tokio::main(worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return job_commands::refuse_arguments(error),
    };
    // The controller sets up its own logging (--log-format) and has no JSON result.
    let command = match cli.command {
        Command::Run(args) => return run_controller(args).await,
        command => command,
    };
    // stdout carries only the JSON result; logs go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Pod logs are not terminals; colour codes would only be noise there.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    job_commands::run(command).await
}

async fn run_controller(args: backup_operator::controller::RunArgs) -> ExitCode {
    match backup_operator::controller::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("backup-operator run: {}", describe(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}
