//! The role label on the instances' Pods, which the Database's Services select on.

use anyhow::{Context, Result};
use api::names::LABEL_ROLE;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::Config;

/// Sets the role label of Pod `pod` (a merge patch of that label only).
pub async fn label(client: &kube::Client, config: &Config, pod: &str, role: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &config.namespace);
    let patch = json!({"metadata": {"labels": {LABEL_ROLE: role}}});
    match pods
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // A former primary whose Pod is gone needs no label.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("labelling Pod {pod} {role}")),
    }
}

/// The address of instance `pod` (its Pod IP), `None` while it has none. Peers are reached by
/// address, not by their DNS names: when a node is lost, one of the cluster DNS replicas may
/// be on it, and a lookup sent there waits out the resolver's timeout (5 s) before another
/// replica is asked, which would hold up the election by that much.
pub async fn address(client: &kube::Client, config: &Config, pod: &str) -> Result<Option<String>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &config.namespace);
    let found = pods
        .get_opt(pod)
        .await
        .with_context(|| format!("reading Pod {pod}"))?;
    Ok(found
        .and_then(|p| p.status)
        .and_then(|s| s.pod_ip)
        .filter(|ip| !ip.is_empty()))
}

/// The instances the StatefulSet has now: `<sts>-0` to `<sts>-(replicas-1)`.
pub async fn instances(client: &kube::Client, config: &Config) -> Result<Vec<String>> {
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(client.clone(), &config.namespace);
    let set = sets
        .get(&config.statefulset)
        .await
        .with_context(|| format!("reading StatefulSet {}", config.statefulset))?;
    let replicas = set.spec.and_then(|s| s.replicas).unwrap_or(1).max(0);
    Ok((0..replicas)
        .map(|i| format!("{}-{i}", config.statefulset))
        .collect())
}
