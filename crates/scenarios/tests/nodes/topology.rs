//! Three Ready nodes with the labels spreading relies on; Pods on different nodes reach each
//! other by IP, Service and DNS; each Pod's volume is on the disk of the node it runs on.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::api::ListParams;
use scenarios::Scenario;

use super::echo::{self, NODES, NODES_IN_USE};

#[tokio::test]
async fn three_nodes_with_hostname_and_zone_labels_are_ready() {
    let _nodes = NODES_IN_USE.lock().await;
    let scenario = Scenario::on_node("nodes-labels").await;
    let nodes: Api<Node> = Api::all(scenario.client());
    // Tests that play the kubelet register a Node of their own (testenv); the nodes that run
    // Pods are ours.
    let list: Vec<Node> = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|n| {
            n.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("pgop-node-"))
        })
        .collect();
    let names: BTreeSet<_> = list
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        NODES.iter().map(|n| n.to_string()).collect(),
        "the cluster's nodes"
    );
    let mut zones = BTreeSet::new();
    for node in &list {
        let name = node.metadata.name.as_deref().unwrap();
        assert_eq!(
            echo::node_ready_status(&nodes, name).await.unwrap(),
            "True",
            "{name} is Ready"
        );
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some(name),
            "{name}'s hostname label"
        );
        zones.insert(
            labels
                .get("topology.kubernetes.io/zone")
                .unwrap_or_else(|| panic!("{name} has no zone label"))
                .clone(),
        );
    }
    assert_eq!(zones.len(), 3, "one zone per node: {zones:?}");
    scenario.finish().await;
}

#[tokio::test]
async fn pods_on_different_nodes_reach_each_other_and_use_volumes_on_their_node() {
    let _nodes = NODES_IN_USE.lock().await;
    let scenario = Scenario::on_node("nodes-network").await;
    let pods = echo::start(&scenario).await;
    let placed: BTreeSet<_> = pods.iter().map(echo::node_of).collect();
    assert_eq!(placed.len(), 3, "one echo Pod per node by anti-affinity");

    for pod in &pods {
        let node = echo::node_of(pod);
        // From this machine, by Pod IP: the node's pod network is routed from the host, and
        // the volume the Pod wrote at start holds its own node's name.
        assert_eq!(
            echo::ask(echo::ip_of(pod)).unwrap(),
            format!("{node} {node}"),
            "answer of the Pod on {node}"
        );
    }
    for from in &pods {
        let from_name = from.metadata.name.as_deref().unwrap();
        for to in pods
            .iter()
            .filter(|p| p.metadata.name != from.metadata.name)
        {
            let to_node = echo::node_of(to);
            let expected = format!("{to_node} {to_node}");
            assert_eq!(
                echo::ask_from_pod(&scenario, from_name, echo::ip_of(to)).unwrap(),
                expected,
                "{from_name} on {} to the Pod on {to_node} by IP",
                echo::node_of(from)
            );
            // The headless Service's per-Pod name, through the cluster DNS.
            let dns_name = format!("{}.echo", to.metadata.name.as_deref().unwrap());
            assert_eq!(
                echo::ask_from_pod(&scenario, from_name, &dns_name).unwrap(),
                expected,
                "{from_name} to {dns_name}"
            );
        }
        // The ClusterIP Service, by name: any of the three answers.
        let answer = echo::ask_from_pod(&scenario, from_name, "echo-any").unwrap();
        let served_by = answer.split(' ').next().unwrap_or_default();
        assert!(NODES.contains(&served_by), "echo-any answered {answer:?}");
    }

    // Each claim is bound to a volume pinned to the node its Pod runs on, and its data is in
    // that node's directory on this machine.
    let claims: Api<PersistentVolumeClaim> = scenario.api();
    let volumes: Api<PersistentVolume> = Api::all(scenario.client());
    for pod in &pods {
        let node = echo::node_of(pod);
        let claim_name = format!("data-{}", pod.metadata.name.as_deref().unwrap());
        let claim = claims.get(&claim_name).await.unwrap();
        let volume_name = claim.spec.and_then(|s| s.volume_name).unwrap();
        let volume = volumes.get(&volume_name).await.unwrap();
        let pinned_to: Vec<String> = volume
            .spec
            .and_then(|s| s.node_affinity)
            .and_then(|a| a.required)
            .map(|r| r.node_selector_terms)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|t| t.match_expressions.unwrap_or_default())
            .filter(|e| e.key == "kubernetes.io/hostname")
            .flat_map(|e| e.values.unwrap_or_default())
            .collect();
        assert_eq!(pinned_to, vec![node.to_string()], "{volume_name}'s node");
        let on_disk = scenario
            .cluster()
            .node_dir(node)
            .join("volumes")
            .join(&volume_name)
            .join("node");
        assert_eq!(
            std::fs::read_to_string(&on_disk).unwrap(),
            node,
            "{}",
            on_disk.display()
        );
    }
    scenario.finish().await;
}
