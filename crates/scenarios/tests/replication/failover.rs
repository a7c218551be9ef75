//! Losing the primary: a standby takes over, the read-write Service follows it, and the
//! former primary comes back as a standby.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use scenarios::Scenario;

use super::cluster::{self, NAME};

#[tokio::test]
async fn deleting_the_primary_pod_promotes_a_standby_and_the_former_primary_rejoins() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-failover").await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    let old_primary = db.status.unwrap_or_default().current_primary.unwrap();
    let rw = cluster::service_ip(&scenario, NAME).await;
    cluster::psql_on(
        &scenario,
        &rw,
        "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 100)",
    )
    .await
    .unwrap();

    let pods: Api<Pod> = scenario.api();
    let old_ip = cluster::ip_of(&pods.get(&old_primary).await.unwrap());
    pods.delete(&old_primary, &DeleteParams::default())
        .await
        .unwrap();
    let deleted = Instant::now();

    // The first write the read-write Service acknowledges on another server than the former
    // primary (which takes writes until its fast shutdown, a moment after the deletion).
    let server = cluster::eventually(
        Duration::from_secs(60),
        "a write through the read-write Service on a new primary",
        || async {
            let answer = cluster::psql_on(
                &scenario,
                &rw,
                "INSERT INTO orders VALUES (101); SELECT host(inet_server_addr())",
            )
            .await?;
            let server = answer.lines().last().unwrap_or_default().to_string();
            if server == old_ip {
                cluster::psql_on(&scenario, &rw, "DELETE FROM orders WHERE id = 101").await?;
                return Ok(None);
            }
            Ok(Some(server))
        },
    )
    .await;
    eprintln!(
        "first write on a new primary after the primary's deletion: {:?} ({server})",
        deleted.elapsed()
    );

    // Exactly one instance out of recovery, not the former primary's Pod, and every row is
    // there (a deleted Pod shuts down cleanly: its standbys have all it committed).
    let promoted = cluster::eventually(
        Duration::from_secs(120),
        "one primary and every instance back",
        || async {
            let states = cluster::recovery_states(&scenario).await;
            let primaries: Vec<&String> =
                states.iter().filter(|(_, r)| !r).map(|(p, _)| p).collect();
            Ok((states.len() == 3 && primaries.len() == 1).then(|| primaries[0].clone()))
        },
    )
    .await;
    assert_ne!(promoted, old_primary, "a standby was promoted");
    assert_eq!(
        cluster::psql_on(&scenario, &rw, "SELECT count(*) FROM orders")
            .await
            .unwrap(),
        "101"
    );

    // The former primary's Pod is back, labelled a replica, streaming from the new primary.
    cluster::wait_streaming(&scenario, &promoted, &old_primary, Duration::from_secs(120)).await;
    let pods = cluster::pods(&scenario).await;
    let former = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(&old_primary))
        .unwrap();
    assert_eq!(cluster::role_of(former).as_deref(), Some("replica"));

    // Every instance reports the new primary's timeline, and replication is healthy again.
    let databases: kube::Api<api::Database> = scenario.api();
    cluster::eventually(
        Duration::from_secs(60),
        "healthy replication on the new timeline",
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            let healthy =
                api::conditions::is_true(&status.conditions, api::conditions::REPLICATION_HEALTHY);
            let timelines: Vec<Option<i64>> = status.instances.iter().map(|i| i.timeline).collect();
            let moved_on = timelines.len() == 3 && timelines.iter().all(|t| *t == Some(2));
            Ok((healthy
                && moved_on
                && status.current_primary.as_deref() == Some(promoted.as_str()))
            .then_some(()))
        },
    )
    .await;
    scenario.finish().await;
}
