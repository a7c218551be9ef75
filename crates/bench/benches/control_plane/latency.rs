//! Pod ready → Database Ready: how long the operator takes to notice that its Pod became
//! ready and say so, without the time a real Pod takes to start.
//!
//! In a namespace whose Pods are never scheduled the benchmark plays the kubelet: for one
//! Database at a time it waits for the StatefulSet controller to create Pod `<db>-0`, marks it
//! Running and Ready, and times from just before that status patch is sent until a watch on
//! Databases sees the Database Ready. Between the two lie the StatefulSet controller (it
//! counts the ready replica), the operator's reconcile and its status patch, and the watch;
//! a watch on StatefulSets splits the time between the StatefulSet controller and the operator.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use api::Database;
use bench::objects;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
use kube::{
    Api, Client, ResourceExt,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use testenv::{Cluster, Operator};
use tokio::sync::mpsc;

use crate::operators::RunningOperator;

/// Bound on each step, far above what any takes: only a stuck run hits it.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Latency {
    /// The first Database, not counted: it pays for connections and caches warming up.
    pub warm_up: Duration,
    /// Pod ready patch → Database Ready, one per Database.
    pub ready: Vec<Duration>,
    /// Pod ready patch → the StatefulSet's status counts the ready replica (the
    /// StatefulSet controller's part).
    pub statefulset_counted: Vec<Duration>,
    /// StatefulSet seen ready → Database seen Ready (the operator's part; it also watches the
    /// Pod, so it may finish first, then this is 0).
    pub operator: Vec<Duration>,
    /// Database created → its Pod exists (operator and StatefulSet controller), for context.
    pub pod_created: Vec<Duration>,
}

pub async fn run(cluster: &'static Cluster, count: usize) -> Result<Latency> {
    let ns = cluster.namespace("bench-latency").await?;
    let operator = RunningOperator::start(cluster, Operator::Database, ns.name()).await?;
    let measured = measure(cluster.admin_client(), ns.name(), count)
        .await
        .with_context(|| format!("database-operator log:\n{}", operator.log_tail(40)));
    ns.cleanup().await?;
    drop(operator);
    measured
}

async fn measure(client: Client, ns: &str, count: usize) -> Result<Latency> {
    let databases: Api<Database> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut watches = watch_ready(client, ns);

    let mut result = Latency {
        warm_up: Duration::ZERO,
        ready: Vec::with_capacity(count),
        statefulset_counted: Vec::with_capacity(count),
        operator: Vec::with_capacity(count),
        pod_created: Vec::with_capacity(count),
    };
    for i in 0..=count {
        let name = format!("latency-{i:02}");
        let created = Instant::now();
        databases
            .create(&PostParams::default(), &objects::database(&name)?)
            .await
            .with_context(|| format!("creating Database {name}"))?;
        let pod_name = format!("{}-0", api::names::statefulset(&name));
        let exists = |pod: Option<&Pod>| pod.is_some();
        let pod = testenv::wait_for(&pods, &pod_name, exists, STEP_TIMEOUT).await?;
        let pod_created = created.elapsed();

        let patched = Instant::now();
        testenv::mark_pod_ready(&pods, &pod).await?;
        let sts_name = api::names::statefulset(&name);
        let counted = watches.wait(Ready::StatefulSet(sts_name)).await?;
        let database_ready = watches.wait(Ready::Database(name.clone())).await?;
        let (ready, counted, operator) = (
            database_ready - patched,
            counted - patched,
            database_ready.saturating_duration_since(counted),
        );
        eprintln!(
            "bench: {name}: Pod created after {pod_created:?}; after the Pod's ready patch: \
             StatefulSet ready {counted:?}, Database Ready {ready:?}"
        );
        if i == 0 {
            result.warm_up = ready;
        } else {
            result.ready.push(ready);
            result.statefulset_counted.push(counted);
            result.operator.push(operator);
            result.pod_created.push(pod_created);
        }
    }
    Ok(result)
}

/// What became ready: a Database (Ready condition for its generation) or a StatefulSet (one
/// ready replica, counted by the StatefulSet controller).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Ready {
    Database(String),
    StatefulSet(String),
}

/// When each object was first seen ready, fed by watches that run for the whole benchmark,
/// so no change is missed between two waits.
struct ReadyTimes {
    events: mpsc::UnboundedReceiver<Result<(Ready, Instant)>>,
    seen: HashMap<Ready, Instant>,
}

fn watch_ready(client: Client, ns: &str) -> ReadyTimes {
    let (sender, events) = mpsc::unbounded_channel();
    let databases = watcher(
        Api::<Database>::namespaced(client.clone(), ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .map_ok(|db| db.is_ready().then(|| Ready::Database(db.name_any())))
    .map_err(|e| anyhow::Error::new(e).context("watching Databases"));
    let statefulsets = watcher(
        Api::<StatefulSet>::namespaced(client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .map_ok(|sts| {
        let ready = sts.status.as_ref().and_then(|s| s.ready_replicas);
        (ready >= Some(1)).then(|| Ready::StatefulSet(sts.name_any()))
    })
    .map_err(|e| anyhow::Error::new(e).context("watching StatefulSets"));
    let mut stream = stream::select(databases.boxed(), statefulsets.boxed());
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(Some(ready)) => Ok((ready, Instant::now())),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            if sender.send(event).is_err() {
                return;
            }
        }
    });
    ReadyTimes {
        events,
        seen: HashMap::new(),
    }
}

impl ReadyTimes {
    async fn wait(&mut self, what: Ready) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(at) = self.seen.get(&what) {
                return Ok(*at);
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok((ready, at)))) => {
                    self.seen.entry(ready).or_insert(at);
                }
                // The watchers retry with a backoff; their errors are only worth a note.
                Ok(Some(Err(e))) => eprintln!("bench: {e:#}"),
                Ok(None) => bail!("the watches ended"),
                Err(_) => bail!("{what:?} was not ready within {STEP_TIMEOUT:?}"),
            }
        }
    }
}
