//! Many objects at once: both operators, from one set of [`Binaries`] (or the
//! controller-runtime operator doing both jobs), watching one namespace into which `count`
//! Databases and one Backup of each are created. Measures the time until
//! everything is handled, the operators' API requests and writes, peak memory and CPU time,
//! the API server's CPU time, and then the operators' writes during a minute in which nothing
//! changes.

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use api::{Backup, Database, DatabasePhase};
use bench::{
    figures::{OperatorFigures, Scale, Window},
    objects,
};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Namespace};
use kube::{
    Api, Client, ResourceExt,
    api::PostParams,
    core::PartialObjectMeta,
    runtime::{WatchStreamExt, watcher},
};
use testenv::{AuditEvent, Cluster};

use crate::{binaries::Binaries, cpu, operators::RunningOperator};

/// Requests the benchmark keeps in flight while creating objects.
const CREATE_CONCURRENCY: usize = 8;
/// Without a reconcile by either operator for this long, they are taken to be done, and the
/// idle window opens. While they work, reconciles are well under a second apart.
const QUIET: Duration = Duration::from_secs(10);
/// How long deleting the namespace may take before the benchmark stops waiting.
const DELETE_TIMEOUT: Duration = Duration::from_secs(900);

/// What every run, at every size and from either set of binaries, does the same.
pub struct Settings {
    pub converge_timeout: Duration,
    pub idle: Duration,
}

/// Marks at the opening of a window, to count what happened after it.
struct Mark {
    at: DateTime<Utc>,
    reconciles: u64,
    log: usize,
    cpu_ticks: u64,
}

