//! Fault: etcd, then the API server, restarted under both operators. The operators survive
//! it, their watches recover (new objects and changes made afterwards are reconciled), and
//! nothing is created twice.
//!
//! A test binary of its own: a restart disturbs every client of the cluster, so no other test
//! may run meanwhile, and cargo runs test binaries one after another. It plays the kubelet in a
//! node-less namespace; the real node's kubelet must come back too (`Cluster::restart` waits
//! for it), so the test binaries after this one find a whole cluster.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Result;
use api::{Backup, Database, conditions};
use chrono::Utc;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    batch::v1::Job,
    core::v1::{PersistentVolumeClaim, Secret, Service},
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;
use testenv::{Component, Operator};

use scenarios::*;

/// How soon after a restart a change must reach the operators. Their watches retry within
/// five seconds (`runtime::watch_backoff`); with kube's default backoff, shared by all the
/// watches of a controller, a change here went unseen for over two minutes.
const WATCHES_BACK: Duration = Duration::from_secs(30);
/// How long steps that need the controller manager may take after a restart: it creates the
/// Pods of StatefulSets and Jobs and reports their status, and its watches back off for up to
/// 30 seconds (client-go's default), longer on a cluster busy with other tests.
const CONTROLLERS_BACK: Duration = Duration::from_secs(120);

/// Every object the operators own in `ns`, kind/name -> uid.
async fn owned_objects(client: &Client, ns: &str) -> Result<BTreeMap<String, String>> {
    async fn add<K>(client: &Client, ns: &str, all: &mut BTreeMap<String, String>) -> Result<()>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        for object in api.list(&ListParams::default()).await? {
            let key = format!("{}/{}", K::kind(&()), object.name_any());
            all.insert(key, object.uid().unwrap_or_default());
        }
        Ok(())
    }
    let mut all = BTreeMap::new();
    add::<StatefulSet>(client, ns, &mut all).await?;
    add::<Service>(client, ns, &mut all).await?;
    add::<Secret>(client, ns, &mut all).await?;
    add::<Job>(client, ns, &mut all).await?;
    add::<PersistentVolumeClaim>(client, ns, &mut all).await?;
    Ok(all)
}

/// Restarts `component`, kubelets back included (see `Cluster::restart`); returns how long
/// that took.
async fn restart(cluster: &testenv::Cluster, component: Component) -> Duration {
    let started = Instant::now();
    cluster
        .restart(component)
        .await
        .unwrap_or_else(|e| panic!("restarting {}: {e:#}", component.name()));
    started.elapsed()
}

async fn set_suspend(backups: &Api<Backup>, suspend: bool) {
    let patch = json!({"spec": {"suspend": suspend}});
    backups
        .patch(
            "before-nightly",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
}

/// Changes a Database's replicas and waits until the database-operator has seen the change:
/// it reports the new generation and has applied the replicas to the StatefulSet. (Whether
/// the Pods come up is the StatefulSet controller's business, not the operator's.)
async fn scale(client: &Client, ns: &str, name: &str, replicas: i32) -> Result<()> {
    let databases: Api<Database> = Api::namespaced(client.clone(), ns);
    let patch = json!({"spec": {"replicas": replicas}});
    let generation = databases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?
        .metadata
        .generation;
    let seen = move |db: Option<&Database>| {
        db.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.observed_generation == generation)
    };
    testenv::wait_for(&databases, name, seen, WATCHES_BACK).await?;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let applied = move |sts: Option<&StatefulSet>| {
        sts.and_then(|s| s.spec.as_ref())
            .is_some_and(|s| s.replicas == Some(replicas))
    };
    testenv::wait_for(&statefulsets, name, applied, WATCHES_BACK).await?;
    Ok(())
}

