//! `just bench-backup`'s cluster part: time to Ready of a Database recovered from a physical
//! Backup of a 1 GiB database, on the local cluster (`PGOP_NODE=1`; docs/performance.md has
//! the results).
//!
//! In a namespace of its own (`bench-recovery-*`), with this tree's operators (release builds)
//! on this host: a source Database filled by `pgbench -i -s BENCH_RECOVERY_SCALE` (70, about
//! 1 GiB), a physical Backup of it with the default settings (a base backup at once, WAL
//! archived continuously), then `BENCH_RECOVERY_LOAD_SECONDS` (60) of unthrottled pgbench so
//! there is WAL to replay. A new Database recovered from that Backup to the end of the archive
//! is applied, and timed until its initial Restore (fetching and verifying the base backup and
//! the WAL onto its claim) completes and until it is Ready (replayed, promoted, taking
//! writes). The recovered database must hold what the source held: the same rows in
//! `pgbench_history` and the same sum of balances.
//!
//! The results are printed as Markdown on stdout, progress on stderr. Interrupted, it deletes
//! its namespace.

#[path = "../control_plane/conditions.rs"]
mod conditions;
#[path = "../entry.rs"]
mod entry;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::{Backup, Database, Restore};
use kube::Api;
use scenarios::pitr::{recovered_database, server_now, wait_recoverable_to};
use scenarios::{Pgbench, Scenario, database_ready, node_database, psql};
use serde_json::json;

use crate::conditions::{Conditions, describe};

const SOURCE: &str = "source";
const BACKUP: &str = "source-pitr";
const RECOVERED: &str = "recovered";
/// Local-path volumes are not held to their size; this only keeps the operator's WAL limits,
/// which follow the volume's size, above what the load writes.
const VOLUME: &str = "8Gi";
/// pgbench -i at scale 70 takes minutes on two shared cores, more beside other work.
const SLOW_STEP: Duration = Duration::from_secs(1800);

#[tokio::main]
async fn main() -> ExitCode {
    entry::under_cargo_bench("recovery", "just bench-backup", run()).await
}

fn setting(name: &str, default: u64) -> Result<u64> {
    bench::settings::number(name, std::env::var(name).ok().as_deref(), default)
}

/// What one recovery measured.
struct Recovered {
    database_bytes: u64,
    base_backup_bytes: i64,
    wal_bytes: u64,
    load_tps: Option<f64>,
    restore_done: Duration,
    ready: Duration,
}

async fn run() -> Result<()> {
    let scale = setting("BENCH_RECOVERY_SCALE", 70)?;
    let load_seconds = setting("BENCH_RECOVERY_LOAD_SECONDS", 60)?;
    let cluster = testenv::cluster().await?;
    let before = Conditions::now(cluster).await?;
    let mut scenario = Scenario::on_node("bench-recovery").await;
    scenario.start_both().await;
    let recovered = measure(&scenario, scale, load_seconds).await;
    let after = Conditions::now(cluster).await?;
    let recovered = match recovered {
        Ok(recovered) => recovered,
        Err(e) => bail!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()),
    };
    print(&recovered, scale, load_seconds, &describe(&before, &after));
    scenario.finish().await;
    Ok(())
}

