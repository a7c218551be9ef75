//! Scenario 6: once everything is Ready and the operators are idle, they write nothing.
//! Counted from the API server's audit log, not from the operators' own word.

use std::time::Duration;

use api::Backup;
use kube::Api;
use testenv::Operator;

use scenarios::*;

/// The window the issue asks for: a minute of idleness.
const IDLE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn idle_operators_make_no_writes() {
    let mut scenario = Scenario::new("steady").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;

    scenario.seed_until_ready().await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&backups, "my-database-backup", run_in_flight, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    // Everything has converged; whatever the operators still write from here on is waste.
    // Give in-flight requests a moment to land in the audit log before the window opens.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(IDLE).await;

    for operator in Operator::ALL {
        let writes: Vec<_> = cluster
            .audit_writes(&operator.username(), since)
            .unwrap()
            .into_iter()
            .filter(|w| w.namespace() == Some(n))
            .collect();
        assert!(
            writes.is_empty(),
            "{} wrote {} times in a steady state: {writes:#?}\n{}",
            operator.name(),
            writes.len(),
            scenario.logs()
        );
    }
    println!("steady state: 0 writes by either operator in {IDLE:?}");

    scenario.finish().await;
}
