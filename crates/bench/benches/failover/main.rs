//! `just bench-failover`: failover, switchover and replication lag of one replicated Database
//! on the three-node cluster (`PGOP_NODE=1 PGOP_NODES=3`; docs/performance.md has the results).
//!
//! One Database of three instances, one per node, in a namespace of its own
//! (`bench-failover-*`), with this tree's database-operator (the release build) running on this
//! host. A client commits through the read-write Service every 50 ms throughout
//! (`scenarios::replication::Writer`, each commit on its own connection, a connect timeout of
//! 2 s). For each kind of
//! [`bench::failover::Kind`] in `BENCH_FAILOVER_KINDS` (all), `BENCH_FAILOVER_RUNS` (10) times
//! in a row on the same Database: wait until it is settled (every instance answers, one of
//! them out of recovery, both standbys stream from it, the status agrees, and the client's
//! commits reach it), put the fault on the primary (or ask for a switchover), and measure from
//! the moment the fault's command is issued (for a killed postmaster, from the kill itself)
//! until the first commit acknowledged by another server than the old primary (the same
//! address with a postmaster started again counts as another server); then undo the fault.
//! Then, with the client stopped, pgbench (TPC-B, scale 1, held to `BENCH_LAG_RATE`
//! transactions per second) through the read-write Service for `BENCH_LAG_SECONDS` (60; 0
//! skips it), the standbys' replay lag read from the primary's pg_stat_replication every
//! second.
//!
//! The results are printed as Markdown on stdout, progress on stderr. Interrupted, it undoes
//! the fault in place and deletes its namespace.

#[path = "../control_plane/conditions.rs"]
mod conditions;
#[path = "../entry.rs"]
mod entry;
mod lag;
mod runs;

use std::process::ExitCode;

use anyhow::{Context, Result};
use bench::failover::{self, Kind, Measured, Settings};
use k8s_openapi::api::core::v1::Pod;
use scenarios::Scenario;
use scenarios::replication::{self, NAME, Writer};

use crate::conditions::{Conditions, describe};

#[tokio::main]
async fn main() -> ExitCode {
    entry::under_cargo_bench("failover", "just bench-failover", run()).await
}

async fn run() -> Result<()> {
    let env = |name| std::env::var(name).ok();
    let settings = Settings::from_values(
        env("BENCH_FAILOVER_RUNS").as_deref(),
        env("BENCH_FAILOVER_KINDS").as_deref(),
        env("BENCH_LAG_SECONDS").as_deref(),
        env("BENCH_LAG_RATE").as_deref(),
    )?;
    let cluster = testenv::cluster().await?;
    let before = Conditions::now(cluster).await?;
    let mut scenario = Scenario::on_node("bench-failover").await;
    eprintln!("bench: a Database of three instances");
    replication::ready_database(&mut scenario, 3).await;
    let image = instance_manager_image(&scenario).await?;
    let rw = replication::service_ip(&scenario, NAME).await;
    let writer = Writer::start(&scenario, &rw).await;

    let mut measured = Vec::new();
    for &kind in &settings.kinds {
        let mut runs = Vec::new();
        for run in 1..=settings.runs {
            let primary = runs::settle(&scenario, &writer).await;
            eprintln!(
                "bench: {} {run}/{}: primary {} on {}",
                kind.name(),
                settings.runs,
                primary.name,
                primary.node
            );
            let measured = match kind {
                Kind::Switchover => runs::switchover(&scenario, &writer, &primary).await?,
                _ => runs::fault(&scenario, &writer, &primary, kind).await?,
            };
            eprintln!(
                "bench: {} {run}/{}: first write on the new primary after {:?}, writes paused {:?}",
                kind.name(),
                settings.runs,
                measured.to_new_primary,
                measured.paused
            );
            runs.push(measured);
        }
        measured.push(Measured { kind, runs });
    }
    // Back to three streaming instances before the next part, or the next benchmark.
    let primary = runs::settle(&scenario, &writer).await;
    let written = writer.stop().await;
    let client = format!(
        "The client started {} commits in {:.0} s, of which {} were acknowledged.",
        written.attempted,
        written.ran.as_secs_f64(),
        written.acknowledged.len()
    );
    eprintln!("bench: {client}");

    let lag = match settings.lag_seconds {
        0 => None,
        _ => Some(lag::measure(&scenario, &rw, &primary, &settings).await?),
    };
    let after = Conditions::now(cluster).await?;
    let conditions = format!(
        "{} The Pods' instance managers are {image}.",
        describe(&before, &after)
    );
    if !measured.is_empty() {
        print_failover(&settings, &measured, &conditions, &client);
    }
    if let Some(lag) = lag {
        lag::print(&settings, &lag, &conditions);
    }
    scenario.finish().await;
    Ok(())
}

fn print_failover(settings: &Settings, measured: &[Measured], conditions: &str, client: &str) {
    println!("### Failover and switchover\n");
    println!("{conditions}\n");
    println!(
        "{} runs of each kind, one after another on the same Database of three instances; \
         a client starts a commit through the read-write Service every 50 ms. {client}\n",
        settings.runs
    );
    println!("{}\n", failover::failover_table(measured));
    println!("Every run:\n\n{}\n", failover::every_run(measured));
}

/// The image the Pods' instance managers were copied from, with its digest: the cluster is
/// shared, and its nodes run whichever build was imported last.
async fn instance_manager_image(scenario: &Scenario) -> Result<String> {
    let pods = replication::pods(scenario).await;
    let status = pods
        .iter()
        .filter_map(|pod: &Pod| pod.status.as_ref()?.init_container_statuses.as_ref())
        .flatten()
        .find(|c| c.name == "install-instance-manager")
        .context("no Pod of the Database reports its install-instance-manager container")?;
    let digest = status
        .image_id
        .rsplit_once(':')
        .map_or(status.image_id.as_str(), |(_, hash)| hash);
    Ok(format!(
        "`{}` (image {})",
        status.image,
        &digest[..digest.len().min(12)]
    ))
}
