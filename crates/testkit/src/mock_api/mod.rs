//! A kube `Client` over a `tower-test` mock: every request is recorded, then answered from
//! the script when the test gave one, or else from the objects the test stored.

mod objects;
mod request;
mod response;
mod script;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use http::Method;
use kube::Client;
use kube::client::Body;
use serde_json::Value;

pub use request::Request;
pub use script::{Expect, Reply, expect, list};

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    /// The last resource version handed out; above any a test writes by hand.
    versions: u64,
    requests: Vec<Request>,
    /// (method, path) → (HTTP code, reason) answered instead of the stored objects.
    failures: BTreeMap<(Method, String), (u16, String)>,
    /// `Some` when the test scripted the requests: each is answered by the next expectation.
    script: Option<VecDeque<Expect>>,
    /// Requests the script did not expect, kept for [`MockApi::finish`] to report: a panic
    /// in the serving task would only surface as a failed request.
    violations: Vec<String>,
}

/// Handle on the mocked API server; clones share it.
#[derive(Clone, Default)]
pub struct MockApi {
    state: Arc<Mutex<State>>,
}

impl MockApi {
    /// A client whose requests are answered from the objects stored with [`MockApi::put`].
    pub fn start() -> (Client, MockApi) {
        MockApi::default().serve()
    }

    /// A client whose requests must be exactly `script`, in order; [`MockApi::finish`]
    /// fails the test on a request out of order, an extra one, or one never sent.
    pub fn with_script(script: Vec<Expect>) -> (Client, MockApi) {
        let api = MockApi::default();
        api.state().script = Some(script.into());
        api.serve()
    }

    fn serve(self) -> (Client, MockApi) {
        // Versions a test writes by hand stay below those of the writes it observes.
        self.state().versions = 1000;
        let (service, mut handle) =
            tower_test::mock::pair::<http::Request<Body>, http::Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let request = Request::read(request).await;
                respond.send_response(server.answer(request));
            }
        });
        (Client::new(service, "default"), self)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self, request: Request) -> http::Response<Body> {
        let mut state = self.state();
        state.requests.push(request.clone());
        if let Some(script) = state.script.as_mut() {
            let next = script.pop_front();
            return match script::answer(next, &request) {
                Ok(response) => response,
                Err(violation) => {
                    state.violations.push(violation);
                    response::status(500, "InternalError", "not in the test's script")
                }
            };
        }
        if let Some((code, reason)) = state
            .failures
            .get(&(request.method.clone(), request.path.clone()))
        {
            return response::status(
                *code,
                reason,
                &format!("{} refused by the test", request.line()),
            );
        }
        let state = &mut *state;
        objects::answer(&mut state.objects, &mut state.versions, request)
    }

    /// Stores `object` at `path`, as if it existed in the cluster.
    pub fn put(&self, path: &str, object: Value) {
        self.state().objects.insert(path.to_string(), object);
    }

    /// The object at `path`, as the operator last wrote it.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.state().objects.get(path).cloned()
    }

    /// The objects stored directly under the collection `path` (`/api/v1/namespaces/prod/pods`),
    /// as a watch of that collection would list them.
    pub fn objects_under(&self, path: &str) -> Vec<Value> {
        let prefix = format!("{path}/");
        self.state()
            .objects
            .iter()
            .filter(|(key, _)| {
                key.strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('/'))
            })
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Answers `method path` with the error `code` from now on.
    pub fn fail(&self, method: Method, path: &str, code: u16, reason: &str) {
        self.state()
            .failures
            .insert((method, path.into()), (code, reason.into()));
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// Every request that is not a GET, in order.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != Method::GET)
            .collect()
    }

    /// The GETs as `METHOD /path?query` lines, sorted: they may run concurrently.
    pub fn reads(&self) -> Vec<String> {
        let mut reads: Vec<String> = self
            .requests()
            .into_iter()
            .filter(|r| r.method == Method::GET)
            .map(|r| r.line())
            .collect();
        reads.sort();
        reads
    }

    pub fn forget_requests(&self) {
        self.state().requests.clear();
    }

    /// The requests of a scripted test, once the reconcile is done. Fails the test if a
    /// request was not the one expected next, or if an expected one was never sent.
    pub fn finish(&self) -> Vec<Request> {
        let state = self.state();
        assert!(
            state.violations.is_empty(),
            "requests outside the script:\n{}",
            state.violations.join("\n")
        );
        if let Some(unsent) = state.script.as_ref().and_then(|s| s.front()) {
            panic!(
                "the reconcile ended before {} {}",
                unsent.method, unsent.path
            );
        }
        state.requests.clone()
    }
}
