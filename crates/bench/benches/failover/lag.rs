//! Replication lag under a steady write load: pgbench through the read-write Service, held to
//! a fixed rate, and each standby's replay lag read from the primary every second.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use bench::failover::{self, Settings};
use scenarios::replication::{self, NAME};
use scenarios::{Pgbench, Scenario};

use crate::runs::Primary;

/// Bytes of WAL each standby has not replayed yet, as the primary's instance manager reports
/// them into `status.instances[].lagBytes`.
const LAG: &str = "SELECT string_agg(application_name || '|' || \
     coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint, ',') \
     FROM pg_stat_replication";

/// pgbench's clients and threads.
const CLIENTS: &str = "4";
const THREADS: &str = "2";

pub struct Lag {
    /// Per standby, its lag in bytes at each reading.
    samples: BTreeMap<String, Vec<u64>>,
    /// Readings taken (each has a row per standby then streaming).
    readings: usize,
    /// The throughput pgbench reports.
    tps: Option<f64>,
}

pub async fn measure(
    scenario: &Scenario,
    rw: &str,
    primary: &Primary,
    settings: &Settings,
) -> Result<Lag> {
    let pgbench = Pgbench::connect(&scenario.client(), scenario.ns(), NAME, Some(rw)).await?;
    eprintln!("bench: pgbench -i -s 1");
    pgbench.init(1).await?;
    eprintln!(
        "bench: pgbench at {} transactions per second for {} s on {}",
        settings.lag_rate, settings.lag_seconds, primary.name
    );
    let load = pgbench.start(&[
        "-c",
        CLIENTS,
        "-j",
        THREADS,
        "-R",
        &settings.lag_rate.to_string(),
        "-T",
        &settings.lag_seconds.to_string(),
    ])?;
    let load = tokio::spawn(load.wait_with_output());
    let mut samples: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut readings = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The first tick is at once, before pgbench has connected.
    tick.tick().await;
    loop {
        tick.tick().await;
        if load.is_finished() {
            break;
        }
        match replication::psql_on(scenario, &primary.ip, LAG).await {
            Ok(rows) => {
                readings += 1;
                for (standby, bytes) in failover::lag_rows(&rows) {
                    samples.entry(standby).or_default().push(bytes);
                }
            }
            Err(e) => eprintln!("bench: no lag reading this second: {e:#}"),
        }
    }
    let output = load.await??;
    if !output.status.success() {
        bail!(
            "pgbench: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(Lag {
        samples,
        readings,
        tps: failover::pgbench_tps(&String::from_utf8_lossy(&output.stdout)),
    })
}

pub fn print(settings: &Settings, lag: &Lag, conditions: &str) {
    println!("### Replication lag under pgbench\n");
    println!("{conditions}\n");
    let tps = lag.tps.map_or("no throughput reported".to_string(), |tps| {
        format!("{tps:.1} transactions per second")
    });
    println!(
        "pgbench (TPC-B, scale 1, {CLIENTS} clients) held to {} transactions per second \
         through the read-write Service for {} s: {tps}. Every second, {} readings in all, \
         each standby's replay lag on the primary: `pg_current_wal_lsn() − replay_lsn` from \
         `pg_stat_replication`, what `status.instances[].lagBytes` reports.\n",
        settings.lag_rate, settings.lag_seconds, lag.readings
    );
    println!("{}\n", failover::lag_table(&lag.samples));
}
