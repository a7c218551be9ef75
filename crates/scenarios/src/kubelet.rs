//! Playing the kubelet in a namespace without a node: the real StatefulSet controller creates
//! the Pods, the tests mark them Running and Ready, and the controller reports the StatefulSet
//! ready exactly as with a node.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};

use crate::CONVERGE;

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
        label_role(&pods, &pod).await?;
    }
    Ok(())
}

/// Plays the instance manager too: without a node no manager runs, so the test labels Pod
/// `-0` the primary and the others standbys, as the managers would after a first start.
async fn label_role(pods: &Api<Pod>, pod: &Pod) -> Result<()> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let role = if name.ends_with("-0") {
        api::names::ROLE_PRIMARY
    } else {
        api::names::ROLE_REPLICA
    };
    let patch = serde_json::json!({"metadata": {"labels": {api::names::LABEL_ROLE: role}}});
    pods.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
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