#[tokio::test]
async fn operators_survive_an_etcd_and_api_server_restart() {
    let mut scenario = Scenario::new("control-plane-restart").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);

    // Before: a Ready Database, a Backup of it Completed, and a scheduled Backup idle.
    scenario
        .apply(&testkit::database("before").manifest())
        .await;
    apply_yaml(
        &client,
        n,
        &testkit::backup("before-once", "before").manifest(),
    )
    .await
    .unwrap();
    let nightly = testkit::backup("before-nightly", "before")
        .schedule("0 2 * * *")
        .immediate(false);
    scenario.apply(&nightly.manifest()).await;
    play_kubelet(&client, n, "before", 1).await.unwrap();
    testenv::wait_for(&databases, "before", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let backup = testenv::wait_for(&backups, "before-once", run_in_flight, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    finish_backup_run(&client, n, &backup).await.unwrap();
    testenv::wait_for(&backups, "before-once", backup_completed, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let scheduled = has_condition(
        backup_condition,
        conditions::PROGRESSING,
        "False",
        "Scheduled",
    );
    testenv::wait_for(&backups, "before-nightly", scheduled, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let before = owned_objects(&client, n).await.unwrap();

    let restarted = Utc::now();

    // etcd first. Changes made afterwards reach both operators' watches.
    let took = restart(cluster, Component::Etcd).await;
    scenario.assert_operators_running();
    let changed = Instant::now();
    set_suspend(&backups, true).await;
    let suspended = has_condition(
        backup_condition,
        conditions::PROGRESSING,
        "False",
        "Suspended",
    );
    let nightly = testenv::wait_for(&backups, "before-nightly", suspended, WATCHES_BACK)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(nightly.status.unwrap().next_schedule_time, None);
    scale(&client, n, "before", 2)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    println!(
        "etcd restarted in {took:?}; changes reconciled {:?} later",
        changed.elapsed()
    );

    // Then the API server.
    let took = restart(cluster, Component::ApiServer).await;
    scenario.assert_operators_running();
    let changed = Instant::now();
    set_suspend(&backups, false).await;
    // Scheduled again (or waiting for its Database, whose new Pod no kubelet starts).
    let resumed = |b: Option<&Backup>| {
        b.and_then(|b| b.status.as_ref()).is_some_and(|s| {
            s.next_schedule_time.is_some()
                && conditions::find(&s.conditions, conditions::PROGRESSING)
                    .is_some_and(|c| c.reason != "Suspended")
        })
    };
    testenv::wait_for(&backups, "before-nightly", resumed, WATCHES_BACK)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    scale(&client, n, "before", 3)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    println!(
        "API server restarted in {took:?}; changes reconciled {:?} later",
        changed.elapsed()
    );

    // A Database created after the restart converges, and a Backup of it completes.
    scenario.apply(&testkit::database("after").manifest()).await;
    apply_yaml(
        &client,
        n,
        &testkit::backup("after-once", "after").manifest(),
    )
    .await
    .unwrap();
    play_kubelet_within(&client, n, "after", 1, CONTROLLERS_BACK)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_for(&databases, "after", database_ready, CONTROLLERS_BACK)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let backup = testenv::wait_for(&backups, "after-once", run_in_flight, CONTROLLERS_BACK)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    finish_backup_run(&client, n, &backup).await.unwrap();
    testenv::wait_for(&backups, "after-once", backup_completed, CONTROLLERS_BACK)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    // Nothing twice: what existed before is the same object, and each Backup has one Job.
    let after = owned_objects(&client, n).await.unwrap();
    for (object, uid) in &before {
        assert_eq!(
            after.get(object),
            Some(uid),
            "{object} was replaced or lost across the restart"
        );
    }
    let jobs: Vec<_> = after.keys().filter(|k| k.starts_with("Job/")).collect();
    assert_eq!(jobs.len(), 2, "one Job per one-shot Backup: {jobs:?}");
    // And since the restart the operators created only what the new Database and Backup need.
    for operator in Operator::ALL {
        let created: Vec<_> = cluster
            .audit_writes(&operator.username(), restarted)
            .unwrap()
            .into_iter()
            // Server-side apply creates with a patch: 201 Created either way.
            .filter(|e| {
                matches!(e.verb.as_str(), "create" | "patch")
                    && e.code() == Some(201)
                    && e.resource() != "events"
                    && e.namespace() == Some(n)
            })
            .collect();
        for event in &created {
            let name = event
                .object_ref
                .as_ref()
                .and_then(|o| o.name.clone())
                .unwrap_or_default();
            assert!(
                name.starts_with("after"),
                "{} created {event} after the restart: {:#?}",
                operator.name(),
                created.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        }
    }
    assert!(
        scenario.operator(Operator::Database).is_running()
            && scenario.operator(Operator::Backup).is_running()
    );

    scenario.finish().await;
}
