//! A standby whose volume is lost (its claim deleted with its Pod) comes back by itself: the
//! StatefulSet gives it a new, empty claim, and its manager clones it from the primary.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use scenarios::Scenario;

use super::cluster::{self, NAME};

#[tokio::test]
async fn a_standby_whose_volume_is_lost_is_cloned_again_from_the_primary() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-volume-lost").await;
    let db = cluster::ready_database(&mut scenario, 2).await;
    let status = db.status.unwrap_or_default();
    let primary = status.current_primary.clone().unwrap();
    let standby = status
        .instances
        .iter()
        .map(|i| i.name.clone())
        .find(|name| *name != primary)
        .unwrap();
    let rw = cluster::service_ip(&scenario, NAME).await;
    cluster::psql_on(
        &scenario,
        &rw,
        "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 1000)",
    )
    .await
    .unwrap();

    // The claim is protected while its Pod uses it: deleting the Pod lets it go.
    let claims: Api<PersistentVolumeClaim> = scenario.api();
    let claim_name = format!("data-{standby}");
    let old_claim = claims.get(&claim_name).await.unwrap().uid().unwrap();
    claims
        .delete(&claim_name, &DeleteParams::default())
        .await
        .unwrap();
    let pods: Api<Pod> = scenario.api();
    pods.delete(&standby, &DeleteParams::default())
        .await
        .unwrap();

    cluster::eventually(
        Duration::from_secs(120),
        "a new claim for the standby",
        || async {
            let claim = claims.get_opt(&claim_name).await?;
            Ok(claim
                .and_then(|c| c.uid())
                .filter(|uid| *uid != old_claim)
                .map(|_| ()))
        },
    )
    .await;
    cluster::wait_streaming(&scenario, &primary, &standby, Duration::from_secs(180)).await;
    // Rows written after the clone reach it too.
    cluster::psql_on(&scenario, &rw, "INSERT INTO orders VALUES (1001)")
        .await
        .unwrap();
    let standby_ip = cluster::ip_of(&pods.get(&standby).await.unwrap());
    let count = cluster::eventually(
        Duration::from_secs(10),
        "the standby with every row",
        || async {
            let count =
                cluster::psql_on(&scenario, &standby_ip, "SELECT count(*) FROM orders").await?;
            Ok((count == "1001").then_some(count))
        },
    )
    .await;
    assert_eq!(count, "1001");
    assert_eq!(
        cluster::psql_on(&scenario, &standby_ip, "SELECT pg_is_in_recovery()")
            .await
            .unwrap(),
        "t"
    );
    cluster::assert_only_primary(&scenario, &primary).await;
    scenario.finish().await;
}
