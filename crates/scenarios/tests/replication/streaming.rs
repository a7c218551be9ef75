//! Three replicas are one primary and two hot standbys streaming from it, one per node, and
//! the Services follow the roles.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use api::names;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use scenarios::Scenario;

use super::cluster::{self, NAME};

#[tokio::test]
async fn three_replicas_are_a_primary_and_two_streaming_standbys_behind_role_services() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-streaming").await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    let status = db.status.clone().unwrap_or_default();
    let primary = status.current_primary.clone().expect("a current primary");

    // One primary, two replicas, as reported and as labelled, on three different nodes.
    let roles: Vec<(String, Option<String>)> = status
        .instances
        .iter()
        .map(|i| (i.name.clone(), i.role.clone()))
        .collect();
    assert_eq!(
        roles
            .iter()
            .filter(|(_, r)| r.as_deref() == Some("primary"))
            .count(),
        1,
        "{roles:?}"
    );
    assert_eq!(
        roles
            .iter()
            .filter(|(_, r)| r.as_deref() == Some("replica"))
            .count(),
        2,
        "{roles:?}"
    );
    let pods = cluster::pods(&scenario).await;
    let nodes: BTreeSet<String> = pods.iter().map(cluster::node_of).collect();
    assert_eq!(nodes.len(), 3, "instances spread over the nodes");

    // Asked directly, exactly the primary is out of recovery.
    let states = cluster::recovery_states(&scenario).await;
    assert_eq!(states.len(), 3, "every instance answers: {states:?}");
    for (pod, in_recovery) in &states {
        assert_eq!(*in_recovery, *pod != primary, "{pod} in recovery");
    }

    // The primary streams to both standbys, each through its own slot.
    let primary_ip = cluster::ip_of(
        pods.iter()
            .find(|p| p.metadata.name.as_deref() == Some(&primary))
            .unwrap(),
    );
    let streaming = cluster::psql_on(
        &scenario,
        &primary_ip,
        "SELECT string_agg(application_name || ':' || state || ':' || coalesce(s.slot_name, '-'), ',' ORDER BY application_name) \
         FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid",
    )
    .await
    .unwrap();
    let standbys: Vec<&str> = streaming.split(',').collect();
    assert_eq!(standbys.len(), 2, "{streaming}");
    for entry in standbys {
        let parts: Vec<&str> = entry.split(':').collect();
        assert_eq!(parts[1], "streaming", "{entry}");
        assert_eq!(parts[2], names::replication_slot(parts[0]), "{entry}");
    }

    // A row written through the read-write Service is read through the read-only one within
    // a second, and the read-only Service refuses writes.
    let rw = cluster::service_ip(&scenario, NAME).await;
    let ro = cluster::service_ip(&scenario, &names::read_only_service(NAME)).await;
    let any = cluster::service_ip(&scenario, &names::any_instance_service(NAME)).await;
    cluster::psql_on(
        &scenario,
        &rw,
        "CREATE TABLE orders (id int); INSERT INTO orders VALUES (42)",
    )
    .await
    .unwrap();
    let written = Instant::now();
    let seen = cluster::eventually(Duration::from_secs(5), "the row on a standby", || async {
        let answer =
            cluster::psql_on(&scenario, &ro, "SELECT count(*) FROM orders WHERE id = 42").await?;
        Ok((answer == "1").then_some(written.elapsed()))
    })
    .await;
    assert!(
        seen < Duration::from_secs(1),
        "a committed row reached the read-only Service after {seen:?}"
    );
    assert_eq!(
        cluster::psql_on(&scenario, &ro, "SELECT pg_is_in_recovery()")
            .await
            .unwrap(),
        "t"
    );
    let refused = cluster::psql_on(&scenario, &ro, "INSERT INTO orders VALUES (1)")
        .await
        .expect_err("a standby accepted a write");
    assert!(format!("{refused}").contains("read-only"), "{refused}");
    assert_eq!(
        cluster::psql_on(&scenario, &any, "SELECT count(*) FROM orders")
            .await
            .unwrap(),
        "1"
    );

    // The Database reports replication healthy, every instance on the first timeline and each
    // standby's lag (the managers report every 5 s).
    let databases: kube::Api<api::Database> = scenario.api();
    let status = cluster::eventually(
        Duration::from_secs(30),
        "replication reported healthy",
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            let healthy =
                api::conditions::find(&status.conditions, api::conditions::REPLICATION_HEALTHY)
                    .is_some_and(|c| c.status == "True" && c.reason == "Streaming");
            let reported = status.instances.iter().all(|i| {
                i.timeline == Some(1)
                    && (i.role.as_deref() == Some("primary") || i.lag_bytes.is_some())
            });
            Ok((healthy && reported).then_some(status))
        },
    )
    .await;
    assert_eq!(status.instances.len(), 3);

    // The Secret names the read-only host.
    let secrets: Api<Secret> = scenario.api();
    let secret = secrets.get(&names::credentials_secret(NAME)).await.unwrap();
    let host = secret.data.unwrap_or_default()[names::SECRET_READ_ONLY_HOST]
        .0
        .clone();
    assert_eq!(
        String::from_utf8(host).unwrap(),
        format!("{}.{}.svc", names::read_only_service(NAME), scenario.ns())
    );
    scenario.finish().await;
}
