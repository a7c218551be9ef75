//! What the PostgreSQL Pods say about why a Database is not ready. Pure.
//!
//! The StatefulSet only counts ready Pods; the reasons (a wrong image, a crash loop, a
//! missing Secret key, no node with room) are in the Pods' container states and conditions,
//! and that is what a user needs to see in the Database's status.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::ResourceExt;

/// Container waiting reasons that will not go away without a change from the user.
pub const FAILURE_REASONS: [&str; 5] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
];

/// Longest kubelet message copied into a condition; image pull errors can be long.
const MAX_MESSAGE: usize = 600;

/// A Pod stuck for a reason that needs the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodFailure {
    /// One of [`FAILURE_REASONS`].
    pub reason: String,
    /// Pod, container, the kubelet's message and what to do.
    pub message: String,
}

/// The instances, ordered by Pod name, with the role their managers labelled them with, the
/// timeline they report and, for standbys, their lag as the primary reports it; and that
/// report.
pub fn instances(pods: &[Pod]) -> (Vec<api::InstanceStatus>, Option<api::ReplicationReport>) {
    let mut instances: Vec<api::InstanceStatus> = pods
        .iter()
        .map(|pod| api::InstanceStatus {
            name: pod.name_any(),
            role: pod.labels().get(api::names::LABEL_ROLE).cloned(),
            ready: is_ready(pod),
            timeline: crate::replication::timeline(pod),
            lag_bytes: None,
        })
        .collect();
    instances.sort_by(|a, b| a.name.cmp(&b.name));
    let report = primary(&instances).and_then(|name| {
        pods.iter()
            .find(|p| p.name_any() == name)
            .and_then(crate::replication::report)
    });
    crate::replication::add_lag(&mut instances, report.as_ref());
    (instances, report)
}

/// The instance labelled primary; with two so labelled for a moment (a failover relabels the
/// former primary right after taking its Lease), the ready one.
pub fn primary(instances: &[api::InstanceStatus]) -> Option<String> {
    let primaries = || {
        instances
            .iter()
            .filter(|i| i.role.as_deref() == Some(api::names::ROLE_PRIMARY))
    };
    primaries()
        .find(|i| i.ready)
        .or_else(|| primaries().next())
        .map(|i| i.name.clone())
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The first failing container of the first Pod (by name) that has one.
pub fn failure(pods: &[Pod]) -> Option<PodFailure> {
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by_key(|p| p.name_any());
    pods.into_iter().find_map(pod_failure)
}

fn pod_failure(pod: &Pod) -> Option<PodFailure> {
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten();
    containers.into_iter().find_map(|c| {
        let waiting = c.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        if !FAILURE_REASONS.contains(&reason) {
            return None;
        }
        let kubelet = truncate(waiting.message.as_deref().unwrap_or("no message"));
        Some(PodFailure {
            reason: reason.to_string(),
            message: format!(
                "Pod {}: container {}: {reason}: {kubelet}{}; {}",
                pod.name_any(),
                c.name,
                last_exit(c),
                hint(reason, &pod.name_any()),
            ),
        })
    })
}

/// Why a Pod has not started yet while that may still resolve by itself (no node has room,
/// the volume is not bound yet): shown while the Database is Deploying.
pub fn pending_note(pods: &[Pod]) -> Option<String> {
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by_key(|p| p.name_any());
    pods.into_iter().find_map(|pod| {
        let condition = pod
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        Some(format!(
            "Pod {} is not scheduled ({}): {}",
            pod.name_any(),
            condition.reason.as_deref().unwrap_or("Unknown"),
            truncate(condition.message.as_deref().unwrap_or("no message")),
        ))
    })
}

fn last_exit(c: &ContainerStatus) -> String {
    c.last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| {
            format!(
                " (last exit code {}{})",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

fn hint(reason: &str, pod: &str) -> String {
    match reason {
        "CrashLoopBackOff" => format!(
            "PostgreSQL keeps exiting: see `kubectl logs {pod} --previous`, then fix spec.resources, spec.image or the data volume"
        ),
        "CreateContainerConfigError" => {
            "the container cannot be configured: check that the credentials Secret exists with all its keys".to_string()
        }
        _ => "check spec.image: the image must exist and be pullable from the cluster".to_string(),
    }
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}...", &message[..cut]),
        None => message.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    /// A PostgreSQL Pod whose container waits with `reason` (None: running and ready).
    pub fn pod(name: &str, reason: Option<&str>, message: &str) -> Pod {
        let state = match reason {
            Some(reason) => json!({"waiting": {"reason": reason, "message": message}}),
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "prod"},
            "status": {
                "phase": "Running",
                "containerStatuses": [{
                    "name": "postgres", "image": "postgres", "imageID": "", "ready": reason.is_none(),
                    "restartCount": 0, "state": state,
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }],
            },
        }))
        .unwrap_or_else(|e| panic!("pod fixture: {e}"))
    }

    /// A Pod the scheduler could not place.
    pub fn unschedulable(name: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "prod"},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                "message": "0/3 nodes are available: 3 Insufficient memory."}],
            },
        }))
        .unwrap_or_else(|e| panic!("pod fixture: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{pod, unschedulable};
    use super::*;

    #[test]
    fn failure_reasons_table() {
        let rows = [
            ("ImagePullBackOff", true),
            ("ErrImagePull", true),
            ("InvalidImageName", true),
            ("CrashLoopBackOff", true),
            ("CreateContainerConfigError", true),
            ("ContainerCreating", false),
            ("PodInitializing", false),
        ];
        for (reason, fails) in rows {
            let got = failure(&[pod("shop-0", Some(reason), "kubelet says")]);
            assert_eq!(got.is_some(), fails, "{reason}");
            if let Some(f) = got {
                assert_eq!(f.reason, reason);
                assert!(
                    f.message.starts_with("Pod shop-0: container postgres: "),
                    "{}",
                    f.message
                );
                assert!(f.message.contains("kubelet says"), "{}", f.message);
            }
        }
    }

    #[test]
    fn healthy_pods_do_not_fail_and_the_first_failing_pod_is_named() {
        assert_eq!(failure(&[pod("shop-0", None, "")]), None);
        let pods = [
            pod("shop-2", Some("ErrImagePull"), "b"),
            pod("shop-0", None, ""),
            pod("shop-1", Some("CrashLoopBackOff"), "a"),
        ];
        let got = failure(&pods).map(|f| f.reason);
        assert_eq!(got.as_deref(), Some("CrashLoopBackOff"));
    }

    #[test]
    fn crash_loops_name_the_last_exit_and_what_to_do() {
        let got = failure(&[pod("shop-0", Some("CrashLoopBackOff"), "back-off 10s")]);
        let message = got.map(|f| f.message).unwrap_or_default();
        assert!(message.contains("last exit code 1, Error"), "{message}");
        assert!(
            message.contains("kubectl logs shop-0 --previous"),
            "{message}"
        );
    }

    #[test]
    fn long_kubelet_messages_are_cut() {
        let long = "x".repeat(5000);
        let got = failure(&[pod("shop-0", Some("ErrImagePull"), &long)]);
        let len = got.map(|f| f.message.len()).unwrap_or_default();
        assert!(len < 1000, "{len}");
    }

    #[test]
    fn unscheduled_pods_are_noted() {
        let note = pending_note(&[pod("shop-0", None, ""), unschedulable("shop-1")]);
        assert_eq!(
            note.as_deref(),
            Some(
                "Pod shop-1 is not scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient memory."
            )
        );
        assert_eq!(pending_note(&[pod("shop-0", None, "")]), None);
    }
}
