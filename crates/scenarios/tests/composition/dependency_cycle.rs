//! Scenario 3: a Database whose backupRef names a Backup of that same Database can never
//! start; both operators say so in a condition instead of waiting on each other forever.

use api::{Backup, Database, conditions};
use kube::Api;

use scenarios::*;

#[tokio::test]
async fn a_backup_ref_cycle_is_reported_not_deadlocked() {
    let mut scenario = Scenario::new("cycle").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;

    let database = testkit::database("loop").backup_ref("loop-backup");
    scenario.apply(&database.manifest()).await;
    scenario
        .apply(&testkit::backup("loop-backup", "loop").manifest())
        .await;

    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let cycle = has_condition(
        database_condition,
        conditions::DEGRADED,
        "True",
        "DependencyCycle",
    );
    let db = testenv::wait_for(&databases, "loop", cycle, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(db.phase(), api::DatabasePhase::Failed);
    let status = db.status.unwrap();
    let message = &conditions::find(&status.conditions, conditions::DEGRADED)
        .unwrap()
        .message;
    assert!(
        message.contains("loop-backup"),
        "the message names the Backup: {message}"
    );

    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let cycle = has_condition(
        backup_condition,
        conditions::WAITING_FOR_DATABASE,
        "True",
        "DependencyCycle",
    );
    testenv::wait_for(&backups, "loop-backup", cycle, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    scenario.finish().await;
}
