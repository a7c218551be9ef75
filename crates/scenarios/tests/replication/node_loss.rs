//! Losing a whole node: the primary's (stopped like a crashed machine, frozen like a hung
//! one) or a standby's. A client numbers its commits through the read-write Service
//! throughout; the Database's status and an Event say what happened and what may be lost.

use std::time::{Duration, Instant};

use api::{Database, FailoverReport};
use kube::Api;
use scenarios::Scenario;
use testenv::NodeFault;

use super::cluster::{self, NAME, Writer};

/// The primary's node suffers `fault`: a standby takes over, writes go on through the
/// read-write Service, the failover is in the status and an Event; after `undo` the former
/// primary follows the new one, and there is one primary.
async fn primary_node_lost(
    namespace: &str,
    fault: NodeFault,
    synchronous: i32,
) -> (FailoverReport, Vec<i32>) {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node(namespace).await;
    let db = cluster::ready(&mut scenario, 3, synchronous).await;
    let old_primary = db.status.unwrap_or_default().current_primary.unwrap();
    let pods = cluster::pods(&scenario).await;
    let pod = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(&old_primary))
        .unwrap();
    let (old_ip, node) = (cluster::ip_of(pod), cluster::node_of(pod));
    let on_that_node: Vec<_> = pods
        .iter()
        .filter(|p| cluster::node_of(p) == node)
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(
        on_that_node,
        std::slice::from_ref(&old_primary),
        "only the primary on {node}"
    );
    let rw = cluster::service_ip(&scenario, NAME).await;
    let writer = Writer::start(&scenario, &rw).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let cluster_handle = scenario.cluster();
    let in_place = cluster_handle.fault_in_place(fault, &node).unwrap();
    let cut = Instant::now();
    let server = cluster::answered_elsewhere(
        &scenario,
        &rw,
        &old_ip,
        "SELECT count(*) FROM commits",
        Duration::from_secs(90),
    )
    .await;
    eprintln!(
        "{fault:?}: the read-write Service reaches {server} after {:?}",
        cut.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written = writer.stop().await;
    eprintln!(
        "{fault:?}: {} commits acknowledged, writes paused at most {:?}",
        written.acknowledged.len(),
        written.longest_gap
    );

    let databases: Api<Database> = scenario.api();
    let status = cluster::eventually(
        Duration::from_secs(60),
        "the failover in the Database's status",
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            Ok(
                (status.last_failover.is_some() && status.current_primary.is_some())
                    .then_some(status),
            )
        },
    )
    .await;
    let report = status.last_failover.clone().unwrap();
    let new_primary = status.current_primary.clone().unwrap();
    assert_eq!(status.failovers, 1, "{status:?}");
    assert_eq!(
        (report.from.as_str(), report.to.as_str()),
        (old_primary.as_str(), new_primary.as_str())
    );
    assert_eq!(report.synchronous, synchronous > 0);
    assert!(
        report.lost_bytes.is_some(),
        "the lost primary had told the Lease how far it had written: {report:?}"
    );
    let notes = cluster::event_notes(&scenario, "Failover").await;
    assert!(
        notes.iter().any(|n| n.contains(&format!(
            "{new_primary} took over as primary from {old_primary}"
        ))),
        "no Failover Event: {notes:?}"
    );
    let lost = cluster::lost_commits(&scenario, &rw, &written.acknowledged).await;

    in_place.undo().unwrap();
    cluster::wait_streaming(
        &scenario,
        &new_primary,
        &old_primary,
        Duration::from_secs(180),
    )
    .await;
    cluster::assert_only_primary(&scenario, &new_primary).await;
    scenario.finish().await;
    (report, lost)
}

#[tokio::test]
async fn a_stopped_primary_node_loses_no_acknowledged_commit_with_a_synchronous_standby() {
    let (report, lost) = primary_node_lost("repl-node-stop", NodeFault::Stop, 1).await;
    assert!(lost.is_empty(), "acknowledged commits lost: {lost:?}");
    eprintln!("stop, synchronous: {report:?}");
}

#[tokio::test]
async fn a_frozen_primary_node_fails_over_and_the_status_says_what_may_be_lost() {
    let (report, lost) = primary_node_lost("repl-node-freeze", NodeFault::Freeze, 0).await;
    // Asynchronous: a few commits may be lost; the report says how much WAL, at least.
    eprintln!(
        "freeze, asynchronous: {} acknowledged commits lost, reported {:?} bytes",
        lost.len(),
        report.lost_bytes
    );
}

/// A standby's node stops: the primary keeps taking writes (with a synchronous standby too,
/// as another standby confirms them), replication is reported unhealthy naming the standby,
/// and once the node is back the standby catches up.
#[tokio::test]
async fn losing_a_standby_node_keeps_writes_going_and_the_standby_catches_up() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-standby-lost").await;
    let db = cluster::ready(&mut scenario, 3, 1).await;
    let status = db.status.unwrap_or_default();
    let primary = status.current_primary.clone().unwrap();
    let standby = status
        .instances
        .iter()
        .find(|i| i.name != primary)
        .map(|i| i.name.clone())
        .unwrap();
    let pods = cluster::pods(&scenario).await;
    let node = cluster::node_of(
        pods.iter()
            .find(|p| p.metadata.name.as_deref() == Some(&standby))
            .unwrap(),
    );
    let rw = cluster::service_ip(&scenario, NAME).await;
    let writer = Writer::start(&scenario, &rw).await;
    let cluster_handle = scenario.cluster();
    let in_place = cluster_handle
        .fault_in_place(NodeFault::Stop, &node)
        .unwrap();

    let databases: Api<Database> = scenario.api();
    let message = cluster::eventually(
        Duration::from_secs(60),
        "ReplicationHealthy=False naming the lost standby",
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            let condition =
                api::conditions::find(&status.conditions, api::conditions::REPLICATION_HEALTHY)
                    .cloned();
            Ok(condition
                .filter(|c| c.status == "False" && c.message.contains(&standby))
                .map(|c| c.message))
        },
    )
    .await;
    eprintln!("standby lost: {message}");
    let count = || async {
        cluster::psql_on(&scenario, &rw, "SELECT count(*) FROM commits")
            .await
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let before = count().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        count().await > before,
        "commits go on with one of two standbys"
    );

    in_place.undo().unwrap();
    cluster::wait_streaming(&scenario, &primary, &standby, Duration::from_secs(180)).await;
    let written = writer.stop().await;
    let status = databases
        .get(NAME)
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert_eq!(
        (status.current_primary.as_deref(), status.failovers),
        (Some(primary.as_str()), 0),
        "no failover for a lost standby"
    );
    let lost = cluster::lost_commits(&scenario, &rw, &written.acknowledged).await;
    assert!(lost.is_empty(), "acknowledged commits lost: {lost:?}");
    scenario.finish().await;
}
