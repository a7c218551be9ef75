//! Killing the database Pod: the Database goes un-Ready with a reason, and comes back by itself.

use std::collections::BTreeSet;

use api::Database;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::DeleteParams,
    runtime::{WatchStreamExt, watcher},
};

use scenarios::*;
use testenv::Operator;

#[tokio::test]
async fn killed_database_pod_goes_unready_and_recovers() {
    let mut scenario = Scenario::on_node("e2e-kill").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start(Operator::Database).await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);

    apply_yaml(&client, n, &node_database("victim").manifest())
        .await
        .unwrap();
    testenv::wait_for(&databases, "victim", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    psql(
        &client,
        n,
        "victim",
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));

    // Record every Ready reason the Database reports from here on, through a watch.
    let config = watcher::Config::default().fields("metadata.name=victim");
    let mut statuses = std::pin::pin!(watcher(databases.clone(), config).applied_objects());
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    pods.delete("victim-0", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let killed = std::time::Instant::now();

    let mut seen = BTreeSet::new();
    let mut went_unready = false;
    let recovered = tokio::time::timeout(POD_START, async {
        while let Some(Ok(db)) = statuses.next().await {
            seen.insert(ready_reason(&db));
            if !db.is_ready() {
                went_unready = true;
            } else if went_unready {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        went_unready,
        "the Database never reported the lost Pod; saw {seen:?}\n{}",
        scenario.logs()
    );
    assert_eq!(
        recovered,
        Ok(true),
        "no recovery; saw {seen:?}\n{}\n{}",
        scenario.dump(),
        scenario.logs()
    );
    println!(
        "pod killed -> Database Ready again in {:?}; Ready states seen: {seen:?}",
        killed.elapsed()
    );
    assert!(
        seen.iter()
            .any(|r| r.starts_with("False/") && r.len() > "False/".len()),
        "un-Ready with a reason: {seen:?}"
    );
    assert_eq!(
        psql(&client, n, "victim", "SELECT v FROM kept")
            .await
            .unwrap_or_else(|e| scenario.fail(e)),
        "survives"
    );

    scenario.finish().await;
}
