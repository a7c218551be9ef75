//! Each fault of `hack/node.sh` on one node: the Node goes NotReady within the documented
//! time, its Pod cannot be reached from the others, and undoing the fault brings both back.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use scenarios::Scenario;
use testenv::NodeFault;

use super::echo::{self, NODES_IN_USE, NOT_READY_WITHIN, READY_AGAIN_WITHIN};

/// The node the faults land on; the echo Pod on pgop-node-1 is the peer that tries to reach it.
const LOST: &str = "pgop-node-3";
const PEER: &str = "pgop-node-1";

#[tokio::test]
async fn partition_stop_and_freeze_each_cut_a_node_off_until_undone() {
    let _nodes = NODES_IN_USE.lock().await;
    let scenario = Scenario::on_node("nodes-faults").await;
    let pods = echo::start(&scenario).await;
    let nodes: Api<Node> = Api::all(scenario.client());
    let cluster = scenario.cluster();
    let peer = echo::on_node(&pods, PEER).metadata.name.clone().unwrap();
    let expected = format!("{LOST} {LOST}");

    // Partition: everything keeps running on the node, nothing gets through its link.
    let target = echo::on_node(&pods, LOST).clone();
    let ip = echo::ip_of(&target).to_string();
    assert_eq!(echo::ask(&ip).unwrap(), expected, "before the partition");
    cluster.node_fault(NodeFault::Partition, LOST).unwrap();
    let took = echo::wait_node(&nodes, LOST, false, NOT_READY_WITHIN)
        .await
        .unwrap();
    eprintln!("partition: {LOST} NotReady after {took:?}");
    let refused = echo::ask(&ip).expect_err("a partitioned node's Pod answered this machine");
    assert!(
        !format!("{refused:#}").contains("refused"),
        "packets to a partitioned node are dropped, not refused: {refused:#}"
    );
    echo::ask_from_pod(&scenario, &peer, &ip)
        .expect_err("a partitioned node's Pod answered a Pod on another node");
    assert_eq!(
        echo::ask_inside_node(&scenario, LOST, &ip).unwrap(),
        expected,
        "the Pod keeps running behind the partition"
    );
    cluster.node_fault(NodeFault::Heal, LOST).unwrap();
    let took = echo::wait_node(&nodes, LOST, true, READY_AGAIN_WITHIN)
        .await
        .unwrap();
    eprintln!("heal: {LOST} Ready after {took:?}");
    assert_eq!(
        echo::ask_until_answered(&ip, Duration::from_secs(30))
            .await
            .unwrap(),
        expected,
        "after healing"
    );
    assert_eq!(
        echo::ask_from_pod(&scenario, &peer, &ip).unwrap(),
        expected,
        "from {PEER} after healing"
    );

    // Freeze: every process of the node stopped, so nothing answers.
    cluster.node_fault(NodeFault::Freeze, LOST).unwrap();
    let processes = cluster.node_processes(LOST).unwrap();
    assert!(!processes.is_empty(), "a frozen node keeps its processes");
    assert!(
        processes.iter().all(|p| p.state == 'T'),
        "every process of a frozen node is stopped: {processes:?}"
    );
    let took = echo::wait_node(&nodes, LOST, false, NOT_READY_WITHIN)
        .await
        .unwrap();
    eprintln!("freeze: {LOST} NotReady after {took:?}");
    echo::ask(&ip).expect_err("a frozen node's Pod answered");
    cluster.node_fault(NodeFault::Thaw, LOST).unwrap();
    let took = echo::wait_node(&nodes, LOST, true, READY_AGAIN_WITHIN)
        .await
        .unwrap();
    eprintln!("thaw: {LOST} Ready after {took:?}");
    assert_eq!(
        echo::ask_until_answered(&ip, Duration::from_secs(30))
            .await
            .unwrap(),
        expected,
        "after thawing"
    );

    // Stop: every process dies; starting the node again brings a new container up on the
    // same volume.
    let container_before = container_id(&target);
    cluster.node_fault(NodeFault::Stop, LOST).unwrap();
    assert_eq!(
        cluster.node_processes(LOST).unwrap(),
        vec![],
        "a stopped node runs nothing"
    );
    let took = echo::wait_node(&nodes, LOST, false, NOT_READY_WITHIN)
        .await
        .unwrap();
    eprintln!("stop: {LOST} NotReady after {took:?}");
    echo::ask(&ip).expect_err("a stopped node's Pod answered");
    cluster.node_fault(NodeFault::Start, LOST).unwrap();
    let took = echo::wait_node(&nodes, LOST, true, READY_AGAIN_WITHIN)
        .await
        .unwrap();
    eprintln!("start: {LOST} Ready after {took:?}");
    // The Pod's status may still describe the old container for a moment.
    let deadline = std::time::Instant::now() + scenarios::POD_START;
    let restarted = loop {
        let pods = echo::ready_pods(&scenario)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", scenario.dump()));
        let pod = echo::on_node(&pods, LOST).clone();
        if container_id(&pod) != container_before {
            break pod;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the kubelet started no new container after the node came back\n{}",
            scenario.dump()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let restarted = &restarted;
    assert_eq!(
        echo::ask_until_answered(echo::ip_of(restarted), Duration::from_secs(30))
            .await
            .unwrap(),
        expected,
        "after the start, on the volume it had"
    );
    scenario.finish().await;
}

fn container_id(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .unwrap_or_default()
}