pub async fn run(
    cluster: &'static Cluster,
    settings: &Settings,
    binaries: &Binaries,
    count: usize,
) -> Result<Scale> {
    let ns = cluster.namespace("bench-scale").await?;
    let name = ns.name().to_string();
    binaries.grant_namespace(cluster, &name).await?;
    let mut operators = Vec::new();
    for program in binaries.programs() {
        operators.push(RunningOperator::start(cluster, program, binaries, &name).await?);
    }
    let measured = measure(cluster, &name, &operators, settings, binaries, count).await;
    let logs = || {
        operators
            .iter()
            .map(|o| format!("{} log:\n{}", o.program.name(), o.log_tail(20)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut scale = measured.with_context(logs)?;

    eprintln!("bench: deleting namespace {name}");
    let deleting = Instant::now();
    ns.cleanup().await?;
    drop(operators);
    let namespaces: Api<Namespace> = Api::all(cluster.admin_client());
    scale.deleted_in = match testenv::wait_deleted(&namespaces, &name, DELETE_TIMEOUT).await {
        Ok(()) => Some(deleting.elapsed()),
        Err(e) => {
            eprintln!("bench: {e:#}");
            None
        }
    };
    Ok(scale)
}

async fn measure(
    cluster: &Cluster,
    ns: &str,
    operators: &[RunningOperator],
    settings: &Settings,
    binaries: &Binaries,
    count: usize,
) -> Result<Scale> {
    let client = cluster.admin_client();
    let mut progress = tokio::spawn(converged(client.clone(), ns.to_string(), count));

    let api_server = cpu::api_server_pid(cluster);
    if api_server.is_none() {
        eprintln!("bench: no kube-apiserver process on this host; its CPU time is not measured");
    }
    let api_server_ticks = || api_server.and_then(|pid| cpu::ticks(pid).ok());
    let api_server_start = api_server_ticks();
    let start_marks = marks(operators).await?;
    let started = Instant::now();
    let started_at = Utc::now();
    create(&client, ns, count).await?;
    let created_in = started.elapsed();
    eprintln!("bench: created {count} Databases and {count} Backups in {created_in:?}");

    let (converged_at, reached) =
        match tokio::time::timeout(settings.converge_timeout, &mut progress).await {
            Ok(finished) => {
                let (at, reached) = finished.context("the convergence watch panicked")??;
                (Some(at), reached)
            }
            Err(_) => {
                progress.abort();
                (None, count_reached(&client, ns).await?)
            }
        };
    let converged_in = converged_at.map(|at| at - started);
    eprintln!("bench: converged after {converged_in:?}; reached {reached:?}");

    if !settled(operators, settings.converge_timeout).await? {
        eprintln!(
            "bench: the operators still reconciled after {:?}",
            settings.converge_timeout
        );
    }
    let idle_marks = marks(operators).await?;
    let api_server_cpu = api_server_start
        .zip(api_server_ticks())
        .map(|(start, end)| end.saturating_sub(start));
    eprintln!("bench: counting writes for {:?}", settings.idle);
    tokio::time::sleep(settings.idle).await;
    let end_marks = marks(operators).await?;
    let phases = phases(&client, ns).await?;

    let mut figures = Vec::new();
    for (i, operator) in operators.iter().enumerate() {
        let writes = |from: &Mark, to: &Mark| -> Result<Vec<AuditEvent>> {
            let all = cluster.audit_writes(&operator.program.username(), from.at)?;
            Ok(all
                .into_iter()
                .filter(|w| w.request_received_timestamp < to.at && w.namespace() == Some(ns))
                .collect())
        };
        let window = |from: &Mark, to: &Mark| -> Result<Window> {
            let writes = writes(from, to)?;
            let refused = writes
                .iter()
                .filter(|w| !w.code().is_some_and(|c| (200..300).contains(&c)))
                .count();
            let requests = operator.requests_since(from.log)?;
            let until_mark = operator.requests_since(to.log)?;
            Ok(Window {
                reconciles: to.reconciles - from.reconciles,
                audited_writes: writes.len(),
                refused_writes: refused,
                last_write: writes.last().map(|w| w.request_received_timestamp),
                requests: subtract(requests, &until_mark),
                cpu_ticks: to.cpu_ticks.saturating_sub(from.cpu_ticks),
            })
        };
        for write in writes(&idle_marks[i], &end_marks[i])?.iter().take(20) {
            eprintln!(
                "bench: {} wrote while idle: {write}",
                operator.program.name()
            );
        }
        let (peak_rss, rss_at_end) = operator.memory()?;
        figures.push(OperatorFigures {
            program: operator.program.name(),
            busy: window(&start_marks[i], &idle_marks[i])?,
            idle: window(&idle_marks[i], &end_marks[i])?,
            peak_rss,
            rss_at_end,
        });
    }
    let last_write = figures.iter().filter_map(|f| f.busy.last_write).max();
    let settled_in = last_write
        .map(|at| (at - started_at).to_std())
        .transpose()?;
    eprintln!("bench: last write of the burst {settled_in:?} after the first create");
    Ok(Scale {
        count,
        binaries: binaries.label.clone(),
        created_in,
        converged_in,
        settled_in,
        reached,
        idle: settings.idle,
        phases,
        operators: figures,
        api_server_cpu,
        deleted_in: None,
    })
}

/// Waits until neither operator has reconciled for [`QUIET`], by their reconcile counters;
/// false when that did not happen within `timeout`.
async fn settled(operators: &[RunningOperator], timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let (mut counts, mut changed) = (Vec::new(), Instant::now());
    loop {
        let mut now = Vec::new();
        for operator in operators {
            now.push(operator.reconciles().await?);
        }
        if now != counts {
            (counts, changed) = (now, Instant::now());
        } else if changed.elapsed() >= QUIET {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        // The counters are only offered by scraping.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn marks(operators: &[RunningOperator]) -> Result<Vec<Mark>> {
    let mut marks = Vec::new();
    for operator in operators {
        marks.push(Mark {
            at: Utc::now(),
            reconciles: operator.reconciles().await?,
            log: operator.log_mark()?,
            cpu_ticks: operator.cpu_ticks()?,
        });
    }
    Ok(marks)
}

fn subtract(
    mut all: BTreeMap<String, u64>,
    later: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    for (kind, n) in later {
        if let Some(total) = all.get_mut(kind) {
            *total -= n;
        }
    }
    all.retain(|_, n| *n > 0);
    all
}

fn database_name(i: usize) -> String {
    format!("db-{i:04}")
}

async fn create(client: &Client, ns: &str, count: usize) -> Result<()> {
    let databases: Api<Database> = Api::namespaced(client.clone(), ns);
    let backups: Api<Backup> = Api::namespaced(client.clone(), ns);
    stream::iter(0..count)
        .map(|i| {
            let (databases, backups) = (databases.clone(), backups.clone());
            async move {
                let name = database_name(i);
                let params = PostParams::default();
                databases
                    .create(&params, &objects::database(&name))
                    .await
                    .with_context(|| format!("creating Database {name}"))?;
                let backup = format!("{name}-nightly");
                backups
                    .create(&params, &objects::backup(&backup, &name))
                    .await
                    .with_context(|| format!("creating Backup {backup}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// The operators have done their part for a Database once it is past Pending and its
/// StatefulSet exists (its Pod is never scheduled, so it goes no further), and for a Backup
/// once it has a status for its current generation (it waits for the Database).
fn database_done(db: &Database) -> bool {
    db.status
        .as_ref()
        .and_then(|s| s.phase.as_ref())
        .is_some_and(|phase| *phase != DatabasePhase::Pending)
}

fn backup_done(backup: &Backup) -> bool {
    backup.status.as_ref().is_some_and(|s| {
        s.observed_generation.is_some() && s.observed_generation == backup.metadata.generation
    })
}

enum Seen {
    Database(String, bool),
    StatefulSet(String),
    Backup(String, bool),
}

/// Watches Databases, StatefulSets and Backups until all `count` of each are done; returns
/// when that was first seen, and the counts.
async fn converged(
    client: Client,
    ns: String,
    count: usize,
) -> Result<(Instant, (usize, usize, usize))> {
    let config = watcher::Config::default;
    let databases = watcher(Api::<Database>::namespaced(client.clone(), &ns), config())
        .default_backoff()
        .applied_objects()
        .map_ok(|db| Seen::Database(db.name_any(), database_done(&db)))
        .boxed();
    // Metadata only: the names are all that counts, and whole StatefulSets are large.
    let statefulsets = watcher(
        Api::<PartialObjectMeta<StatefulSet>>::namespaced(client.clone(), &ns),
        config(),
    )
    .default_backoff()
    .applied_objects()
    .map_ok(|sts| Seen::StatefulSet(sts.name_any()))
    .boxed();
    let backups = watcher(Api::<Backup>::namespaced(client, &ns), config())
        .default_backoff()
        .applied_objects()
        .map_ok(|b| Seen::Backup(b.name_any(), backup_done(&b)))
        .boxed();
    let mut seen = stream::select_all([databases, statefulsets, backups]);

    let (mut dbs, mut sets, mut bks) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut last_report = Instant::now();
    while let Some(event) = seen.next().await {
        match event {
            Ok(Seen::Database(name, true)) => {
                dbs.insert(name);
            }
            Ok(Seen::StatefulSet(name)) => {
                sets.insert(name);
            }
            Ok(Seen::Backup(name, true)) => {
                bks.insert(name);
            }
            Ok(_) => {}
            Err(e) => eprintln!("bench: watch error: {e}"),
        }
        let reached = (dbs.len(), sets.len(), bks.len());
        if reached.0 >= count && reached.1 >= count && reached.2 >= count {
            return Ok((Instant::now(), reached));
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "bench: {} Databases past Pending, {} StatefulSets, {} Backups with status",
                reached.0, reached.1, reached.2
            );
            last_report = Instant::now();
        }
    }
    anyhow::bail!("the watches ended")
}

/// The same counts from lists, when convergence timed out.
async fn count_reached(client: &Client, ns: &str) -> Result<(usize, usize, usize)> {
    let params = kube::api::ListParams::default();
    let dbs = Api::<Database>::namespaced(client.clone(), ns)
        .list(&params)
        .await?;
    let sets = Api::<StatefulSet>::namespaced(client.clone(), ns)
        .list_metadata(&params)
        .await?;
    let bks = Api::<Backup>::namespaced(client.clone(), ns)
        .list(&params)
        .await?;
    Ok((
        dbs.items.iter().filter(|d| database_done(d)).count(),
        sets.items.len(),
        bks.items.iter().filter(|b| backup_done(b)).count(),
    ))
}

/// `Databases <phase>` and `Backups <phase>` counts, from lists.
async fn phases(client: &Client, ns: &str) -> Result<BTreeMap<String, usize>> {
    let params = kube::api::ListParams::default();
    let mut phases = BTreeMap::new();
    let dbs = Api::<Database>::namespaced(client.clone(), ns)
        .list(&params)
        .await?;
    for db in &dbs.items {
        let phase = db.status.as_ref().and_then(|s| s.phase);
        let phase = phase.map_or("without a phase".into(), |p| format!("{p:?}"));
        *phases.entry(format!("Databases {phase}")).or_insert(0) += 1;
    }
    let bks = Api::<Backup>::namespaced(client.clone(), ns)
        .list(&params)
        .await?;
    for backup in &bks.items {
        let phase = backup.status.as_ref().and_then(|s| s.phase);
        let phase = phase.map_or("without a phase", |p| p.as_str());
        *phases.entry(format!("Backups {phase}")).or_insert(0) += 1;
    }
    Ok(phases)
}
