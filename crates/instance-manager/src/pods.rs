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
