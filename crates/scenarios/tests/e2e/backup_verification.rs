//! A Backup with `verification` on a real node: after its first run, a drill Job restores
//! the artifact into a throwaway server in the Database's image, the Backup goes Verified
//! with the tables and rows checked, and the drill leaves no Job, Pod or claim behind.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use api::conditions::{self, VERIFIED};
use api::{Backup, Database, VerificationResult};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt as _};
use serde_json::json;

use scenarios::*;

const DRILLS: &str = "app.kubernetes.io/component=verify";

fn verified(b: Option<&Backup>) -> bool {
    b.and_then(|b| b.status.as_ref())
        .is_some_and(|s| s.last_verification.is_some())
}

#[tokio::test]
async fn a_backup_with_verification_is_proven_restorable_and_the_drill_leaves_nothing() {
    let mut scenario = Scenario::on_node("e2e-drill").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;

    apply_yaml(&client, n, &node_database("shop").manifest())
        .await
        .unwrap();
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&databases, "shop", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let setup = "CREATE TABLE items (id int PRIMARY KEY, label text); \
                 CREATE TABLE \"order lines\" (id int); \
                 INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 250) g; \
                 INSERT INTO \"order lines\" VALUES (1), (2)";
    psql(&client, n, "shop", setup)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    let backup = testkit::backup("drilled", "shop").set(
        "/spec/verification",
        json!({"query": "SELECT count(*) = 250 FROM items"}),
    );
    scenario.apply(&backup.manifest()).await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let started = Instant::now();
    let backup = testenv::wait_for(&backups, "drilled", verified, POD_START * 2)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    println!("apply -> first drill recorded: {:?}", started.elapsed());

    let status = backup.status.clone().unwrap();
    let last = status.last_verification.clone().unwrap();
    assert_eq!(last.result, VerificationResult::Passed, "{last:#?}");
    assert_eq!(last.run_id, status.history[0].run_id);
    assert_eq!(last.tables_checked, Some(2), "{last:#?}");
    assert_eq!(last.rows_checked, Some(252), "{last:#?}");
    assert_eq!(last.row_counts_compared, Some(true));
    assert_eq!(status.history[0].verified, Some(true));
    assert_eq!(status.last_verified_time, Some(last.time.clone()));
    let condition = conditions::find(&status.conditions, VERIFIED).unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "Verified"),
        "{condition:#?}"
    );

    // Once recorded, the drill's Job and Pod are deleted; it made no claim of its own.
    let jobs: Api<Job> = Api::namespaced(client.clone(), n);
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    let drills = ListParams::default().labels(DRILLS);
    let deadline = Instant::now() + POD_START;
    loop {
        let left_jobs = jobs.list(&drills).await.unwrap().items.len();
        let left_pods = pods.list(&drills).await.unwrap().items.len();
        if left_jobs == 0 && left_pods == 0 {
            break;
        }
        if Instant::now() > deadline {
            scenario.fail(anyhow::anyhow!(
                "{left_jobs} drill Jobs and {left_pods} drill Pods left after {POD_START:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), n);
    let claims: BTreeSet<String> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(
        claims,
        BTreeSet::from(["data-shop-0".to_string(), "drilled-artifacts".to_string()])
    );

    scenario.finish().await;
}
