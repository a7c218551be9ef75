//! Scenario 2: a Database with `backupRef` provisions nothing until its Backup is ready, and
//! provisions as soon as the Backup's BackupReady turns True, by watch.
//!
//! Only the database-operator runs here; the test writes the Backup's status the way the
//! backup-operator would, so the moment BackupReady turns True is the test's to choose.

use std::time::{Duration, Instant};

use api::{Backup, Database, conditions};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Secret, events::v1::Event};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;
use testenv::Operator;

use scenarios::*;

#[tokio::test]
async fn database_waits_for_its_backup_and_provisions_when_it_is_ready() {
    let mut scenario = Scenario::new("backup-ref").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start(Operator::Database).await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), n);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);

    // The Backup does not exist yet.
    let copy = testkit::database("copy")
        .image("postgres:17")
        .backup_ref("source-nightly");
    scenario.apply(&copy.manifest()).await;
    let not_found = has_condition(
        database_condition,
        conditions::WAITING_FOR_BACKUP,
        "True",
        "BackupNotFound",
    );
    let db = testenv::wait_for(&databases, "copy", not_found, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(db.phase(), api::DatabasePhase::Pending);
    assert!(!db.is_ready());

    // It exists but has no verified artifact yet.
    scenario
        .apply(&testkit::backup("source-nightly", "source").manifest())
        .await;
    let not_ready = has_condition(
        database_condition,
        conditions::WAITING_FOR_BACKUP,
        "True",
        "BackupNotReady",
    );
    let db = testenv::wait_for(&databases, "copy", not_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(db.phase(), api::DatabasePhase::Pending);

    // Nothing was provisioned while waiting, and the wait was announced with an Event.
    assert!(statefulsets.get_opt("copy").await.unwrap().is_none());
    assert!(secrets.get_opt("copy-credentials").await.unwrap().is_none());
    let events: Api<Event> = Api::namespaced(client.clone(), n);
    let wait_events = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        wait_events
            .iter()
            .any(
                |e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("copy")
                    && e.note.as_deref().unwrap_or("").contains("source-nightly")
            ),
        "an Event on the Database names the Backup it waits for: {wait_events:#?}"
    );

    // The Backup turns ready: the Database provisions at once, woken by its watch on Backups.
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "phase": "Completed",
        "conditions": [{"type": "BackupReady", "status": "True", "reason": "ArtifactVerified",
                        "message": "artifact verified", "lastTransitionTime": now}]
    }});
    let turned_ready = Instant::now();
    backups
        .patch_status(
            "source-nightly",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
    let exists = |s: Option<&StatefulSet>| s.is_some();
    testenv::wait_for(&statefulsets, "copy", exists, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let latency = turned_ready.elapsed();
    println!("BackupReady=True -> StatefulSet created in {latency:?}");
    // No periodic requeue could be this quick: the operator requeues nothing on a timer.
    assert!(
        latency < Duration::from_secs(10),
        "provisioning took {latency:?}: not driven by a watch"
    );

    let released = has_condition(
        database_condition,
        conditions::WAITING_FOR_BACKUP,
        "False",
        "BackupReady",
    );
    let db = testenv::wait_for(&databases, "copy", released, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_ne!(db.phase(), api::DatabasePhase::Pending);
    assert!(secrets.get_opt("copy-credentials").await.unwrap().is_some());

    scenario.finish().await;
}
