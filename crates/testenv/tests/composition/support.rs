//! What every scenario needs: operators scoped to the test's namespace, applying manifests,
//! playing the kubelet, and reading conditions.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result};
use api::{Backup, Database, conditions};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
    core::DynamicObject,
};
use testenv::{Cluster, Operator, OperatorProcess};

/// How long a scenario waits for the operators to converge. Convergence takes well under a
/// second; the bound only has to survive a busy two-core machine.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The field manager the tests apply their objects with.
const TEST_MANAGER: &str = "composition-test";

/// Starts one operator as its own process, with its own ServiceAccount, watching only `ns`
/// so parallel tests do not reconcile each other's objects.
pub async fn start(cluster: &Cluster, operator: Operator, ns: &str) -> Result<OperatorProcess> {
    start_with_metrics(cluster, operator, ns, None).await
}

/// [`start`], serving `/metrics` on `metrics` (from [`free_port`]) instead of any free port,
/// for a test that scrapes it.
pub async fn start_with_metrics(
    cluster: &Cluster,
    operator: Operator,
    ns: &str,
    metrics: Option<SocketAddr>,
) -> Result<OperatorProcess> {
    let kubeconfig = cluster.operator_kubeconfig(operator).await?;
    let metrics = metrics.map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string());
    let mut args = vec!["--namespace", ns, "--metrics-address", &metrics];
    if operator == Operator::Backup {
        args.insert(0, "run");
    }
    // Debug for the operators' own crates: each reconcile logs "reconciled", which the restart
    // scenario counts.
    let log = "info,database_operator=debug,backup_operator=debug";
    OperatorProcess::spawn(operator, &kubeconfig, &args, &[("RUST_LOG", log)])
}

/// A port on 127.0.0.1 that was free a moment ago: bound to port 0 and released. Should
/// another process take it before the caller binds it, the caller's server fails to start.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Both operators, database-operator first.
pub async fn start_both(cluster: &Cluster, ns: &str) -> Result<(OperatorProcess, OperatorProcess)> {
    Ok((
        start(cluster, Operator::Database, ns).await?,
        start(cluster, Operator::Backup, ns).await?,
    ))
}

/// Reads a manifest from `deploy/samples`, unchanged.
pub fn sample(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/samples")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Server-side applies every document of a YAML manifest into `ns`, as a user would with
/// `kubectl apply --server-side`.
pub async fn apply_yaml(client: &Client, ns: &str, yaml: &str) -> Result<()> {
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document)?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject = serde_json::from_value(value)?;
        let types = object
            .types
            .clone()
            .context("manifest without apiVersion/kind")?;
        let name = object
            .metadata
            .name
            .clone()
            .context("manifest without a name")?;
        let (group, version) = match types.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), types.api_version.clone()),
        };
        let gvk = kube::core::GroupVersionKind::gvk(&group, &version, &types.kind);
        let resource = kube::core::ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        api.patch(
            &name,
            &PatchParams::apply(TEST_MANAGER),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {} {name}", types.kind))?;
    }
    Ok(())
}

/// Plays the kubelet for every Pod of a Database: marks it Running with a ready container.
/// Waits for the StatefulSet controller to create the Pods first.
pub async fn play_kubelet(
    client: &Client,
    ns: &str,
    database: &str,
    replicas: usize,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("{}={database}", api::names::LABEL_DATABASE);
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let list = pods.list(&ListParams::default().labels(&selector)).await?;
        if list.items.len() >= replicas {
            for pod in list.items {
                testenv::mark_pod_ready(&pods, &pod).await?;
            }
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the StatefulSet controller created {} of {replicas} Pods for {database}",
            list.items.len()
        );
        // The StatefulSet controller creates Pods within moments; a short poll of the list is
        // simpler than a watch here and bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The condition of `type_` on a Database, if any.
pub fn database_condition(db: &Database, type_: &str) -> Option<(String, String)> {
    db.status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// The condition of `type_` on a Backup, if any.
pub fn backup_condition(backup: &Backup, type_: &str) -> Option<(String, String)> {
    backup
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// A wait condition: the condition `type_` has this status and reason.
pub fn has_condition<K>(
    read: fn(&K, &str) -> Option<(String, String)>,
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
) -> impl Fn(Option<&K>) -> bool {
    move |object: Option<&K>| {
        object.and_then(|o| read(o, type_)) == Some((status.to_string(), reason.to_string()))
    }
}

/// Applies the seed lab's Database and Backup, plays the kubelet for the Database's Pod and
/// waits until the Database is Ready: where the scenarios that start from a Ready seed begin.
pub async fn seed_until_ready(
    client: &Client,
    ns: &str,
    operators: &[&OperatorProcess],
) -> Database {
    apply_yaml(client, ns, &sample("seed-database.yaml"))
        .await
        .unwrap();
    apply_yaml(client, ns, &sample("seed-backup.yaml"))
        .await
        .unwrap();
    play_kubelet(client, ns, "my-database", 1).await.unwrap();
    let databases: Api<Database> = Api::namespaced(client.clone(), ns);
    testenv::wait_for(&databases, "my-database", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(operators)))
}

/// A wait condition: the Backup has a run in flight.
pub fn run_in_flight(backup: Option<&Backup>) -> bool {
    backup
        .and_then(|b| b.status.as_ref())
        .is_some_and(|s| s.active_job.is_some())
}

/// A wait condition: the Database reports Ready for its current generation.
pub fn database_ready(db: Option<&Database>) -> bool {
    db.is_some_and(Database::is_ready)
}

/// The operators' logs, for failure messages.
pub fn logs(operators: &[&OperatorProcess]) -> String {
    operators
        .iter()
        .map(|o| o.log_tail(40))
        .collect::<Vec<_>>()
        .join("\n---\n")
}
