//! Playing the kubelet in namespaces whose Pods are never scheduled: a test or benchmark
//! decides when a Pod is running and ready, or has finished its work, and the operators see
//! what a kubelet would report.
//!
//! A Pod must be bound to a Node for the EndpointSlice controller to publish it as a Service
//! endpoint (it looks the Node up), so each Pod is first bound, as the scheduler would, to a
//! Node object that no kubelet runs: [`NO_KUBELET_NODE`]. A taint keeps the real scheduler
//! from placing anything else there, and nothing runs on it, so the Pod's status is ours.
//! The harness also plays that Node's kubelet heartbeat (its Lease and Ready condition),
//! or the node lifecycle controller would mark it unreachable and its Pods not ready.

use anyhow::{Context, Result};
use chrono::{SecondsFormat, Utc};
use std::{sync::Once, time::Duration};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

/// How often the fake Node's heartbeat is renewed: well inside the node lifecycle
/// controller's 40-second grace period.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// The Node the tests' Pods are bound to; it exists only as an API object.
pub const NO_KUBELET_NODE: &str = "testenv-no-kubelet";

/// Binds `pod` to [`NO_KUBELET_NODE`] (creating that Node once), then marks it Running with
/// every container started and ready, through the status subresource, as a kubelet does once
/// the readiness probes pass.
pub async fn mark_pod_ready(pods: &Api<Pod>, pod: &Pod) -> Result<()> {
    let name = bind(pods, pod).await?;
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&ready_status(pod)),
    )
    .await
    .with_context(|| format!("marking pod {name} ready"))?;
    Ok(())
}

/// Binds `pod` like [`mark_pod_ready`], then reports it Succeeded: every container ran and
/// exited 0, leaving `message` in its termination message, as a kubelet does when the Pod of
/// a Job finishes its work.
pub async fn mark_pod_succeeded(pods: &Api<Pod>, pod: &Pod, message: &str) -> Result<()> {
    let name = bind(pods, pod).await?;
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&succeeded_status(pod, message)),
    )
    .await
    .with_context(|| format!("marking pod {name} succeeded"))?;
    Ok(())
}

/// Binds an unbound Pod to [`NO_KUBELET_NODE`], as the scheduler would; returns its name.
async fn bind<'a>(pods: &Api<Pod>, pod: &'a Pod) -> Result<&'a str> {
    let name = pod.metadata.name.as_deref().context("pod without a name")?;
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some()
    {
        return Ok(name);
    }
    let client = pods.clone().into_client();
    ensure_node(&Api::all(client.clone())).await?;
    heartbeat(&client).await?;
    keep_heartbeat_going().await?;
    let binding = Binding {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(NO_KUBELET_NODE.into()),
            ..ObjectReference::default()
        },
    };
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await
    .with_context(|| format!("binding pod {name} to {NO_KUBELET_NODE}"))?;
    Ok(name)
}

/// Creates the kubelet-less Node once; an existing one is left as it is.
async fn ensure_node(nodes: &Api<Node>) -> Result<()> {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": NO_KUBELET_NODE, "labels": {"testenv.pg-operators.dev/no-kubelet": "true"}},
        "spec": {"taints": [{"key": "testenv.pg-operators.dev/no-kubelet", "effect": "NoSchedule"}]}
    }))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e).context("creating the kubelet-less test Node"),
    }
}

/// Renews the fake Node's Lease and reports it Ready, as its kubelet would.
async fn heartbeat(client: &Client) -> Result<()> {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": NO_KUBELET_NODE},
        "spec": {"holderIdentity": NO_KUBELET_NODE, "leaseDurationSeconds": 40, "renewTime": now}
    });
    let params = PatchParams::apply("testenv-kubelet").force();
    leases
        .patch(NO_KUBELET_NODE, &params, &Patch::Apply(&lease))
        .await
        .context("renewing the test Node's Lease")?;
    let nodes: Api<Node> = Api::all(client.clone());
    let status = json!({"status": {"conditions": [{
        "type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "testenv plays this node's kubelet", "lastHeartbeatTime": now, "lastTransitionTime": now
    }]}});
    nodes
        .patch_status(
            NO_KUBELET_NODE,
            &PatchParams::default(),
            &Patch::Strategic(&status),
        )
        .await
        .context("reporting the test Node Ready")?;
    Ok(())
}

/// Starts, once per process, a thread that renews the heartbeat until the process exits.
/// It has its own runtime and client: each test's runtime ends with the test.
async fn keep_heartbeat_going() -> Result<()> {
    static STARTED: Once = Once::new();
    let cluster = crate::cluster().await?;
    STARTED.call_once(|| {
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the heartbeat");
            runtime.block_on(async {
                let client = cluster.admin_client();
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    if let Err(e) = heartbeat(&client).await {
                        eprintln!("testenv: heartbeat of {NO_KUBELET_NODE} failed: {e:#}");
                    }
                }
            });
        });
    });
    Ok(())
}

/// The status patch [`mark_pod_ready`] sends.
fn ready_status(pod: &Pod) -> serde_json::Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let containers = container_statuses(pod, true, json!({"running": {"startedAt": now}}));
    json!({
        "status": {
            "phase": "Running",
            // Inside the node's Pod range, never handed out by it (the namespace has no node).
            "podIP": "10.244.0.250",
            "startTime": now,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": containers,
        }
    })
}

/// The status patch [`mark_pod_succeeded`] sends.
fn succeeded_status(pod: &Pod, message: &str) -> serde_json::Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let terminated = json!({"terminated": {
        "exitCode": 0, "reason": "Completed", "message": message,
        "startedAt": now, "finishedAt": now
    }});
    let containers = container_statuses(pod, false, terminated);
    json!({
        "status": {
            "phase": "Succeeded",
            "podIP": "10.244.0.250",
            "startTime": now,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
            ],
            "containerStatuses": containers,
        }
    })
}

/// One status per container of `pod`, each in `state`; `running` sets `ready` and `started`.
fn container_statuses(
    pod: &Pod,
    running: bool,
    state: serde_json::Value,
) -> Vec<serde_json::Value> {
    pod.spec
        .iter()
        .flat_map(|spec| spec.containers.iter())
        .map(|c| {
            json!({
                "name": c.name, "image": c.image, "imageID": "", "ready": running,
                "restartCount": 0, "started": running, "state": state
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn every_container_is_reported_ready() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: ["postgres", "exporter"]
                    .map(|name| Container {
                        name: name.to_string(),
                        image: Some(format!("{name}:1")),
                        ..Container::default()
                    })
                    .to_vec(),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let status = &ready_status(&pod)["status"];
        assert_eq!(status["phase"], "Running");
        let statuses = status["containerStatuses"].as_array().unwrap();
        assert_eq!(statuses.len(), 2);
        assert!(statuses.iter().all(|c| c["ready"] == true));
        assert_eq!(statuses[1]["image"], "exporter:1");
        let ready = &status["conditions"].as_array().unwrap()[2];
        assert_eq!(
            (&ready["type"], &ready["status"]),
            (&json!("Ready"), &json!("True"))
        );
    }

    #[test]
    fn a_succeeded_pod_leaves_its_message() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "backup".into(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let status = &succeeded_status(&pod, "{\"runId\":\"r1\"}")["status"];
        assert_eq!(status["phase"], "Succeeded");
        let terminated = &status["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(terminated["exitCode"], 0);
        assert_eq!(terminated["message"], "{\"runId\":\"r1\"}");
    }
}
