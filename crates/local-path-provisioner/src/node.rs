//! The node for a claim no scheduler placed (a class with Immediate binding): the Ready node
//! holding the fewest of our volumes, so such claims spread over the cluster.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use k8s_openapi::api::core::v1::{Node, PersistentVolume};

use crate::layout;
use crate::volume;

/// A node whose Ready condition is True; one that is NotReady or Unknown would leave the
/// volume unusable until it recovers.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Among the Ready `nodes`, the one pinning the fewest of our `volumes`; ties go to the
/// smallest name, so the choice is the same whatever order the API lists them in.
pub fn least_used<'a>(nodes: &'a [Node], volumes: &[PersistentVolume]) -> Result<&'a str> {
    let mut held: BTreeMap<&str, usize> = nodes
        .iter()
        .filter(|n| is_ready(n))
        .filter_map(|n| n.metadata.name.as_deref())
        .map(|name| (name, 0))
        .collect();
    for pv in volumes.iter().filter(|pv| volume::provisioned_by_us(pv)) {
        if let Some(count) = layout::node_of(pv).and_then(|n| held.get_mut(n)) {
            *count += 1;
        }
    }
    held.into_iter()
        .min_by_key(|&(name, count)| (count, name))
        .map(|(name, _)| name)
        .ok_or_else(|| {
            anyhow!(
                "no Node is Ready to hold the volume of a claim with Immediate binding; \
                 retrying until one is (check `kubectl get nodes` and the node's kubelet log)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus, PersistentVolumeSpec};
    use kube::api::ObjectMeta;

    fn node(name: &str, ready: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(NodeStatus {
                conditions: Some(vec![
                    NodeCondition {
                        type_: "MemoryPressure".into(),
                        status: "False".into(),
                        ..NodeCondition::default()
                    },
                    NodeCondition {
                        type_: "Ready".into(),
                        status: ready.into(),
                        ..NodeCondition::default()
                    },
                ]),
                ..NodeStatus::default()
            }),
        }
    }

    fn pinned(node: &str, ours: bool) -> PersistentVolume {
        let annotations = ours.then(|| {
            [(
                volume::PROVISIONED_BY.to_string(),
                volume::PROVISIONER.to_string(),
            )]
            .into()
        });
        PersistentVolume {
            metadata: ObjectMeta {
                annotations,
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                node_affinity: Some(layout::node_affinity(node)),
                ..PersistentVolumeSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn the_ready_node_with_the_fewest_of_our_volumes_is_chosen() {
        let nodes = [
            node("pgop-node-1", "True"),
            node("pgop-node-2", "True"),
            node("pgop-node-3", "True"),
        ];
        let volumes = [
            pinned("pgop-node-1", true),
            pinned("pgop-node-1", true),
            pinned("pgop-node-2", true),
            pinned("pgop-node-3", true),
            pinned("pgop-node-3", true),
            // Not ours: another provisioner's volumes do not count.
            pinned("pgop-node-2", false),
            pinned("pgop-node-2", false),
        ];
        assert_eq!(least_used(&nodes, &volumes).unwrap(), "pgop-node-2");
    }

    #[test]
    fn ties_go_to_the_smallest_name_whatever_the_order() {
        let nodes = [
            node("pgop-node-3", "True"),
            node("pgop-node-2", "True"),
            node("pgop-node-1", "True"),
        ];
        let volumes = [pinned("pgop-node-1", true)];
        assert_eq!(least_used(&nodes, &volumes).unwrap(), "pgop-node-2");
        assert_eq!(least_used(&nodes, &[]).unwrap(), "pgop-node-1");
    }

    #[test]
    fn nodes_not_ready_are_skipped() {
        let mut no_status = node("pgop-node-0", "True");
        no_status.status = None;
        let nodes = [
            no_status,
            node("pgop-node-1", "False"),
            node("pgop-node-2", "Unknown"),
            node("pgop-node-3", "True"),
        ];
        let volumes = [pinned("pgop-node-3", true), pinned("pgop-node-3", true)];
        assert_eq!(least_used(&nodes, &volumes).unwrap(), "pgop-node-3");
    }

    #[test]
    fn no_ready_node_is_an_error() {
        let nodes = [node("pgop-node-1", "False"), node("pgop-node-2", "Unknown")];
        let error = least_used(&nodes, &[]).unwrap_err().to_string();
        assert!(error.contains("no Node is Ready"), "{error}");
        assert!(least_used(&[], &[]).is_err());
    }
}
