//! Pod ready → Database Ready: how long the operator takes to notice that its Pod became
//! ready and say so, without the time a real Pod takes to start.
//!
//! In a namespace whose Pods are never scheduled the benchmark plays the kubelet: for one
//! Database at a time it waits for the StatefulSet controller to create Pod `<db>-0` and
//! marks it Running and Ready (`testenv::mark_pod_ready`, which first binds it to a Node no
//! kubelet runs). Watches on Pods, StatefulSets, EndpointSlices and Databases, running for the
//! whole benchmark, note when each was first seen ready, so the time from the Pod's Ready to
//! the Database's splits into what the StatefulSet controller (counting the ready replica),
//! the EndpointSlice controller (publishing the Pod behind the client Service) and, after
//! the later of the two, the operator took.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use api::{Database, names};
use bench::objects;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use testenv::{Cluster, Operator};
use tokio::sync::mpsc;

use crate::{
    binaries::Binaries,
    operators::{Program, RunningOperator},
};

/// Bound on each step, far above what any takes: only a stuck run hits it.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Label the EndpointSlice controller puts on each slice with the name of its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub struct Latency {
    /// The first Database, not counted: it pays for connections and caches warming up.
    pub warm_up: Duration,
    /// Pod seen Ready → Database seen Ready, one per Database.
    pub ready: Vec<Duration>,
    /// Pod seen Ready → the StatefulSet's status counts the ready replica.
    pub statefulset_counted: Vec<Duration>,
    /// Pod seen Ready → an EndpointSlice of the client Service has it as a ready endpoint.
    pub endpoint_published: Vec<Duration>,
    /// The later of those two → Database seen Ready: the operator's part (0 when the operator,
    /// which watches the Pod and the slices itself, was first).
    pub operator: Vec<Duration>,
    /// Database created → its Pod exists (operator and StatefulSet controller), for context.
    pub pod_created: Vec<Duration>,
}

pub async fn run(cluster: &'static Cluster, binaries: &Binaries, count: usize) -> Result<Latency> {
    let ns = cluster.namespace("bench-latency").await?;
    let operator = RunningOperator::start(
        cluster,
        Program::Ours(Operator::Database),
        binaries,
        ns.name(),
    )
    .await?;
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
    let mut seen = watch_ready(&client, ns);

    let mut result = Latency {
        warm_up: Duration::ZERO,
        ready: Vec::with_capacity(count),
        statefulset_counted: Vec::with_capacity(count),
        endpoint_published: Vec::with_capacity(count),
        operator: Vec::with_capacity(count),
        pod_created: Vec::with_capacity(count),
    };
    for i in 0..=count {
        let name = format!("latency-{i:02}");
        let created = Instant::now();
        databases
            .create(&PostParams::default(), &objects::database(&name))
            .await
            .with_context(|| format!("creating Database {name}"))?;
        let pod_name = format!("{}-0", names::statefulset(&name));
        let exists = |pod: Option<&Pod>| pod.is_some();
        let pod = testenv::wait_for(&pods, &pod_name, exists, STEP_TIMEOUT).await?;
        let pod_created = created.elapsed();

        // The instance manager's part: no manager runs without a node, so the bench labels the
        // Pod the primary, before it is ready (the Service selects on the label).
        let role =
            serde_json::json!({"metadata": {"labels": {names::LABEL_ROLE: names::ROLE_PRIMARY}}});
        pods.patch(
            &pod_name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&role),
        )
        .await
        .with_context(|| format!("labelling Pod {pod_name} primary"))?;
        testenv::mark_pod_ready(&pods, &pod).await?;
        let pod_ready = seen.wait(Ready::Pod(pod_name)).await?;
        let counted = seen
            .wait(Ready::StatefulSet(names::statefulset(&name)))
            .await?;
        let published = seen
            .wait(Ready::Endpoint(names::client_service(&name)))
            .await?;
        let database = seen.wait(Ready::Database(name.clone())).await?;
        let after_pod = |at: Instant| at.saturating_duration_since(pod_ready);
        let (ready, counted_after, published_after) = (
            after_pod(database),
            after_pod(counted),
            after_pod(published),
        );
        eprintln!(
            "bench: {name}: Pod created after {pod_created:?}; after the Pod was Ready: \
             StatefulSet {counted_after:?}, EndpointSlice {published_after:?}, Database {ready:?}"
        );
        if i == 0 {
            result.warm_up = ready;
        } else {
            result.ready.push(ready);
            result.statefulset_counted.push(counted_after);
            result.endpoint_published.push(published_after);
            result
                .operator
                .push(database.saturating_duration_since(counted.max(published)));
            result.pod_created.push(pod_created);
        }
    }
    Ok(result)
}

/// What was seen ready, by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Ready {
    /// The Pod's Ready condition is True.
    Pod(String),
    /// The StatefulSet's status counts a ready replica.
    StatefulSet(String),
    /// An EndpointSlice of this Service has a ready endpoint backed by a Pod.
    Endpoint(String),
    /// The Database is Ready for its generation.
    Database(String),
}

/// When each object was first seen ready, fed by watches that run for the whole benchmark,
/// so no change is missed between two waits.
struct ReadyTimes {
    events: mpsc::UnboundedReceiver<Result<(Ready, Instant)>>,
    seen: HashMap<Ready, Instant>,
}

fn watch_ready(client: &Client, ns: &str) -> ReadyTimes {
    let pods = watch(client, ns, |pod: &Pod| {
        let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        let ready = conditions
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then(|| Ready::Pod(pod.name_any()))
    });
    let statefulsets = watch(client, ns, |sts: &StatefulSet| {
        let ready = sts.status.as_ref().and_then(|s| s.ready_replicas);
        (ready >= Some(1)).then(|| Ready::StatefulSet(sts.name_any()))
    });
    let endpoints = watch(client, ns, |slice: &EndpointSlice| {
        let service = slice.labels().get(SERVICE_NAME_LABEL)?;
        let ready = slice.endpoints.iter().flatten().any(|endpoint| {
            let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
            let pod = endpoint.target_ref.as_ref().and_then(|r| r.kind.as_deref());
            ready != Some(false) && pod == Some("Pod") && !endpoint.addresses.is_empty()
        });
        ready.then(|| Ready::Endpoint(service.clone()))
    });
    let databases = watch(client, ns, |db: &Database| {
        db.is_ready().then(|| Ready::Database(db.name_any()))
    });
    let mut all = stream::select_all([pods, statefulsets, endpoints, databases]);
    let (sender, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = all.next().await {
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

/// The objects of one kind in `ns` as they change, each mapped by `ready`.
fn watch<K>(
    client: &Client,
    ns: &str,
    ready: fn(&K) -> Option<Ready>,
) -> std::pin::Pin<Box<dyn Stream<Item = Result<Option<Ready>>> + Send>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let kind = K::kind(&());
    watcher(
        Api::<K>::namespaced(client.clone(), ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .map_ok(move |object| ready(&object))
    .map_err(move |e| anyhow::Error::new(e).context(format!("watching {kind}s")))
    .boxed()
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
                Err(_) => bail!("{what:?} was not seen ready within {STEP_TIMEOUT:?}"),
            }
        }
    }
}
