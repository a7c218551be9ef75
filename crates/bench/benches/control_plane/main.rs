//! `just bench`: the operators on the local control plane, as release binaries running on
//! this host under their own ServiceAccounts (docs/performance.md has the results).
//!
//! 1. Pod ready → Database Ready latency over `BENCH_LATENCY_DATABASES` (20) Databases, with
//!    this tree's database-operator.
//! 2. For each N in `BENCH_SIZES` (`100,1000`; or the single size `BENCH_OBJECTS`), N
//!    Databases with one Backup each, run once with this tree's binaries and once with those
//!    of the baseline commit `BENCH_BASELINE` (`HEAD~1`), back to back: time to converge,
//!    API requests and writes per Database, peak memory and CPU time of each operator, CPU
//!    time of the API server, then writes in `BENCH_IDLE_SECONDS` (60) of idleness. The
//!    baseline is built first, in release mode, from a worktree under
//!    `<target>/bench-baseline` (see `binaries`), so that the comparison is made on the same
//!    machine and cluster within minutes rather than against figures from another day.
//!    `BENCH_BASELINE=none` (or empty) measures this tree only. Then, at each N, the same
//!    with the controller-runtime operator of `bench/controller-runtime` (a Go operator doing
//!    both operators' job in one process, under its own ServiceAccount; `BENCH_COMPARE`,
//!    `controller-runtime` unless set, `none` skips it), built first with
//!    `hack/build-comparison-operator.sh`: the same objects, the same measurements, its
//!    requests counted from client-go's request log (see `comparison`).
//!
//! `BENCH_PARTS=latency` or `=scale` runs one part; `BENCH_CONVERGE_TIMEOUT_SECONDS` (1800)
//! bounds the wait for convergence; `BENCH_REQUEST_LOG=0` stops the operators from logging
//! each API request (the requests are then not counted). Each run uses its own namespace
//! (`bench-latency-*`, `bench-scale-*`) whose Pods are never scheduled, and deletes it after.
//! The results are printed as Markdown on stdout, progress on stderr.

mod binaries;
mod comparison;
mod conditions;
mod cpu;
#[path = "../entry.rs"]
mod entry;
mod latency;
mod latency_report;
mod operators;
mod scale;
mod scale_report;

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use bench::settings;

use crate::{
    binaries::Binaries,
    conditions::Conditions,
    scale_report::{Baseline, Compared},
};

#[tokio::main]
async fn main() -> ExitCode {
    entry::under_cargo_bench("control_plane", "just bench", run()).await
}

async fn run() -> Result<()> {
    let env = |name| std::env::var(name).ok();
    let parts = env("BENCH_PARTS").unwrap_or_else(|| "latency,scale".into());
    let latency_count = env_number("BENCH_LATENCY_DATABASES", 20)?;
    let sizes = settings::sizes(
        env("BENCH_SIZES").as_deref(),
        env("BENCH_OBJECTS").as_deref(),
    )?;
    let baseline_revision = settings::baseline(env("BENCH_BASELINE").as_deref());
    let compare = settings::compare(env("BENCH_COMPARE").as_deref())?;
    let settings = scale::Settings {
        converge_timeout: Duration::from_secs(env_number("BENCH_CONVERGE_TIMEOUT_SECONDS", 1800)?),
        idle: Duration::from_secs(env_number("BENCH_IDLE_SECONDS", 60)?),
    };
    let this = Binaries::this_tree()?;
    // Built before anything is measured, so that a build error costs no cluster time and the
    // build takes no CPU from a measurement.
    let baseline = match &baseline_revision {
        Some(revision) if parts.contains("scale") => Some(Binaries::baseline(revision).await?),
        _ => None,
    };
    let compared = match compare {
        Some(settings::Compare::ControllerRuntime) if parts.contains("scale") => {
            Some(Binaries::controller_runtime().await?)
        }
        _ => None,
    };
    let cluster = testenv::cluster().await?;

    if parts.contains("latency") {
        let before = Conditions::now(cluster).await?;
        eprintln!("bench: latency over {latency_count} Databases");
        let latency = latency::run(cluster, &this, latency_count).await?;
        latency_report::print_latency(&latency, &before, &Conditions::now(cluster).await?)?;
    }
    if parts.contains("scale") {
        let before = Conditions::now(cluster).await?;
        let mut runs = Vec::new();
        for &count in &sizes {
            for binaries in std::iter::once(&this).chain(&baseline).chain(&compared) {
                eprintln!(
                    "bench: {count} Databases and {count} Backups, binaries {}",
                    binaries.label
                );
                binaries.grant_rbac(cluster).await?;
                runs.push(scale::run(cluster, &settings, binaries, count).await?);
            }
        }
        // The cluster is shared with the tests: leave this tree's rules in place.
        this.grant_rbac(cluster).await?;
        let baseline_column = baseline.as_ref().zip(baseline_revision.as_deref());
        let baseline_column = baseline_column.map(|(b, revision)| Baseline {
            hash: &b.label,
            revision,
        });
        let version = match &compared {
            Some(_) => comparison::controller_runtime_version()?,
            None => String::new(),
        };
        let compared = compared.as_ref().map(|c| Compared {
            label: &c.label,
            version: &version,
            workers: operators::CONTROLLER_RUNTIME_WORKERS,
        });
        scale_report::print(
            &runs,
            baseline_column,
            compared,
            &before,
            &Conditions::now(cluster).await?,
        );
    }
    Ok(())
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .ok()
            .with_context(|| format!("{name}={value:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}
