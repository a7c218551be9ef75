//! Point-in-time recovery across a failover: the base backup was taken on timeline 1, the
//! primary was lost, and the archive follows the new primary onto timeline 2. A new
//! three-instance Database recovered from it has the rows written before and after the
//! failover; its standbys clone the recovered primary once it has promoted.

use std::time::{Duration, Instant};

use api::{Backup, Database};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use scenarios::Scenario;
use scenarios::pitr::{physical_backup, recovered_database, server_now, wait_recoverable_to};
use testenv::Operator;

use super::cluster::{self, NAME};

const BACKUP: &str = "shop-pitr";
const COPY: &str = "copy";

#[tokio::test]
async fn a_recovery_replays_wal_across_the_timeline_switch_of_a_failover() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-pitr").await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    scenario.start(Operator::Backup).await;
    let (client, n) = (scenario.client(), scenario.ns().to_owned());
    let old_primary = db.status.unwrap_or_default().current_primary.unwrap();
    let rw = cluster::service_ip(&scenario, NAME).await;

    // The base backup, on timeline 1.
    scenario
        .apply(&physical_backup(BACKUP, NAME).manifest())
        .await;
    let backups: Api<Backup> = scenario.api();
    let ready = |b: Option<&Backup>| b.is_some_and(|b| b.is_ready());
    testenv::wait_for(&backups, BACKUP, ready, scenarios::POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    cluster::psql_on(
        &scenario,
        &rw,
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100)",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));

    // The primary is lost; a standby takes over on timeline 2 and takes the next writes.
    let pods: Api<Pod> = scenario.api();
    pods.delete(&old_primary, &DeleteParams::default())
        .await
        .unwrap();
    let databases: Api<Database> = scenario.api();
    cluster::eventually(Duration::from_secs(120), "another primary", || async {
        let status = databases.get(NAME).await?.status.unwrap_or_default();
        let moved = status
            .current_primary
            .as_deref()
            .is_some_and(|p| p != old_primary);
        Ok(moved.then_some(()))
    })
    .await;
    cluster::eventually(
        Duration::from_secs(60),
        "writes on the new primary",
        || async {
            let sql = "INSERT INTO orders SELECT generate_series(101, 200) ON CONFLICT DO NOTHING; \
                       SELECT count(*) FROM orders";
            let count = cluster::psql_on(&scenario, &rw, sql).await.ok();
            Ok(count.filter(|c| c.lines().last() == Some("200")))
        },
    )
    .await;
    let end = server_now(&client, &n, NAME)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    wait_recoverable_to(&client, &n, NAME, BACKUP, &end)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    // Recovered into three instances: one per node, like the source.
    let source = scenarios::node_database(NAME);
    let copy = recovered_database(COPY, BACKUP, None, &source)
        .replicas(3)
        .one_instance_per_node();
    let started = Instant::now();
    scenario.apply(&copy.manifest()).await;
    let all_ready = |db: Option<&Database>| {
        scenarios::database_ready(db)
            && db
                .and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.instances.len() == 3 && s.instances.iter().all(|i| i.ready))
    };
    let recovered = testenv::wait_for(&databases, COPY, all_ready, scenarios::POD_START * 2)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    eprintln!("recovered into 3 instances in {:?}", started.elapsed());
    let count = scenarios::psql(&client, &n, COPY, "SELECT count(*) FROM orders")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(count, "200", "rows from both timelines");
    let recovery = recovered
        .status
        .as_ref()
        .and_then(|s| s.recovery.clone())
        .unwrap_or_default();
    // Promoted after replaying timeline 2: onto timeline 3.
    assert!(recovery.timeline.is_some_and(|t| t >= 3), "{recovery:?}");
    assert!(recovery.base_backup.is_some(), "{recovery:?}");

    scenario.finish().await;
}
