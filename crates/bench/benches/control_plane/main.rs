//! `just bench`: the operators on the local control plane, as release binaries running on
//! this host under their own ServiceAccounts (docs/performance.md has the results).
//!
//! 1. Pod ready → Database Ready latency over `BENCH_LATENCY_DATABASES` (20) Databases.
//! 2. `BENCH_OBJECTS` (1000) Databases with one Backup each: time to converge, peak memory,
//!    API requests per reconcile, then writes in `BENCH_IDLE_SECONDS` (60) of idleness.
//!
//! `BENCH_PARTS=latency` or `=scale` runs one part; `BENCH_CONVERGE_TIMEOUT_SECONDS` (1800)
//! bounds the wait for convergence; `BENCH_REQUEST_LOG=0` stops the operators from logging
//! each API request (the requests are then not counted). Each part uses its own namespace
//! (`bench-latency-*`, `bench-scale-*`) whose Pods are never scheduled, and deletes it after.
//! The results are printed as Markdown on stdout, progress on stderr.

mod latency;
mod operators;
mod scale;

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, Result, bail};
use bench::{
    readings::mib,
    stats::{Summary, ms},
};
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, api::ListParams};
use testenv::Cluster;

#[tokio::main]
async fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this without it, and a
    // test run must not start a ten-minute benchmark. Settings come from the environment.
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("control_plane: not run outside `cargo bench` (`just bench`)");
        return ExitCode::SUCCESS;
    }
    let outcome = tokio::select! {
        outcome = run() => outcome,
        // Returning drops the namespaces, which deletes them.
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

async fn run() -> Result<()> {
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "latency,scale".into());
    let latency_count = env_number("BENCH_LATENCY_DATABASES", 20)?;
    let settings = scale::Settings {
        count: env_number("BENCH_OBJECTS", 1000)?,
        converge_timeout: Duration::from_secs(env_number("BENCH_CONVERGE_TIMEOUT_SECONDS", 1800)?),
        idle: Duration::from_secs(env_number("BENCH_IDLE_SECONDS", 60)?),
    };
    let cluster = testenv::cluster().await?;

    if parts.contains("latency") {
        let before = Conditions::now(cluster).await?;
        eprintln!("bench: latency over {latency_count} Databases");
        let latency = latency::run(cluster, latency_count).await?;
        print_latency(&latency, &before, &Conditions::now(cluster).await?)?;
    }
    if parts.contains("scale") {
        let before = Conditions::now(cluster).await?;
        eprintln!("bench: {} Databases and {0} Backups", settings.count);
        let scale = scale::run(cluster, &settings).await?;
        print_scale(&scale, &before, &Conditions::now(cluster).await?);
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

/// The state of the machine and the cluster around a measurement.
struct Conditions {
    time: chrono::DateTime<chrono::Utc>,
    load: String,
    /// Test namespaces of other runs on the shared cluster: other work going on.
    other_namespaces: usize,
}

impl Conditions {
    async fn now(cluster: &Cluster) -> Result<Conditions> {
        let load = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
        let namespaces: Api<Namespace> = Api::all(cluster.admin_client());
        let tests = namespaces
            .list_metadata(&ListParams::default().labels("testenv.pg-operators.dev/test"))
            .await
            .context("listing test namespaces")?;
        let other_namespaces = tests
            .items
            .iter()
            .filter(|ns| {
                !ns.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("bench-"))
            })
            .count();
        Ok(Conditions {
            time: chrono::Utc::now(),
            load: load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            other_namespaces,
        })
    }
}

fn describe(before: &Conditions, after: &Conditions) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "Measured {} UTC at commit {}; {cores} cores; load average {} before, {} after; \
         {} and {} test namespaces of other runs on the cluster before and after; release \
         binaries.",
        before.time.format("%Y-%m-%d %H:%M"),
        commit(),
        before.load,
        after.load,
        before.other_namespaces,
        after.other_namespaces,
    )
}

/// The checked-out commit, marked when the operators' sources differ from it.
fn commit() -> String {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
    };
    let hash = git(&["rev-parse", "--short", "HEAD"])
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let operators = [
        "crates/api",
        "crates/operator-runtime",
        "crates/database-operator",
        "crates/backup-operator",
        "crates/backup-job",
        "crates/backup-data",
        "crates/secret",
        "crates/error-text",
    ];
    let clean = git(&[&["diff", "--quiet", "HEAD", "--"][..], &operators].concat())
        .is_ok_and(|o| o.status.success());
    if clean {
        hash
    } else {
        format!("{hash} with uncommitted changes to the operators")
    }
}

