//! A small in-memory Kubernetes API server behind a `tower-test` mock, for reconcile tests.
//!
//! It records every request (method, path, query, body) and answers the few verbs the
//! operator uses: GET of one object or of a label-selected list, server-side apply PATCH
//! (objects and `/status`), and POST. Tests seed objects by path, drive `reconcile`, then
//! assert the exact requests, so a stray write fails the test.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the operator sent.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
}

impl Recorded {
    /// `METHOD /path?query`, the form tests assert on.
    pub fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }
}

#[derive(Default)]
struct World {
    objects: BTreeMap<String, Value>,
    requests: Vec<Recorded>,
    /// (method, path) → (HTTP code, reason) answered instead of the normal response.
    failures: BTreeMap<(String, String), (u16, String)>,
}

/// Handle on the fake server; clones share the same world.
#[derive(Clone, Default)]
pub struct FakeApi {
    world: Arc<Mutex<World>>,
}

impl FakeApi {
    /// A client talking to a new, empty fake API server.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi::default();
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = server.answer(request).await;
                send.send_response(response);
            }
        });
        (Client::new(service, "default"), fake)
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `object` at `path`, as if it existed in the cluster.
    pub fn put(&self, path: &str, object: Value) {
        self.world().objects.insert(path.to_string(), object);
    }

    /// The object at `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.world().objects.get(path).cloned()
    }

    /// Answers `method path` with an error `code` from now on.
    pub fn fail(&self, method: &str, path: &str, code: u16, reason: &str) {
        self.world()
            .failures
            .insert((method.into(), path.into()), (code, reason.into()));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.world().requests.clone()
    }

    /// Every request that is not a GET, in order.
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    /// The GETs, sorted (they may run concurrently).
    pub fn reads(&self) -> Vec<String> {
        let mut reads: Vec<String> = self
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET")
            .map(|r| r.line())
            .collect();
        reads.sort();
        reads
    }

    pub fn forget_requests(&self) {
        self.world().requests.clear();
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let mut world = self.world();
        world.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: body.clone(),
        });
        if let Some((code, reason)) = world.failures.get(&(method.clone(), path.clone())) {
            return status(
                *code,
                reason,
                &format!("{method} {path} refused by the test"),
            );
        }
        match (method.as_str(), body) {
            ("GET", _) if query.contains("labelSelector=") => {
                let selector = query_value(&query, "labelSelector");
                let items: Vec<Value> = world
                    .objects
                    .iter()
                    .filter(|(key, _)| {
                        key.strip_prefix(&format!("{path}/"))
                            .is_some_and(|rest| !rest.contains('/'))
                    })
                    .filter(|(_, object)| matches_selector(object, &selector))
                    .map(|(_, object)| object.clone())
                    .collect();
                let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items});
                ok(StatusCode::OK, &list)
            }
            ("GET", _) => match world.objects.get(&path) {
                Some(object) => ok(StatusCode::OK, object),
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            ("PATCH", Some(patch)) if path.ends_with("/status") => {
                let base = path.trim_end_matches("/status").to_string();
                let Some(object) = world.objects.get_mut(&base) else {
                    return status(404, "NotFound", &format!("{base} not found"));
                };
                object["status"] = patch["status"].clone();
                ok(StatusCode::OK, object)
            }
            ("PATCH", Some(mut patch)) => {
                let existing = world.objects.get(&path).cloned();
                let generation = match &existing {
                    Some(old) if old["spec"] == patch["spec"] => {
                        old["metadata"]["generation"].clone()
                    }
                    Some(old) => json!(old["metadata"]["generation"].as_i64().unwrap_or(0) + 1),
                    None => json!(1),
                };
                patch["metadata"]["generation"] = generation;
                patch["metadata"]["uid"] = json!(format!("uid{}", path.len()));
                if let Some(old_status) = existing.map(|o| o["status"].clone())
                    && !old_status.is_null()
                {
                    patch["status"] = old_status;
                }
                world.objects.insert(path, patch.clone());
                ok(StatusCode::OK, &patch)
            }
            ("POST", Some(object)) => {
                let name = object["metadata"]["name"].as_str().unwrap_or("unnamed");
                world
                    .objects
                    .insert(format!("{path}/{name}"), object.clone());
                ok(StatusCode::CREATED, &object)
            }
            _ => status(
                405,
                "MethodNotAllowed",
                &format!("{method} {path} is not served"),
            ),
        }
    }
}

fn ok(code: StatusCode, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = code;
    response
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    let mut response = ok(StatusCode::OK, &body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// The decoded value of `key` in a URL query.
fn query_value(query: &str, key: &str) -> String {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| {
            v.replace("%2F", "/")
                .replace("%3D", "=")
                .replace("%2C", ",")
        })
        .unwrap_or_default()
}

/// Equality-based selectors only (`a=b,c=d`), which is all the operator sends.
fn matches_selector(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        object["metadata"]["labels"][key].as_str() == Some(value)
    })
}
