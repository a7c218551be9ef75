//! A scripted API server for reconcile tests: each test lists the exact requests it expects,
//! in order, with the reply to each. A request out of order fails the test with both
//! requests shown; an extra request fails the reconcile, because the server is gone.

use std::sync::Arc;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use super::context::Context;
use super::metrics::Metrics;
use super::pod_template::JobSettings;
use super::time::parse_rfc3339;

/// The reconciles' clock in every scenario.
pub const NOW: &str = "2026-01-02T10:00:00Z";

pub enum Reply {
    /// 200 with this object.
    Json(Value),
    /// 201 with the request's body, as a create or patch answers.
    Echo,
    /// An API error with this code.
    Status(u16),
}

pub struct Expect {
    pub method: Method,
    pub path: String,
    /// Text the (decoded) query must contain, e.g. a label selector.
    pub query: Option<&'static str>,
    pub reply: Reply,
}

pub fn expect(method: Method, path: &str, reply: Reply) -> Expect {
    Expect {
        method,
        path: path.into(),
        query: None,
        reply,
    }
}

impl Expect {
    pub fn with_query(mut self, query: &'static str) -> Self {
        self.query = Some(query);
        self
    }
}

/// A request as the server saw it.
#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub body: Value,
}

/// A context whose client talks to the script, and the task serving it.
pub fn scenario(script: Vec<Expect>) -> (Arc<Context>, tokio::task::JoinHandle<Vec<Seen>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let settings = JobSettings {
        image: "pgop/backup-operator:dev".into(),
        active_deadline_seconds: 3600,
    };
    let now = parse_rfc3339(NOW).unwrap();
    let reporter = kube::runtime::events::Reporter {
        controller: super::pod_template::MANAGER.into(),
        instance: None,
    };
    let recorder = kube::runtime::events::Recorder::new(client.clone(), reporter);
    let ctx = Context::new(
        client,
        recorder,
        settings,
        Arc::new(Metrics::new()),
        Arc::new(move || now),
    );
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for expected in script {
            let (request, respond) = handle.next_request().await.unwrap_or_else(|| {
                panic!(
                    "the reconcile ended before {} {}",
                    expected.method, expected.path
                )
            });
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let query = request.uri().query().map(decode).unwrap_or_default();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert_eq!(
                (&method, path.as_str()),
                (&expected.method, expected.path.as_str()),
                "unexpected request; body: {body}"
            );
            if let Some(want) = expected.query {
                assert!(query.contains(want), "{method} {path}?{query} lacks {want}");
            }
            let (code, reply) = match expected.reply {
                Reply::Json(value) => (200, value),
                Reply::Echo => (201, body.clone()),
                Reply::Status(code) => (code, status(code)),
            };
            let response = Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap();
            respond.send_response(response);
            seen.push(Seen { method, path, body });
        }
        seen
    });
    (Arc::new(ctx), server)
}

fn status(code: u16) -> Value {
    let reason = match code {
        404 => "NotFound",
        409 => "AlreadyExists",
        _ => "InternalError",
    };
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": reason})
}

fn decode(query: &str) -> String {
    let mut out = Vec::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A list response.
pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A Database in `prod`; `ready` sets the Ready condition for its generation.
pub fn database(name: &str, ready: bool, backup_ref: Option<&str>) -> Value {
    let mut spec = json!({"databaseName": "shop", "username": "app", "storage": {"size": "1Gi"}});
    if let Some(b) = backup_ref {
        spec["backupRef"] = json!({"name": b});
    }
    let conditions = if ready {
        json!([{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}])
    } else {
        json!([{"type": "Ready", "status": "False", "reason": "Deploying", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}])
    };
    json!({
        "apiVersion": "database.example.com/v1", "kind": "Database",
        "metadata": {"name": name, "namespace": "prod", "uid": format!("uid-{name}"), "generation": 1},
        "spec": spec,
        "status": {"phase": if ready { "Ready" } else { "Deploying" }, "readyReplicas": i32::from(ready),
                   "observedGeneration": 1, "conditions": conditions}
    })
}
