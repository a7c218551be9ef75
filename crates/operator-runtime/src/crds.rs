//! Waiting, before the controllers start, until the API server serves the kinds they watch.
//!
//! Started before its CRDs exist (installed in the same `kubectl apply`, or the other
//! operator's CRDs not installed yet), a controller's watches would fail and back off,
//! logging a warning each time. Instead the operator waits here, not ready, and says once
//! what it waits for. It asks with a one-item metadata list, which the operators' RBAC rules
//! allow (they list what they watch), not by reading the CRDs, which they do not.
//!
//! Here rather than in each operator because both start the same way; each passes the kinds
//! its own controllers watch.

use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};

/// How often to look again while a kind is not served.
const RETRY: Duration = Duration::from_secs(5);

/// Returns once every one of `kinds` (namespaced kinds, e.g.
/// `ApiResource::erase::<Backup>(&())`) is served in `namespace`, or in all namespaces.
pub async fn wait_until_served(client: &Client, namespace: Option<&str>, kinds: &[ApiResource]) {
    let mut logged: Vec<&str> = Vec::new();
    loop {
        let mut missing = Vec::new();
        for kind in kinds {
            if !served(client, namespace, kind).await {
                missing.push(kind.plural.as_str());
            }
        }
        if missing.is_empty() {
            if !logged.is_empty() {
                tracing::info!("every CRD is served now; starting the controllers");
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

/// Whether the API server serves `kind`. Only a 404 says no; any other error is left for the
/// watches to report, so this never holds the controllers back for long.
async fn served(client: &Client, namespace: Option<&str>, kind: &ApiResource) -> bool {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, kind),
        None => Api::all_with(client.clone(), kind),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Err(kube::Error::Api(status)) => !status.is_not_found(),
        Ok(_) | Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;

    use super::*;

    /// The kinds both operators watch, as plain API resources (this crate knows no CRD types).
    fn kinds() -> Vec<ApiResource> {
        ["databases", "backups", "restores"]
            .into_iter()
            .map(|plural| ApiResource {
                group: "database.example.com".into(),
                version: "v1".into(),
                api_version: "database.example.com/v1".into(),
                kind: plural.trim_end_matches('s').into(),
                plural: plural.into(),
            })
            .collect()
    }

    /// An API server that answers 404 for the `missing` plurals and an empty list otherwise,
    /// and the requests it saw as `path?query`.
    fn api_server(missing: &'static [&'static str]) -> (Client, Arc<Mutex<Vec<String>>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let uri = request.uri();
                let line = format!("{}?{}", uri.path(), uri.query().unwrap_or_default());
                let absent = missing.iter().any(|plural| uri.path().ends_with(plural));
                log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                let (code, body) = if absent {
                    let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                        "code": 404, "reason": "NotFound", "message": "not found"});
                    (404, status)
                } else {
                    let list = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                                      "metadata": {"resourceVersion": "1"}, "items": []});
                    (200, list)
                };
                let response = Response::builder()
                    .status(code)
                    .body(Body::from(body.to_string().into_bytes()))
                    .unwrap_or_else(|e| panic!("{e}"));
                respond.send_response(response);
            }
        });
        (Client::new(service, "default"), seen)
    }

    #[tokio::test]
    async fn returns_at_once_when_every_kind_is_served() {
        let (client, seen) = api_server(&[]);
        tokio::time::timeout(RETRY, wait_until_served(&client, Some("prod"), &kinds()))
            .await
            .unwrap_or_else(|_| panic!("waited although every kind is served"));
        let lines = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let paths: Vec<&str> = lines.iter().filter_map(|l| l.split('?').next()).collect();
        assert_eq!(
            paths,
            ["databases", "backups", "restores"]
                .map(|plural| format!("/apis/database.example.com/v1/namespaces/prod/{plural}")),
        );
        assert!(
            lines.iter().all(|l| l.contains("limit=1")),
            "one-item lists only: {lines:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waits_while_a_kind_is_not_served() {
        let (client, _) = api_server(&["restores"]);
        let kinds = kinds();
        let waited = tokio::time::timeout(RETRY * 3, wait_until_served(&client, None, &kinds));
        assert!(
            waited.await.is_err(),
            "returned although restores are not served"
        );
    }
}
