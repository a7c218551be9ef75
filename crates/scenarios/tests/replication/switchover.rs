//! A planned switchover: the named standby becomes the primary, every commit acknowledged
//! before, during and after is there, and the former primary follows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    cluster::psql_on(&scenario, &rw, "CREATE TABLE commits (n int primary key)")
        .await
        .unwrap();

    // A client numbering its commits through the read-write Service, one at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let ns = scenario.ns().to_string();
        let client = scenario.client();
        let rw = rw.clone();
        tokio::spawn(async move {
            let env = scenarios::connection_env(&client, &ns, NAME).await.unwrap();
            let mut acknowledged = Vec::new();
            let mut longest_gap = Duration::ZERO;
            let mut last = Instant::now();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let output = tokio::process::Command::new("psql")
                    .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c"])
                    .arg(format!("INSERT INTO commits VALUES ({n})"))
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .env("PGHOST", &rw)
                    .env("PGCONNECT_TIMEOUT", "1")
                    .output()
                    .await
                    .unwrap();
                if output.status.success() {
                    acknowledged.push(n);
                    longest_gap = longest_gap.max(last.elapsed());
                    last = Instant::now();
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (acknowledged, longest_gap)
        })
    };
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
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, longest_gap) = writer.await.unwrap();
    eprintln!(
        "{} commits acknowledged; writes paused at most {longest_gap:?}",
        acknowledged.len()
    );
    assert!(
        longest_gap < Duration::from_secs(30),
        "writes paused for {longest_gap:?}"
    );

    // Every acknowledged commit is on the new primary.
    let present = cluster::psql_on(
        &scenario,
        &rw,
        "SELECT string_agg(n::text, ',' ORDER BY n) FROM commits",
    )
    .await
    .unwrap();
    let present: Vec<i32> = present.split(',').filter_map(|n| n.parse().ok()).collect();
    let lost: Vec<&i32> = acknowledged
        .iter()
        .filter(|n| !present.contains(n))
        .collect();
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
