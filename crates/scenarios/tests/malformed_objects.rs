//! Objects the operators' types cannot read: a Backup or Restore stored under a looser schema
//! than the operators know. Each is reported on by a Warning Event (`InvalidObject`), and the
//! valid objects beside it are reconciled as usual: one bad object never stalls a watch.
//!
//! A test binary of its own: it changes the cluster-wide Backup and Restore CRDs for its
//! duration, which no other test may see, and cargo runs test binaries one after another. The
//! CRDs are put back when it ends, panicking or not (`permissive_schemas`).

mod malformed_objects {
    pub mod permissive_schemas;
}

use anyhow::{Context, Result};
use api::{Backup, Database, Restore};
use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::Event;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, PostParams},
    runtime::{WatchStreamExt as _, watcher},
};
use serde_json::{Value, json};

use malformed_objects::permissive_schemas::{Loosened, PermissiveSchemas};
use scenarios::*;

/// A Backup whose `retention` is a word: the operators' types want an integer.
fn backup_with_a_word_for_retention(name: &str) -> Value {
    testkit::backup(name, "shop")
        .set("/spec/retention", json!("seven"))
        .json()
}

/// A Backup whose `databaseRef` is a number, not a reference.
fn backup_with_a_number_for_its_database(name: &str) -> Value {
    testkit::backup(name, "shop")
        .set("/spec/databaseRef", json!(5))
        .json()
}

/// A Restore whose `databaseRef` is a number, not a reference.
fn restore_with_a_number_for_its_database(name: &str) -> Value {
    testkit::restore(name, "nightly", "shop")
        .set("/spec/databaseRef", json!(5))
        .json()
}

/// Creates `object` untyped: the typed clients could not even express it.
async fn create(client: &Client, ns: &str, object: Value) -> Result<()> {
    let resource = match object["kind"].as_str() {
        Some("Backup") => ApiResource::erase::<Backup>(&()),
        Some("Restore") => ApiResource::erase::<Restore>(&()),
        other => anyhow::bail!("no API for {other:?}"),
    };
    let object: DynamicObject = serde_json::from_value(object)?;
    let name = object.metadata.name.clone().unwrap_or_default();
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource)
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {} {name}", resource.kind))?;
    Ok(())
}

/// Waits for a Warning Event with `reason` about the `kind` object `name`, and returns it.
async fn warning(client: &Client, ns: &str, kind: &str, name: &str, reason: &str) -> Result<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let fields = format!(
        "involvedObject.kind={kind},involvedObject.name={name},reason={reason},type=Warning"
    );
    let first = async {
        let stream = watcher(events, watcher::Config::default().fields(&fields)).applied_objects();
        futures::pin_mut!(stream);
        stream.try_next().await
    };
    tokio::time::timeout(CONVERGE, first)
        .await
        .with_context(|| format!("no {reason} Warning about {kind} {name} within {CONVERGE:?}"))?
        .with_context(|| format!("watching the Events of {kind} {name}"))?
        .with_context(|| format!("the Events of {kind} {name} ended"))
}

#[tokio::test]
async fn malformed_objects_are_reported_and_the_valid_ones_still_reconciled() {
    let cluster = testenv::cluster().await.expect("test cluster");
    // Before the namespace, so it is dropped after it: the namespace goes while the loose
    // schemas still accept what is in it.
    let schemas = PermissiveSchemas::install(
        cluster,
        vec![
            Loosened::new(
                "backups.database.example.com",
                backup_with_a_word_for_retention("schema-probe"),
            )
            .unwrap(),
            Loosened::new(
                "restores.database.example.com",
                restore_with_a_number_for_its_database("schema-probe"),
            )
            .unwrap(),
        ],
    )
    .await
    .unwrap();
    let mut scenario = Scenario::new("malformed-objects").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();

    // Already there when the operators start, so in their watches' first list.
    create(&client, n, backup_with_a_word_for_retention("listed"))
        .await
        .unwrap();
    create(&client, n, restore_with_a_number_for_its_database("listed"))
        .await
        .unwrap();
    scenario.start_both().await;
    // Created while they run, so a watch event.
    create(&client, n, backup_with_a_number_for_its_database("watched"))
        .await
        .unwrap();

    // Valid objects beside them go their usual way: a Database Ready, a Backup of it
    // Completed, a Restore of that given a phase.
    scenario.apply(&testkit::database("shop").manifest()).await;
    scenario.play_kubelet("shop", 1).await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&databases, "shop", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    scenario
        .apply(&testkit::backup("nightly", "shop").manifest())
        .await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let backup = testenv::wait_for(&backups, "nightly", run_in_flight, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    finish_backup_run(&client, n, &backup).await.unwrap();
    testenv::wait_for(&backups, "nightly", backup_completed, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    scenario
        .apply(&testkit::restore("refresh", "nightly", "shop").manifest())
        .await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), n);
    let phased = |r: Option<&Restore>| r.and_then(|r| r.status.as_ref()?.phase).is_some();
    testenv::wait_for(&restores, "refresh", phased, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    // Each malformed object has its Warning, naming it and what could not be read.
    for (kind, name, word) in [
        ("Backup", "listed", "seven"),
        ("Backup", "watched", "integer"),
        ("Restore", "listed", "integer"),
    ] {
        let event = warning(&client, n, kind, name, "InvalidObject")
            .await
            .unwrap_or_else(|e| scenario.fail(e));
        let message = event.message.unwrap_or_default();
        assert!(
            message.contains(&format!("{kind} {name}")) && message.contains(word),
            "the Event about {kind} {name} should name it and say what is wrong: {message}"
        );
    }

    scenario.assert_operators_running();
    scenario.finish().await;
    schemas.restore().await.unwrap();
}