fn print_latency(
    latency: &latency::Latency,
    before: &Conditions,
    after: &Conditions,
) -> Result<()> {
    let Some(ready) = Summary::of(&latency.ready) else {
        bail!("no Database was measured");
    };
    let summary = |sample: &[Duration]| Summary::of(sample).expect("as many as `ready`");
    println!("### Pod ready → Database Ready\n");
    println!("{}\n", describe(before, after));
    println!("| from | to | median | p95 | min | max |");
    println!("|---|---|---|---|---|---|");
    let row = |from: &str, to: &str, sample: &[Duration]| {
        let s = summary(sample);
        println!(
            "| {from} | {to} | {} | {} | {} | {} |",
            ms(s.median),
            ms(s.p95),
            ms(s.min),
            ms(s.max)
        );
    };
    row("Pod Ready", "Database Ready", &latency.ready);
    row(
        "Pod Ready",
        "StatefulSet counts the ready replica",
        &latency.statefulset_counted,
    );
    row(
        "Pod Ready",
        "EndpointSlice of the client Service has it",
        &latency.endpoint_published,
    );
    row(
        "the later of those two",
        "Database Ready (the operator's part)",
        &latency.operator,
    );
    row(
        "Database created",
        "Pod exists (for context)",
        &latency.pod_created,
    );
    println!(
        "\n{} Databases one after another; the first one before them (warm-up, not counted) \
         took {}.\n",
        ready.count,
        ms(latency.warm_up)
    );
    let all: Vec<_> = latency.ready.iter().map(|d| ms(*d)).collect();
    println!("Every value: {}.\n", all.join(", "));
    Ok(())
}

fn print_scale(scale: &scale::Scale, before: &Conditions, after: &Conditions) {
    let n = scale.count;
    println!("### {n} Databases and {n} Backups\n");
    println!("{}\n", describe(before, after));
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let (dbs, sets, backups) = scale.reached;
    println!("| | |\n|---|---|");
    println!(
        "| all objects created (8 requests in flight) | {} |",
        secs(scale.created_in)
    );
    match scale.converged_in {
        Some(d) => println!("| converged (from the first create) | {} |", secs(d)),
        None => println!("| converged | not within the timeout |"),
    }
    match scale.settled_in {
        Some(d) => println!(
            "| last write before the operators were idle | {} |",
            secs(d)
        ),
        None => println!("| idle | not within the timeout |"),
    }
    println!(
        "| reached | {dbs} Databases past Pending, {sets} StatefulSets, {backups} Backups with status |"
    );
    let phases: Vec<_> = scale
        .phases
        .iter()
        .map(|(p, n)| format!("{n} {p}"))
        .collect();
    println!("| phases after the idle window | {} |", phases.join(", "));
    match scale.deleted_in {
        Some(d) => println!(
            "| namespace deleted, everything in it gone | {} |\n",
            secs(d)
        ),
        None => println!("| namespace deleted | still terminating after 15 min |\n"),
    }

    let row = |label: &str, cell: &dyn Fn(&scale::OperatorFigures) -> String| {
        let cells: Vec<_> = scale.operators.iter().map(cell).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    let names: Vec<_> = scale.operators.iter().map(|o| o.operator.name()).collect();
    println!("| | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    row("reconciles until idle", &|o| o.busy.reconciles.to_string());
    row("writes (API server audit log), of them refused", &|o| {
        format!("{}, {}", o.busy.audited_writes, o.busy.refused_writes)
    });
    let logged = operators::requests_logged();
    if logged {
        row("requests (client log): reads + writes", &|o| {
            format!("{} + {}", o.busy.reads(), o.busy.writes())
        });
        row("requests per reconcile (client log)", &|o| {
            per(o.busy.reads() + o.busy.writes(), o.busy.reconciles)
        });
    }
    row("accepted writes per reconcile (audit log)", &|o| {
        per(
            (o.busy.audited_writes - o.busy.refused_writes) as u64,
            o.busy.reconciles,
        )
    });
    row("peak RSS (VmHWM)", &|o| mib(o.peak_rss));
    row("RSS at the end", &|o| mib(o.rss_at_end));
    let idle = format!("{} s idle", scale.idle.as_secs());
    row(&format!("{idle}: writes (audit log)"), &|o| {
        o.idle.audited_writes.to_string()
    });
    if logged {
        row(&format!("{idle}: requests (client log)"), &|o| {
            (o.idle.reads() + o.idle.writes()).to_string()
        });
    }
    row(&format!("{idle}: reconciles"), &|o| {
        o.idle.reconciles.to_string()
    });
    println!();
    if !logged {
        println!("Requests were not logged (BENCH_REQUEST_LOG=0).\n");
        return;
    }
    for o in &scale.operators {
        let kinds: Vec<_> = o
            .busy
            .requests
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "{} requests until idle: {}.\n",
            o.operator.name(),
            kinds.join(", ")
        );
    }
}

fn per(count: u64, reconciles: u64) -> String {
    if reconciles == 0 {
        return "-".into();
    }
    format!("{:.2}", count as f64 / reconciles as f64)
}
