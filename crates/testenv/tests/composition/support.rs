//! What every scenario needs: operators scoped to the test's namespace, applying manifests,
//! playing the kubelet, and reading conditions.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result};
use api::{Backup, Database, conditions};
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
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
    play_kubelet_within(client, ns, database, replicas, CONVERGE).await
}

/// [`play_kubelet`], giving the StatefulSet controller `timeout` to create the Pods.
pub async fn play_kubelet_within(
    client: &Client,
    ns: &str,
    database: &str,
    replicas: usize,
    timeout: Duration,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    // The PostgreSQL Pods only: the Pods of backup Jobs carry the database label too.
    let selector = format!(
        "app.kubernetes.io/name=postgresql,{}={database}",
        api::names::LABEL_DATABASE
    );
    for pod in wait_for_pods(client, ns, &selector, replicas, timeout).await? {
        testenv::mark_pod_ready(&pods, &pod).await?;
    }
    Ok(())
}

/// Waits until at least `count` Pods match the label `selector` (a controller creates them
/// within moments), and returns them.
pub async fn wait_for_pods(
    client: &Client,
    ns: &str,
    selector: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let list = pods.list(&ListParams::default().labels(selector)).await?;
        if list.items.len() >= count {
            return Ok(list.items);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} Pods matching {selector} were created within {timeout:?}",
            list.items.len()
        );
        // A short poll of the list is simpler than a watch here and bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Plays the kubelet for the Pod of a Backup's run in flight: it finishes and reports a
/// verified dump in its termination message, as `backup-operator dump` does (see the
/// backup-operator's `report` module). Returns the run id.
pub async fn finish_backup_run(client: &Client, ns: &str, backup: &Backup) -> Result<String> {
    let name = backup
        .metadata
        .name
        .clone()
        .context("a Backup without a name")?;
    let job_name = backup
        .status
        .as_ref()
        .and_then(|s| s.active_job.clone())
        .with_context(|| format!("Backup {name} has no run in flight"))?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let job = jobs.get(&job_name).await?;
    let run_id = job
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(api::names::LABEL_RUN_ID))
        .cloned()
        .with_context(|| format!("Job {job_name} has no run id label"))?;
    let selector = format!("batch.kubernetes.io/job-name={job_name}");
    let pod = wait_for_pods(client, ns, &selector, 1, CONVERGE)
        .await?
        .remove(0);
    let database = &backup.spec.database_ref.name;
    let summary = serde_json::json!({
        "location": format!("/backups/{database}/{name}/{run_id}/dump.pgdump"),
        "sizeBytes": 4096,
        "sha256": "ab".repeat(32),
        "runId": run_id,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "serverVersion": "17.0",
        "pruned": [],
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    testenv::mark_pod_succeeded(&pods, &pod, &summary.to_string()).await?;
    Ok(run_id)
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

/// A wait condition: the Backup's latest run Completed and the status says where it is.
pub fn backup_completed(backup: Option<&Backup>) -> bool {
    backup.and_then(|b| b.status.as_ref()).is_some_and(|s| {
        s.phase == Some(api::BackupPhase::Completed) && s.backup_location.is_some()
    })
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

/// What both operators log at the end of every reconcile.
pub const RECONCILED: &str = "reconciled";

pub fn log_count(operator: &testenv::OperatorProcess, needle: &str) -> usize {
    std::fs::read_to_string(operator.log_path())
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Waits until the operator's log holds more than `seen` lines with `needle`.
pub async fn wait_for_more_logs(operator: &testenv::OperatorProcess, needle: &str, seen: usize) {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while log_count(operator, needle) <= seen {
        assert!(
            tokio::time::Instant::now() < deadline,
            "operator logged no new {needle:?}:\n{}",
            operator.log_tail(40)
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
