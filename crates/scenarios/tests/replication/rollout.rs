//! A new Pod spec reaches a replicated Database standbys first, one Pod at a time, and the
//! primary moves once, by a switchover, before its own Pod is replaced: no failover is
//! counted and no acknowledged commit is lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use api::Database;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use scenarios::{Scenario, database_ready};
use serde_json::json;

use super::cluster::{self, NAME, Writer};

/// The memory the new spec asks for: what tells a replaced Pod from an old one.
const NEW_MEMORY_REQUEST: &str = "72Mi";

#[tokio::test]
async fn a_new_spec_rolls_out_to_the_standbys_first_with_one_switchover() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-rollout").await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    let old_primary = db.status.unwrap_or_default().current_primary.unwrap();
    let uids_before: BTreeMap<String, String> = cluster::pods(&scenario)
        .await
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect();
    let rw = cluster::service_ip(&scenario, NAME).await;
    let writer = Writer::start(&scenario, &rw).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let databases: Api<Database> = scenario.api();
    let patch = json!({"spec": {"resources": {"requests": {"memory": NEW_MEMORY_REQUEST}}}});
    databases
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    // Watch the Pods being replaced, in order, and the primaries the status names meanwhile.
    let mut replaced: Vec<String> = Vec::new();
    let mut primaries: Vec<String> = vec![old_primary.clone()];
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        for pod in cluster::pods(&scenario).await {
            let name = pod.name_any();
            if uids_before.get(&name) != pod.uid().as_ref() && !replaced.contains(&name) {
                assert_eq!(
                    memory_request(&pod).as_deref(),
                    Some(NEW_MEMORY_REQUEST),
                    "{name} was replaced with the new spec"
                );
                replaced.push(name);
            }
        }
        let db = databases.get(NAME).await.unwrap();
        let status = db.status.clone().unwrap_or_default();
        if let Some(primary) = status.current_primary.clone()
            && primaries.last() != Some(&primary)
        {
            primaries.push(primary);
        }
        let ready = database_ready(Some(&db))
            && status.observed_generation == db.metadata.generation
            && status.instances.iter().filter(|i| i.ready).count() == 3;
        if replaced.len() == 3 && ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every Pod replaced with the new spec and the Database Ready; replaced {replaced:?}, status {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("replaced in order {replaced:?}; primaries {primaries:?}");
    let written = writer.stop().await;
    eprintln!(
        "{} commits acknowledged; writes paused at most {:?}",
        written.acknowledged.len(),
        written.longest_gap
    );

    assert_eq!(
        replaced.last(),
        Some(&old_primary),
        "the primary's Pod is replaced last: {replaced:?}"
    );
    assert_eq!(primaries.len(), 2, "the primary moved once: {primaries:?}");
    let new_primary = primaries[1].clone();
    let status = databases
        .get(NAME)
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert_eq!(
        status.failovers, 0,
        "a switchover, not a failover: {status:?}"
    );
    assert_eq!(
        status.current_primary.as_deref(),
        Some(new_primary.as_str())
    );
    let switchovers = cluster::event_notes(&scenario, "RollingUpdate")
        .await
        .into_iter()
        .filter(|n| n.contains("switching over"))
        .count();
    assert_eq!(switchovers, 1, "one switchover announced");

    let lost = cluster::lost_commits(&scenario, &rw, &written.acknowledged).await;
    assert!(lost.is_empty(), "acknowledged commits lost: {lost:?}");
    cluster::assert_only_primary(&scenario, &new_primary).await;
    cluster::wait_streaming(
        &scenario,
        &new_primary,
        &old_primary,
        Duration::from_secs(120),
    )
    .await;
    scenario.finish().await;
}

fn memory_request(pod: &k8s_openapi::api::core::v1::Pod) -> Option<String> {
    let container = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "postgres")?;
    let requests = container.resources.as_ref()?.requests.as_ref()?;
    requests.get("memory").map(|q| q.0.clone())
}
