//! A primary cut off from everyone stops accepting writes before any standby is promoted,
//! and joins as a standby once the partition heals.

use std::time::{Duration, Instant};

use api::names;
use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use scenarios::Scenario;
use testenv::NodeFault;

use super::cluster::{self, NAME};

#[tokio::test]
async fn a_partitioned_primary_stops_taking_writes_before_a_standby_is_promoted() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-fencing").await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    let old_primary = db.status.unwrap_or_default().current_primary.unwrap();
    let pods = cluster::pods(&scenario).await;
    let pod = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(&old_primary))
        .unwrap();
    let (old_ip, node) = (cluster::ip_of(pod), cluster::node_of(pod));
    let rw = cluster::service_ip(&scenario, NAME).await;
    cluster::psql_on(&scenario, &rw, "CREATE TABLE probes (at timestamptz)")
        .await
        .unwrap();

    let cluster_handle = scenario.cluster();
    let partition = cluster_handle
        .fault_in_place(NodeFault::Partition, &node)
        .unwrap();
    let cut = Instant::now();

    // From inside the cut-off node, keep writing to the old primary; from the API server,
    // watch for another holder of the Lease.
    let leases: Api<Lease> = scenario.api();
    let mut last_acknowledged: Option<DateTime<Utc>> = None;
    let mut fenced_after = None;
    let taken = loop {
        assert!(
            cut.elapsed() < Duration::from_secs(90),
            "no standby took over within 90 s"
        );
        if fenced_after.is_none() {
            match cluster::psql_inside_node(
                &scenario,
                &node,
                &old_ip,
                "INSERT INTO probes VALUES (now())",
            )
            .await
            {
                Ok(_) => last_acknowledged = Some(Utc::now()),
                Err(_) => fenced_after = Some(cut.elapsed()),
            }
        }
        let lease = leases.get(&names::primary_lease(NAME)).await.unwrap();
        let spec = lease.spec.unwrap_or_default();
        if spec
            .holder_identity
            .as_deref()
            .is_some_and(|h| h != old_primary && !h.is_empty())
        {
            let acquired = spec
                .acquire_time
                .map(|t| t.0)
                .expect("an acquired Lease has an acquireTime");
            break (spec.holder_identity.unwrap(), acquired, cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (new_primary, acquired, taken_after) = taken;
    eprintln!(
        "partition: old primary refused writes after {fenced_after:?}, Lease taken after {taken_after:?}"
    );
    let fenced_after =
        fenced_after.expect("the old primary kept taking writes until a standby took over");
    assert!(
        fenced_after < taken_after,
        "fenced after {fenced_after:?}, taken over after {taken_after:?}"
    );
    let acquired: DateTime<Utc> =
        DateTime::from_timestamp_micros(acquired.as_microsecond()).unwrap();
    if let Some(last) = last_acknowledged {
        assert!(
            last < acquired,
            "a write was acknowledged at {last} by the old primary, after the Lease went to {new_primary} at {acquired}"
        );
    }

    // The read-write Service takes writes on the new primary while the old one is cut off.
    let server = cluster::answered_elsewhere(
        &scenario,
        &rw,
        &old_ip,
        "INSERT INTO probes VALUES (now())",
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "writes on {server} ({new_primary}) after {:?}",
        cut.elapsed()
    );

    // Healed, the former primary comes back as a standby of the new one.
    partition.undo().unwrap();
    cluster::wait_streaming(
        &scenario,
        &new_primary,
        &old_primary,
        Duration::from_secs(180),
    )
    .await;
    cluster::assert_only_primary(&scenario, &new_primary).await;
    scenario.finish().await;
}
