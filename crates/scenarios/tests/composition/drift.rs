//! Hand edits to what the database-operator manages are put back within seconds, with a
//! Warning Event naming the field, and a steady state still writes nothing. Both counted
//! from the API server's audit log.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use testenv::Operator;

use scenarios::*;

/// How soon a revert must land: a watch event and one reconcile.
const REVERT: Duration = Duration::from_secs(10);
/// Quiet time after the reverts in which the operator must write nothing.
const IDLE: Duration = Duration::from_secs(20);

/// A strategic-merge patch by another field manager, as `kubectl edit` or `kubectl patch` is.
async fn hand_edit<K>(api: &Api<K>, name: &str, patch: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap_or_else(|e| panic!("editing {name}: {e}"));
}

/// Waits until `check` holds for the object, or fails after [`REVERT`].
async fn reverted<K>(
    api: &Api<K>,
    name: &str,
    check: impl Fn(&K) -> bool + Send + Sync + 'static,
) -> Duration
where
    K: kube::Resource
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let started = Instant::now();
    testenv::wait_for(
        api,
        name,
        move |o: Option<&K>| o.is_some_and(&check),
        REVERT,
    )
    .await
    .unwrap_or_else(|e| panic!("{name} was not put back within {REVERT:?}: {e:#}"));
    started.elapsed()
}

#[tokio::test]
async fn hand_edits_to_managed_objects_are_reverted_and_reported() {
    let mut scenario = Scenario::new("drift").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start(Operator::Database).await;
    apply_yaml(&client, n, &sample("seed-database.yaml"))
        .await
        .unwrap();
    play_kubelet(&client, n, "my-database", 1).await.unwrap();
    let databases = Api::namespaced(client.clone(), n);
    testenv::wait_for(&databases, "my-database", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), n);
    let services: Api<Service> = Api::namespaced(client.clone(), n);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);
    fn image(sts: &StatefulSet) -> Option<Option<String>> {
        sts.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].image.clone())
    }
    let want_image = image(&statefulsets.get("my-database").await.unwrap());
    let password = secrets
        .get("my-database-credentials")
        .await
        .unwrap()
        .data
        .unwrap()["password"]
        .clone();
    let since = chrono::Utc::now();

    // The image of the PostgreSQL container.
    hand_edit(
        &statefulsets,
        "my-database",
        json!({"spec": {"template": {"spec": {
        "containers": [{"name": "postgres", "image": "postgres:16"}]}}}}),
    )
    .await;
    let took = reverted(&statefulsets, "my-database", move |s| {
        image(s) == want_image
    })
    .await;
    println!("StatefulSet image put back in {took:?}");

    // The client Service's selector.
    hand_edit(
        &services,
        "my-database",
        json!({"spec": {"selector": {"app.kubernetes.io/name": "other"}}}),
    )
    .await;
    let took = reverted(&services, "my-database", |s| {
        s.spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|l| l.get("app.kubernetes.io/name"))
            == Some(&"postgresql".to_string())
    })
    .await;
    println!("Service selector put back in {took:?}");

    // A key of the credentials Secret; the password itself is kept.
    hand_edit(
        &secrets,
        "my-database-credentials",
        json!({"data": {"username": "bWFsbG9yeQ=="}}),
    )
    .await;
    let took = reverted(&secrets, "my-database-credentials", |s| {
        s.data
            .as_ref()
            .and_then(|d| d.get("username"))
            .map(|b| b.0.as_slice())
            == Some(b"admin".as_slice())
    })
    .await;
    println!("Secret username put back in {took:?}");
    let secret = secrets.get("my-database-credentials").await.unwrap();
    assert_eq!(
        secret.data.as_ref().unwrap()["password"],
        password,
        "the password is kept"
    );

    // Each Event is written after the revert it reports, so it may trail the revert a little.
    let fields = [
        "StatefulSet my-database: spec.template.spec.containers[0].image",
        "Service my-database: spec.selector",
        "Secret my-database-credentials: data.username",
    ];
    let deadline = Instant::now() + REVERT;
    let notes = loop {
        let notes = event_notes(&scenario, "DriftReverted").await;
        let all_reported = fields
            .iter()
            .all(|field| notes.iter().any(|n| n.starts_with(field)));
        if all_reported || Instant::now() > deadline {
            break notes;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for field in fields {
        assert!(
            notes.iter().any(|n| n.starts_with(field)),
            "no DriftReverted Event starting {field:?} within {REVERT:?}: {notes:#?}\n{}",
            scenario.logs()
        );
    }

    // One write per revert, then nothing: the audit log of the operator's own identity.
    tokio::time::sleep(IDLE).await;
    let writes: Vec<_> = cluster
        .audit_writes(&Operator::Database.username(), since)
        .unwrap()
        .into_iter()
        .filter(|w| w.namespace() == Some(n))
        // Status patches follow the Pod the StatefulSet controller rolled for the image
        // edit; what matters here is that no owned object is written twice.
        .filter(|w| ["secrets", "services", "statefulsets"].contains(&w.resource().as_str()))
        .collect();
    let mut resources: Vec<String> = writes
        .iter()
        .map(|w| format!("{} {}", w.verb, w.resource()))
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        ["patch secrets", "patch services", "patch statefulsets"],
        "exactly one apply per hand edit, nothing after: {writes:#?}\n{}",
        scenario.logs()
    );
    scenario.finish().await;
}
