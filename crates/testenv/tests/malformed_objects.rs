//! Objects the operators' types cannot read: a Backup or Restore stored under a looser schema
//! than the operators know. Each is reported on by a Warning Event (`InvalidObject`), and the
//! valid objects beside it are reconciled as usual: one bad object never stalls a watch.
//!
//! A test binary of its own: it changes the cluster-wide Backup and Restore CRDs for its
//! duration, which no other test may see, and cargo runs test binaries one after another. The
//! CRDs are put back when it ends, panicking or not (`permissive_schemas`).

#[path = "composition/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "malformed_objects/permissive_schemas.rs"]
mod permissive_schemas;

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

use permissive_schemas::{Loosened, PermissiveSchemas};
use support::*;

const GROUP_VERSION: &str = "database.example.com/v1";

/// A Backup whose `retention` is a word: the operators' types want an integer.
fn backup_with_a_word_for_retention(name: &str) -> Value {
    json!({
        "apiVersion": GROUP_VERSION, "kind": "Backup", "metadata": {"name": name},
        "spec": {"databaseRef": {"name": "shop"}, "retention": "seven"}
    })
}

/// A Backup whose `databaseRef` is a number, not a reference.
fn backup_with_a_number_for_its_database(name: &str) -> Value {
    json!({
        "apiVersion": GROUP_VERSION, "kind": "Backup", "metadata": {"name": name},
        "spec": {"databaseRef": 5}
    })
}

/// A Restore whose `databaseRef` is a number, not a reference.
fn restore_with_a_number_for_its_database(name: &str) -> Value {
    json!({
        "apiVersion": GROUP_VERSION, "kind": "Restore", "metadata": {"name": name},
        "spec": {"backupRef": {"name": "nightly"}, "databaseRef": 5}
    })
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

const DATABASE: &str = "apiVersion: database.example.com/v1\nkind: Database\n\
    metadata: {name: shop}\n\
    spec: {databaseName: shop, username: shop_owner, storage: {size: 1Gi}}\n";
const NIGHTLY: &str = "apiVersion: database.example.com/v1\nkind: Backup\n\
    metadata: {name: nightly}\nspec: {databaseRef: {name: shop}}\n";
const REFRESH: &str = "apiVersion: database.example.com/v1\nkind: Restore\n\
    metadata: {name: refresh}\n\
    spec: {backupRef: {name: nightly}, databaseRef: {name: shop}}\n";

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
    let ns = cluster.namespace("malformed-objects").await.unwrap();
    let n = ns.name();
    let client = cluster.admin_client();

    // Already there when the operators start, so in their watches' first list.
    create(&client, n, backup_with_a_word_for_retention("listed"))
        .await
        .unwrap();
    create(&client, n, restore_with_a_number_for_its_database("listed"))
        .await
        .unwrap();
    let (mut db_op, mut backup_op) = start_both(cluster, n).await.unwrap();
    let fail =
        |e: anyhow::Error| -> ! { panic!("{e:#}\n{}\n{}", logs(&[&db_op, &backup_op]), ns.dump()) };
    // Created while they run, so a watch event.
    create(&client, n, backup_with_a_number_for_its_database("watched"))
        .await
        .unwrap();

    // Valid objects beside them go their usual way: a Database Ready, a Backup of it
    // Completed, a Restore of that given a phase.
    apply_yaml(&client, n, DATABASE).await.unwrap();
    play_kubelet(&client, n, "shop", 1).await.unwrap();
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&databases, "shop", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));
    apply_yaml(&client, n, NIGHTLY).await.unwrap();
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let backup = testenv::wait_for(&backups, "nightly", run_in_flight, CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));
    finish_backup_run(&client, n, &backup).await.unwrap();
    testenv::wait_for(&backups, "nightly", backup_completed, CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));
    apply_yaml(&client, n, REFRESH).await.unwrap();
    let restores: Api<Restore> = Api::namespaced(client.clone(), n);
    let phased = |r: Option<&Restore>| r.and_then(|r| r.status.as_ref()?.phase).is_some();
    testenv::wait_for(&restores, "refresh", phased, CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));

    // Each malformed object has its Warning, naming it and what could not be read.
    for (kind, name, word) in [
        ("Backup", "listed", "seven"),
        ("Backup", "watched", "integer"),
        ("Restore", "listed", "integer"),
    ] {
        let event = warning(&client, n, kind, name, "InvalidObject")
            .await
            .unwrap_or_else(|e| fail(e));
        let message = event.message.unwrap_or_default();
        assert!(
            message.contains(&format!("{kind} {name}")) && message.contains(word),
            "the Event about {kind} {name} should name it and say what is wrong: {message}"
        );
    }

    assert!(backup_op.is_running(), "{}", backup_op.log_tail(40));
    assert!(db_op.is_running(), "{}", db_op.log_tail(40));
    ns.cleanup().await.unwrap();
    schemas.restore().await.unwrap();
}
