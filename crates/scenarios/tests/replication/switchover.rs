//! A planned switchover: the named standby becomes the primary, every commit acknowledged
//! before, during and after is there, and the former primary follows it.

use std::time::{Duration, Instant};

use api::Database;
use api::names::{ANNOTATION_SWITCHOVER_FROM, ANNOTATION_SWITCHOVER_TO};
use kube::Api;
use kube::api::{Patch, PatchParams};
use scenarios::Scenario;
use serde_json::json;

use super::cluster::{self, NAME};

#[tokio::test]
async fn a_switchover_moves_the_primary_and_loses_no_acknowledged_commit() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-switchover").await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    let status = db.status.unwrap_or_default();
    let old_primary = status.current_primary.clone().unwrap();
    let target = status
        .instances
        .iter()
        .find(|i| i.role.as_deref() == Some("replica"))
        .map(|i| i.name.clone())
        .unwrap();
    let rw = cluster::service_ip(&scenario, NAME).await;
    let writer = cluster::Writer::start(&scenario, &rw).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let databases: Api<Database> = scenario.api();
    let patch = json!({"metadata": {"annotations": {
        ANNOTATION_SWITCHOVER_FROM: old_primary,
        ANNOTATION_SWITCHOVER_TO: target,
    }}});
    databases
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let asked = Instant::now();
    cluster::eventually(
        Duration::from_secs(60),
        "the target reported primary",
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            Ok((status.current_primary.as_deref() == Some(target.as_str())).then_some(()))
        },
    )
    .await;
    eprintln!(
        "switchover to {target}: reported after {:?}",
        asked.elapsed()
    );
    // Writes go on for a while on the new primary.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let written = writer.stop().await;
    let longest_gap = written.longest_gap;
    eprintln!(
        "{} commits acknowledged; writes paused at most {longest_gap:?}",
        written.acknowledged.len()
    );
    assert!(
        longest_gap < Duration::from_secs(30),
        "writes paused for {longest_gap:?}"
    );

    // Every acknowledged commit is on the new primary.
    let lost = cluster::lost_commits(&scenario, &rw, &written.acknowledged).await;
    assert!(lost.is_empty(), "acknowledged commits lost: {lost:?}");
    assert_eq!(
        cluster::psql_on(&scenario, &rw, "SELECT pg_is_in_recovery()")
            .await
            .unwrap(),
        "f"
    );

    // The former primary follows the new one.
    cluster::wait_streaming(&scenario, &target, &old_primary, Duration::from_secs(120)).await;
    scenario.finish().await;
}