async fn measure(scenario: &Scenario, scale: u64, load_seconds: u64) -> Result<Recovered> {
    let client = scenario.client();
    let ns = scenario.ns();
    let databases: Api<Database> = scenario.api();
    let backups: Api<Backup> = scenario.api();
    let restores: Api<Restore> = scenario.api();
    let sql = |database: &'static str, sql: &'static str| psql(&client, ns, database, sql);

    let source = node_database(SOURCE).storage(VOLUME);
    scenario.apply(&source.manifest()).await;
    testenv::wait_for(&databases, SOURCE, database_ready, scenarios::POD_START).await?;
    // psql waits out kube-proxy's first seconds on a new Service; pgbench would not.
    sql(SOURCE, "SELECT 1").await?;
    let pgbench = Pgbench::connect(&client, ns, SOURCE, None).await?;
    eprintln!("bench: pgbench -i -s {scale}");
    pgbench.init(scale).await?;
    let database_bytes = sql(SOURCE, "SELECT pg_database_size(current_database())")
        .await?
        .parse()?;

    eprintln!("bench: a physical Backup, its first base backup");
    let backup = testkit::backup(BACKUP, SOURCE).set("/spec/method", json!("physical"));
    scenario.apply(&backup.manifest()).await;
    let ready = |b: Option<&Backup>| b.is_some_and(Backup::is_ready);
    let backup = testenv::wait_for(&backups, BACKUP, ready, SLOW_STEP).await?;
    let base_backup_bytes = backup
        .status
        .as_ref()
        .and_then(|s| s.history.last())
        .context("a ready Backup without a base backup in its history")?
        .size_bytes;

    let wal_before = sql(SOURCE, "SELECT pg_current_wal_lsn()").await?;
    eprintln!("bench: pgbench for {load_seconds} s, WAL to replay");
    let load = pgbench
        .run(&["-c", "4", "-j", "2", "-T", &load_seconds.to_string()])
        .await?;
    let end = server_now(&client, ns, SOURCE).await?;
    let wal_bytes = psql(
        &client,
        ns,
        SOURCE,
        &format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{wal_before}')::bigint"),
    )
    .await?
    .parse()?;
    let expected = sql(SOURCE, CONTENT).await?;
    wait_recoverable_to(&client, ns, SOURCE, BACKUP, &end).await?;

    eprintln!("bench: a Database recovered to the end of the archive");
    let started = Instant::now();
    scenario
        .apply(
            &recovered_database(RECOVERED, BACKUP, None, &source)
                .storage(VOLUME)
                .manifest(),
        )
        .await;
    let restore = api::names::initial_restore(RECOVERED);
    let completed = |r: Option<&Restore>| {
        r.and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.completion_time.is_some())
    };
    testenv::wait_for(&restores, &restore, completed, SLOW_STEP).await?;
    let restore_done = started.elapsed();
    testenv::wait_for(&databases, RECOVERED, database_ready, SLOW_STEP).await?;
    let ready = started.elapsed();

    let recovered = sql(RECOVERED, CONTENT).await?;
    if recovered != expected {
        bail!("the recovered database holds {recovered}, the source {expected}");
    }
    Ok(Recovered {
        database_bytes,
        base_backup_bytes,
        wal_bytes,
        load_tps: bench::failover::pgbench_tps(&load),
        restore_done,
        ready,
    })
}

/// What the source held at the end: every transaction pgbench committed leaves a row in
/// pgbench_history and moves a balance.
const CONTENT: &str = "SELECT (SELECT count(*) FROM pgbench_history) || ' history rows, balances ' || \
     (SELECT sum(abalance) FROM pgbench_accounts)";

fn print(r: &Recovered, scale: u64, load_seconds: u64, conditions: &str) {
    const MIB: f64 = 1024.0 * 1024.0;
    const GIB: f64 = MIB * 1024.0;
    let replay = r.ready.saturating_sub(r.restore_done);
    let tps = r.load_tps.map_or(String::new(), |tps| {
        format!(" ({tps:.0} transactions per second)")
    });
    println!("### Recovery on the cluster: time to Ready\n");
    println!("{conditions}\n");
    println!(
        "A Database of {:.0} MiB (`pgbench -i -s {scale}`), its first base backup \
         ({:.0} MiB stored), then {load_seconds} s of pgbench{tps}: {:.0} MiB of WAL after the \
         base backup. A new Database recovered from the Backup to the end of the archive, \
         timed from `kubectl apply`; it held the source's rows and balances.\n",
        r.database_bytes as f64 / MIB,
        r.base_backup_bytes as f64 / MIB,
        r.wal_bytes as f64 / MIB,
    );
    println!("| step | time |");
    println!("|---|---|");
    println!(
        "| Restore Job done: base backup and WAL fetched, verified, unpacked | {:.1} s |",
        r.restore_done.as_secs_f64()
    );
    println!(
        "| then replayed, promoted, Ready (Pod start included) | {:.1} s |",
        replay.as_secs_f64()
    );
    println!("| **time to Ready** | **{:.1} s** |", r.ready.as_secs_f64());
    println!(
        "\nWAL replayed per minute, Pod start included: {:.2} GiB.\n",
        r.wal_bytes as f64 / GIB / (replay.as_secs_f64() / 60.0).max(f64::EPSILON)
    );
}
