//! Waiting, before the controller starts, until the API server serves the kinds it watches.
//!
//! Started before its CRDs exist (installed in the same `kubectl apply`, or the
//! backup-operator's CRDs not installed yet), the controller's watches would fail and back
//! off, logging a warning each time. Instead it waits here, not ready, and says once what it
//! waits for. It asks with a one-item metadata list, which its RBAC rules allow, not by
//! reading the CRDs, which they do not.

use std::time::Duration;

use api::{Backup, Database, Restore};
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// How often to look again while a kind is not served.
const RETRY: Duration = Duration::from_secs(5);

/// Returns once Databases, Backups and Restores are all served.
pub async fn wait_until_served(client: &Client, namespace: Option<&str>) {
    let mut logged = Vec::new();
    loop {
        let mut missing = Vec::new();
        for (kind, served) in [
            ("databases", served::<Database>(client, namespace).await),
            ("backups", served::<Backup>(client, namespace).await),
            ("restores", served::<Restore>(client, namespace).await),
        ] {
            if !served {
                missing.push(kind);
            }
        }
        if missing.is_empty() {
            if !logged.is_empty() {
                tracing::info!("every CRD is served now; starting the controller");
            }
            return;
        }
        if missing != logged {
            tracing::info!(
                ?missing,
                "waiting for the CRDs of these kinds (kubectl apply --server-side -f deploy/crds)"
            );
            logged = missing;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Whether the API server serves `K`. Only a 404 says no; any other error is left for the
/// watches to report, so this never holds the controller back for long.
async fn served<K>(client: &Client, namespace: Option<&str>) -> bool
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Err(kube::Error::Api(status)) => !status.is_not_found(),
        Ok(_) | Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api::FakeApi;
    use serde_json::json;

    /// A fake API server that serves empty lists of the three kinds in `prod`.
    fn serving() -> (Client, FakeApi) {
        let (client, fake) = FakeApi::start();
        for plural in ["databases", "backups", "restores"] {
            fake.put(
                &format!("/apis/database.example.com/v1/namespaces/prod/{plural}"),
                json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}),
            );
        }
        (client, fake)
    }

    #[tokio::test]
    async fn returns_at_once_when_every_kind_is_served() {
        let (client, fake) = serving();
        tokio::time::timeout(RETRY, wait_until_served(&client, Some("prod")))
            .await
            .unwrap_or_else(|_| panic!("waited although every kind is served"));
        let lines: Vec<String> = fake.requests().iter().map(|r| r.line()).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines.iter().all(|l| l.contains("limit=1")),
            "one-item lists only: {lines:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waits_while_a_kind_is_not_served() {
        let (client, fake) = serving();
        fake.fail(
            "GET",
            "/apis/database.example.com/v1/namespaces/prod/restores",
            404,
            "NotFound",
        );
        let waited = tokio::time::timeout(RETRY * 3, wait_until_served(&client, Some("prod")));
        assert!(
            waited.await.is_err(),
            "returned although restores are not served"
        );
    }
}
