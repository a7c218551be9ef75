//! The test cluster itself: it starts, enforces RBAC, and audits writes.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use chrono::Utc;
use k8s_openapi::{
    api::{
        authentication::v1::SelfSubjectReview,
        core::v1::{ConfigMap, Namespace, Secret, ServiceAccount},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api,
    api::{ListParams, ObjectMeta, PostParams},
};
use testenv::Operator;

fn forbidden<T>(result: &kube::Result<T>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

#[tokio::test]
async fn cluster_serves_requests_as_admin() -> Result<()> {
    let cluster = testenv::cluster().await?;
    let client = cluster.admin_client();
    let version = client.apiserver_version().await?;
    ensure!(
        version.major == "1" && version.minor == "36",
        "expected Kubernetes 1.36, got {version:?}"
    );
    Api::<Namespace>::all(client).get("default").await?;
    Ok(())
}

#[tokio::test]
async fn service_account_without_rights_is_forbidden() -> Result<()> {
    let cluster = testenv::cluster().await?;
    let ns = cluster.namespace("sa-forbidden").await?;
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("nobody".into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    Api::<ServiceAccount>::namespaced(cluster.admin_client(), ns.name())
        .create(&PostParams::default(), &account)
        .await?;
    let client = cluster.service_account_client(ns.name(), "nobody").await?;

    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let username = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username);
    assert_eq!(
        username.as_deref(),
        Some(format!("system:serviceaccount:{}:nobody", ns.name()).as_str())
    );
    let secrets = Api::<Secret>::all(client)
        .list(&ListParams::default())
        .await;
    assert!(forbidden(&secrets), "listing all secrets: {secrets:?}");
    ns.cleanup().await
}

#[tokio::test]
async fn audit_log_records_writes() -> Result<()> {
    let cluster = testenv::cluster().await?;
    let ns = cluster.namespace("audit").await?;
    let since = Utc::now();
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("audited".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    let configs: Api<ConfigMap> = Api::namespaced(cluster.admin_client(), ns.name());
    configs.create(&PostParams::default(), &config_map).await?;
    configs.get("audited").await?;

    // The event is written just after the response, so it may trail the request briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = cluster.audit_writes("kubernetes-admin", since)?;
        let ours: Vec<_> = events
            .iter()
            .filter(|e| e.namespace() == Some(ns.name()))
            .cloned()
            .collect();
        if !ours.is_empty() || tokio::time::Instant::now() >= deadline {
            break ours;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<String> = events.iter().map(ToString::to_string).collect();
    // Exactly one: the read is not a write, and each request is logged once.
    assert_eq!(
        events.len(),
        1,
        "writes by the admin in {}: {lines:#?}",
        ns.name()
    );
    assert_eq!(events[0].verb, "create");
    assert_eq!(events[0].resource(), "configmaps");
    assert_eq!(events[0].code(), Some(201));
    ns.cleanup().await
}

/// Each operator's ServiceAccount (from deploy/<operator>/) is a real, restricted identity.
#[tokio::test]
async fn operator_clients_act_as_their_service_accounts() -> Result<()> {
    let cluster = testenv::cluster().await?;
    for operator in Operator::ALL {
        let client = cluster
            .operator_client(operator)
            .await
            .with_context(|| format!("an identity for {}", operator.name()))?;
        let review = Api::<SelfSubjectReview>::all(client.clone())
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await?;
        let username = review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username);
        ensure!(
            username == Some(operator.username()),
            "{} authenticated as {username:?}",
            operator.name()
        );
        // CRDs are installed by whoever installs the operator, never by the operator itself.
        let crd = CustomResourceDefinition {
            metadata: ObjectMeta {
                name: Some("widgets.testenv.example.com".into()),
                ..ObjectMeta::default()
            },
            ..CustomResourceDefinition::default()
        };
        let created = Api::<CustomResourceDefinition>::all(client)
            .create(
                &PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                &crd,
            )
            .await;
        if !forbidden(&created) {
            bail!(
                "{} may create CRDs (or the request failed otherwise): {created:?}",
                operator.name()
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn wait_for_returns_the_object_or_shows_it_on_timeout() -> Result<()> {
    let cluster = testenv::cluster().await?;
    let ns = cluster.namespace("wait-for").await?;
    let configs: Api<ConfigMap> = Api::namespaced(cluster.admin_client(), ns.name());
    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "watched"},
        "data": {"phase": "one"}
    }))?;
    configs.create(&PostParams::default(), &config_map).await?;

    let phase_is = |want: &'static str| {
        move |c: Option<&ConfigMap>| {
            c.and_then(|c| c.data.as_ref())
                .and_then(|d| d.get("phase"))
                .is_some_and(|p| p == want)
        }
    };
    let found = testenv::wait_for(
        &configs,
        "watched",
        phase_is("one"),
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(found.metadata.name.as_deref(), Some("watched"));

    let err = testenv::wait_for(&configs, "watched", phase_is("two"), Duration::from_secs(1))
        .await
        .expect_err("the phase never becomes two");
    let message = format!("{err:#}");
    assert!(message.contains("timed out"), "{message}");
    assert!(
        message.contains("phase: one"),
        "the error shows the object: {message}"
    );
    assert!(!message.contains("managedFields"), "{message}");
    ns.cleanup().await
}

#[tokio::test]
async fn cleanup_deletes_the_namespace() -> Result<()> {
    let cluster = testenv::cluster().await?;
    let ns = cluster.namespace("cleanup").await?;
    let name = ns.name().to_string();
    ns.cleanup().await?;
    let namespaces: Api<Namespace> = Api::all(cluster.admin_client());
    testenv::wait_deleted(&namespaces, &name, Duration::from_secs(60)).await
}

/// Without PGOP_NODE=1 there is no node, and a test that needs one says how to get it.
#[tokio::test]
async fn node_namespace_requires_a_ready_node() -> Result<()> {
    let cluster = testenv::cluster().await?;
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(cluster.admin_client())
        .list(&ListParams::default())
        .await?;
    match cluster.node_namespace("needs-node").await {
        Ok(ns) => {
            assert!(!nodes.items.is_empty(), "a node namespace without nodes");
            ns.cleanup().await
        }
        Err(e) => {
            let message = format!("{e:#}");
            assert!(message.contains("PGOP_NODE=1"), "{message}");
            Ok(())
        }
    }
}
