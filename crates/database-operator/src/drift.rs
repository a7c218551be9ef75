//! Finding hand edits to the objects this operator applies.
//!
//! Applies are skipped while the object in the cluster carries the hash of the desired
//! content ([`crate::apply`]), which keeps a steady state free of writes. That alone would
//! never notice someone changing a field this operator sets (`kubectl edit` of the image, a
//! Service's selector, a Secret's key). So the skip also requires that every field the
//! desired object sets still holds the desired value in the observed one.
//!
//! The comparison is a subset check on the JSON forms: fields the API server or another
//! controller adds (defaults, `status`, `clusterIP`) are not ours and are ignored; lists must
//! match element by element; quantities compare by value, because the API server rewrites
//! them in canonical form (`1024Mi` is stored as `1Gi`).

use serde::Serialize;
use serde_json::Value;

/// Metadata this operator sets; the rest of `metadata` belongs to the API server.
const OWNED_METADATA: [&str; 3] = ["labels", "annotations", "ownerReferences"];

/// The first field (as a path such as `spec.template.spec.containers[0].image`) that
/// `desired` sets and `observed` holds differently, or `None` when `observed` is as desired.
pub fn first_difference<K: Serialize>(desired: &K, observed: &K) -> Option<String> {
    let (Ok(desired), Ok(observed)) = (
        serde_json::to_value(desired),
        serde_json::to_value(observed),
    ) else {
        return Some("(unserializable)".to_string());
    };
    let Value::Object(fields) = &desired else {
        return None;
    };
    for (key, want) in fields {
        let have = observed.get(key);
        let found = match key.as_str() {
            "apiVersion" | "kind" | "status" => None,
            "metadata" => OWNED_METADATA
                .iter()
                .find_map(|field| match want.get(*field) {
                    Some(want) => differs(
                        want,
                        have.and_then(|m| m.get(*field)),
                        &format!("metadata.{field}"),
                    ),
                    None => None,
                }),
            _ => differs(want, have, key),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn differs(want: &Value, have: Option<&Value>, path: &str) -> Option<String> {
    let Some(have) = have.filter(|h| !h.is_null()) else {
        return (!is_empty(want)).then(|| path.to_string());
    };
    match (want, have) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .find_map(|(key, want)| differs(want, have.get(key), &format!("{path}.{key}"))),
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Some(path.to_string());
            }
            want.iter()
                .zip(have)
                .enumerate()
                .find_map(|(i, (want, have))| differs(want, Some(have), &format!("{path}[{i}]")))
        }
        (Value::String(want), Value::String(have)) => {
            (want != have && !same_quantity(want, have)).then(|| path.to_string())
        }
        (want, have) => (want != have).then(|| path.to_string()),
    }
}

/// A desired field with nothing in it may be dropped by the API server.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().all(is_empty),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Both are quantities of the same value (`1024Mi` and `1Gi`, `0.5` and `500m`).
fn same_quantity(a: &str, b: &str) -> bool {
    match (api::quantity::ratio(a), api::quantity::ratio(b)) {
        (Some((an, ad)), Some((bn, bd))) => an
            .checked_mul(bd)
            .is_some_and(|x| Some(x) == bn.checked_mul(ad)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first(desired: Value, observed: Value) -> Option<String> {
        first_difference(&desired, &observed)
    }

    #[test]
    fn what_the_server_adds_is_not_drift() {
        let desired = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "shop", "labels": {"a": "b"}},
            "spec": {"ports": [{"name": "postgres", "port": 5432}], "selector": {"x": "y"},
                     "template": {"securityContext": {}}},
        });
        let observed = json!({
            "metadata": {"name": "shop", "uid": "u", "resourceVersion": "7",
                         "labels": {"a": "b"}, "managedFields": []},
            "spec": {"ports": [{"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": 5432}],
                     "selector": {"x": "y"}, "clusterIP": "10.96.0.9"},
            "status": {"loadBalancer": {}},
        });
        assert_eq!(first(desired, observed), None);
    }

    #[test]
    fn hand_edits_are_named_by_their_path() {
        let desired = json!({
            "metadata": {"labels": {"a": "b"}},
            "spec": {"template": {"spec": {"containers": [{"name": "postgres", "image": "postgres:17"}]}},
                     "selector": {"x": "y"}},
            "data": {"username": "c2hvcA==", "password": "cHc="},
        });
        let rows = [
            (
                "/spec/template/spec/containers/0/image",
                json!("evil:1"),
                "spec.template.spec.containers[0].image",
            ),
            ("/spec/selector/x", json!("z"), "spec.selector.x"),
            ("/metadata/labels/a", json!("c"), "metadata.labels.a"),
            ("/data/username", json!("b3RoZXI="), "data.username"),
        ];
        for (pointer, value, want) in rows {
            let mut observed = desired.clone();
            if let Some(slot) = observed.pointer_mut(pointer) {
                *slot = value;
            }
            assert_eq!(
                first(desired.clone(), observed).as_deref(),
                Some(want),
                "{pointer}"
            );
        }
        let mut removed = desired.clone();
        if let Some(data) = removed.pointer_mut("/data").and_then(Value::as_object_mut) {
            data.remove("password");
        }
        assert_eq!(
            first(desired.clone(), removed).as_deref(),
            Some("data.password")
        );
        let mut extra = desired.clone();
        if let Some(c) = extra
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        {
            c.push(json!({"name": "sidecar"}));
        }
        assert_eq!(
            first(desired, extra).as_deref(),
            Some("spec.template.spec.containers")
        );
    }

    #[test]
    fn quantities_compare_by_value() {
        let desired =
            json!({"spec": {"resources": {"requests": {"memory": "1024Mi", "cpu": "0.5"}}}});
        let same = json!({"spec": {"resources": {"requests": {"memory": "1Gi", "cpu": "500m"}}}});
        let other = json!({"spec": {"resources": {"requests": {"memory": "1Gi", "cpu": "250m"}}}});
        assert_eq!(first(desired.clone(), same), None);
        assert_eq!(
            first(desired, other).as_deref(),
            Some("spec.resources.requests.cpu")
        );
    }
}
