//! Answers from stored objects: GET of one object or of a label-selected list, server-side
//! apply PATCH (objects and `/status`), and POST; the verbs the operators use.

use std::collections::BTreeMap;

use http::Method;
use kube::client::Body;
use serde_json::{Value, json};

use super::request::Request;
use super::response;

pub(super) fn answer(
    objects: &mut BTreeMap<String, Value>,
    versions: &mut u64,
    request: Request,
) -> http::Response<Body> {
    // Every write makes a new resource version, larger than any before, as etcd's do.
    let mut next_version = || {
        *versions += 1;
        json!(versions.to_string())
    };
    let Request {
        method,
        path,
        query,
        body,
    } = request;
    let not_found = |path: &str| response::status(404, "NotFound", &format!("{path} not found"));
    match method {
        Method::GET if query.contains("labelSelector=") => {
            let selector = query_value(&query, "labelSelector");
            let items: Vec<Value> = objects
                .iter()
                .filter(|(key, _)| {
                    key.strip_prefix(&format!("{path}/"))
                        .is_some_and(|rest| !rest.contains('/'))
                })
                .filter(|(_, object)| matches_selector(object, &selector))
                .map(|(_, object)| object.clone())
                .collect();
            response::json(200, &super::list("List", items))
        }
        Method::GET => match objects.get(&path) {
            Some(object) => response::json(200, object),
            None => not_found(&path),
        },
        Method::PATCH if !body.is_null() && path.ends_with("/status") => {
            let base = path.trim_end_matches("/status");
            let Some(object) = objects.get_mut(base) else {
                return not_found(base);
            };
            object["status"] = body["status"].clone();
            object["metadata"]["resourceVersion"] = next_version();
            response::json(200, object)
        }
        Method::PATCH if !body.is_null() => {
            let mut applied = applied(objects.get(&path), body, &path);
            applied["metadata"]["resourceVersion"] = next_version();
            objects.insert(path, applied.clone());
            response::json(200, &applied)
        }
        Method::POST if !body.is_null() => {
            let name = body["metadata"]["name"].as_str().unwrap_or("unnamed");
            let key = format!("{path}/{name}");
            if objects.contains_key(&key) {
                let message = format!("{key} already exists");
                return response::status(409, "AlreadyExists", &message);
            }
            let mut created = body;
            created["metadata"]["resourceVersion"] = next_version();
            objects.insert(key, created.clone());
            response::json(201, &created)
        }
        _ => response::status(
            405,
            "MethodNotAllowed",
            &format!("{method} {path} is not served"),
        ),
    }
}

/// What an apply of `patch` over `existing` stores: the generation moves only with the spec,
/// and the status stays, as the API server keeps it out of the main resource.
fn applied(existing: Option<&Value>, mut patch: Value, path: &str) -> Value {
    let generation = match existing {
        Some(old) if old["spec"] == patch["spec"] => old["metadata"]["generation"].clone(),
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
    patch
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

/// Equality-based selectors only (`a=b,c=d`), which is all the operators send.
fn matches_selector(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        object["metadata"]["labels"][key].as_str() == Some(value)
    })
}
