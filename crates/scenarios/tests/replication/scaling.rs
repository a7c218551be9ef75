//! Scaling: down never removes the primary (it is switched over to a standby that stays
//! first, no failover), and up adds standbys that stream.

use std::time::Duration;

use api::Database;
use api::names::{ANNOTATION_SWITCHOVER_FROM, ANNOTATION_SWITCHOVER_TO};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use scenarios::Scenario;
use serde_json::json;

use super::cluster::{self, NAME};

async fn primary_becomes(databases: &Api<Database>, pod: &str) -> api::DatabaseStatus {
    cluster::eventually(
        Duration::from_secs(90),
        &format!("{pod} primary"),
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            Ok((status.current_primary.as_deref() == Some(pod)).then_some(status))
        },
    )
    .await
}

#[tokio::test]
async fn scaling_down_moves_the_primary_first_and_scaling_up_adds_a_streaming_standby() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-scaling").await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    let databases: Api<Database> = scenario.api();
    // The last instance is made the primary, so that scaling down would remove it.
    let primary = db.status.unwrap_or_default().current_primary.unwrap();
    if primary != "shop-2" {
        let patch = json!({"metadata": {"annotations": {
            ANNOTATION_SWITCHOVER_FROM: primary,
            ANNOTATION_SWITCHOVER_TO: "shop-2",
        }}});
        databases
            .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        primary_becomes(&databases, "shop-2").await;
    }
    // The status names the new primary as soon as its Pod is labelled; the Service's routes
    // follow a moment later.
    let rw = cluster::service_ip(&scenario, NAME).await;
    cluster::eventually(
        Duration::from_secs(30),
        "a write through the read-write Service",
        || async {
            let sql = "CREATE TABLE IF NOT EXISTS kept AS SELECT 1 AS n";
            cluster::psql_on(&scenario, &rw, sql).await?;
            Ok(Some(()))
        },
    )
    .await;

    let scale = |replicas: i32| json!({"spec": {"replicas": replicas}});
    databases
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&scale(2)))
        .await
        .unwrap();
    let status = cluster::eventually(
        Duration::from_secs(120),
        "two instances, the primary among them",
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            let names: Vec<&str> = status.instances.iter().map(|i| i.name.as_str()).collect();
            let primary_stays = status
                .current_primary
                .as_deref()
                .is_some_and(|p| p == "shop-0" || p == "shop-1");
            Ok((names == ["shop-0", "shop-1"] && primary_stays).then_some(status))
        },
    )
    .await;
    assert_eq!(
        status.failovers, 0,
        "a switchover, not a failover: {status:?}"
    );
    let events: Api<Event> = scenario.api();
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r == "SwitchoverBeforeScaleDown"),
        "{reasons:?}"
    );
    let rows = cluster::eventually(
        Duration::from_secs(30),
        "a read through the read-write Service",
        || async {
            let rows = cluster::psql_on(&scenario, &rw, "SELECT count(*) FROM kept").await?;
            Ok(Some(rows))
        },
    )
    .await;
    assert_eq!(rows, "1", "the row written before the switchover");

    databases
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&scale(3)))
        .await
        .unwrap();
    let primary = status.current_primary.unwrap();
    cluster::wait_streaming(&scenario, &primary, "shop-2", Duration::from_secs(180)).await;
    cluster::assert_only_primary(&scenario, &primary).await;
    scenario.finish().await;
}
