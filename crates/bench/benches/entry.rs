//! What the `main` of every benchmark on the cluster does around its run.

use std::future::Future;
use std::process::ExitCode;

/// Runs `run` when started by `cargo bench`, which passes `--bench`. `cargo test
/// --all-targets` runs benchmark targets too, without it, and a test run must neither start
/// minutes of benchmark nor put load or faults on the cluster. Ctrl-C stops `run` where it is;
/// dropping what it holds undoes a fault in place and deletes its namespaces.
pub async fn under_cargo_bench(
    name: &str,
    recipe: &str,
    run: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("{name}: not run outside `cargo bench` (`{recipe}`)");
        return ExitCode::SUCCESS;
    }
    let outcome = tokio::select! {
        outcome = run => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
