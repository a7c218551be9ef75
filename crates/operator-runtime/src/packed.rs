//! Cached objects kept as compressed JSON, with only the metadata a cache and a controller
//! read kept parsed.
//!
//! An object parsed into k8s-openapi's types takes 2 to 5 times the memory of its JSON: every
//! `Option<String>` and `BTreeMap` node is an allocation of its own. A reconcile reads a
//! handful of its Database's objects, while the caches hold every object of every Database,
//! so the caches keep text and a reconcile parses the few it reads ([`Packed::unpack`]). The
//! text is LZ4-compressed: a StatefulSet's 8 KB of JSON takes 4 KB, and compressing or
//! decompressing it takes microseconds, against the milliseconds of a request.
//!
//! What stays parsed is what finds an object without reading it: name, namespace, labels,
//! owner references (a controller's `owns` mapping), resource version (which of two copies
//! is newer, [`crate::written`]), uid, generation and deletion timestamp.
//!
//! The text leaves out what no reconcile reads: the managed fields and kubectl's
//! last-applied copy ([`crate::cache::slim`]), and any top-level field a cache names
//! ([`Packed::remove`]).
//!
//! Each text is compressed against a dictionary of its kind: the first object of that kind
//! the process packed ([`dictionary`]). The objects of one kind are alike (one builder made
//! them, the API server filled in the same defaults), and LZ4 alone finds little to share
//! within a text of one or two KB: against the dictionary a Service's text takes 0.1 to
//! 0.2 KB instead of 0.8, a StatefulSet's 0.4 KB instead of 4.8.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::LAST_APPLIED_ANNOTATION;
use crate::error::InvalidObject;

/// An object of kind `K` as JSON text, its identifying metadata parsed.
pub struct Packed<K> {
    meta: ObjectMeta,
    /// The object's JSON, LZ4-compressed against its kind's [`dictionary`], with its length
    /// in front.
    json: Arc<[u8]>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Packed<K> {
    fn clone(&self) -> Self {
        Packed {
            meta: self.meta.clone(),
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

/// Names the object only: the text may be a Secret's.
impl<K: Resource<DynamicType = ()>> fmt::Debug for Packed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("kind", &K::kind(&()))
            .field("namespace", &self.meta.namespace)
            .field("name", &self.meta.name)
            .field("resource_version", &self.meta.resource_version)
            .field("bytes", &self.json.len())
            .finish()
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Packed<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

impl<'de, K: 'static> Deserialize<'de> for Packed<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = Map::<String, Value>::deserialize(deserializer)?;
        Packed::from_map(object).map_err(D::Error::custom)
    }
}

impl<K: 'static> Packed<K> {
    /// Packs `object`, as the API server answered a write of it.
    pub fn pack(object: &K) -> Result<Self, serde_json::Error>
    where
        K: Serialize,
    {
        match serde_json::to_value(object)? {
            Value::Object(map) => Packed::from_map(map),
            _ => Err(serde_json::Error::custom("not a JSON object")),
        }
    }

    /// The object itself; an [`InvalidObject`] when its text is not a valid `K` (say, a
    /// custom resource stored before its schema tightened).
    pub fn unpack(&self) -> Result<K, InvalidObject>
    where
        K: DeserializeOwned + Resource<DynamicType = ()>,
    {
        let name = || self.meta.name.as_deref().unwrap_or_default();
        let json = self
            .text()
            .map_err(|error| InvalidObject::new(&K::kind(&()), name(), &error.to_string()))?;
        serde_json::from_slice(&json)
            .map_err(|error| InvalidObject::new(&K::kind(&()), name(), &error.to_string()))
    }

    /// Drops the top-level `field` (say, a Pod's `spec`, when only its status is read).
    pub fn remove(&mut self, field: &str) {
        let Ok(json) = self.text() else {
            return;
        };
        let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&json) else {
            return;
        };
        if map.remove(field).is_some() {
            self.json = compress::<K>(&map);
        }
    }

    /// The object's JSON.
    fn text(&self) -> Result<Vec<u8>, lz4_flex::block::DecompressError> {
        let dictionary = dictionary::<K>(None);
        lz4_flex::block::decompress_size_prepended_with_dict(&self.json, &dictionary)
    }

    fn from_map(mut object: Map<String, Value>) -> Result<Self, serde_json::Error> {
        let Some(Value::Object(meta)) = object.get_mut("metadata") else {
            return Err(serde_json::Error::custom("the object has no metadata"));
        };
        drop_unread_metadata(meta);
        let meta = identifying(ObjectMeta::deserialize(&object["metadata"])?);
        Ok(Packed {
            meta,
            json: compress::<K>(&object),
            kind: PhantomData,
        })
    }
}

/// For [`crate::controller::reflected`]: leaves the labels to the packed text, for kinds a
/// reconcile finds by name and a controller maps to its owner by owner reference, never by
/// label. A BTreeMap of a few labels takes over half a KiB parsed.
pub fn found_by_name<K>(object: &mut Packed<K>) {
    object.meta.labels = None;
}

/// For [`crate::controller::reflected`]: keeps parsed only the labels named in `keys` and no
/// owner references, for kinds a controller maps and a reconcile selects by those labels,
/// never by owner reference. The packed text keeps them all.
pub fn found_by_labels<K>(object: &mut Packed<K>, keys: &[&str]) {
    if let Some(labels) = object.meta.labels.as_mut() {
        labels.retain(|key, _| keys.contains(&key.as_str()));
    }
    object.meta.owner_references = None;
}

/// `object`'s JSON compressed against the dictionary of `K`, which `object` sets when it is
/// the first of its kind.
fn compress<K: 'static>(object: &Map<String, Value>) -> Arc<[u8]> {
    let dictionary = dictionary::<K>(Some(object));
    let text = serde_json::to_vec(object).unwrap_or_default();
    lz4_flex::block::compress_prepend_size_with_dict(&text, &dictionary).into()
}

/// The dictionaries, by kind. Each is set once, by the first object of its kind, and never
/// changes, so every text decompresses against the dictionary it was compressed with.
static DICTIONARIES: LazyLock<RwLock<HashMap<TypeId, Arc<[u8]>>>> = LazyLock::new(RwLock::default);

/// The window LZ4 reaches back into: a longer dictionary is used only by its end.
const DICTIONARY_BYTES: usize = 64 * 1024;

/// The dictionary of kind `K`. When there is none yet, `first` (when given) becomes it: its
/// JSON without the top-level `data` and `stringData`, so no Secret's payload outlives that
/// Secret here (their keys and the rest of the Secret are what other Secrets share anyway).
/// Without a dictionary and a `first`, an empty one, against which a text compresses as
/// plain LZ4; it is not kept.
fn dictionary<K: 'static>(first: Option<&Map<String, Value>>) -> Arc<[u8]> {
    let kind = TypeId::of::<K>();
    let known = DICTIONARIES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&kind)
        .cloned();
    match (known, first) {
        (Some(dictionary), _) => dictionary,
        (None, None) => Arc::from(&[][..]),
        (None, Some(first)) => DICTIONARIES
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_insert_with(|| dictionary_of(first))
            .clone(),
    }
}

fn dictionary_of(object: &Map<String, Value>) -> Arc<[u8]> {
    let shape: Map<String, Value> = object
        .iter()
        .filter(|(field, _)| !matches!(field.as_str(), "data" | "stringData"))
        .map(|(field, value)| (field.clone(), value.clone()))
        .collect();
    let text = serde_json::to_vec(&shape).unwrap_or_default();
    text[text.len().saturating_sub(DICTIONARY_BYTES)..].into()
}

/// What [`crate::cache::slim`] drops from a parsed object, dropped from its JSON.
fn drop_unread_metadata(meta: &mut Map<String, Value>) {
    meta.remove("managedFields");
    if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// The metadata a cache or a controller reads without unpacking.
fn identifying(meta: ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        generation: meta.generation,
        labels: meta.labels,
        owner_references: meta.owner_references,
        deletion_timestamp: meta.deletion_timestamp,
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Pod, Secret, Service};
    use kube::ResourceExt;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "shop-0", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                "labels": {"app": "shop"},
                "annotations": {LAST_APPLIED_ANNOTATION: "{}", "note": "kept"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "name": "shop", "uid": "u-0", "controller": true}],
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
            },
            "spec": {"containers": [{"name": "postgres", "image": "postgres:17"}]},
            "status": {"phase": "Pending"},
        })
    }

    #[test]
    fn unpacks_to_the_object_without_what_no_reconcile_reads() {
        let packed: Packed<Pod> = serde_json::from_value(pod()).unwrap_or_else(|e| panic!("{e}"));
        let mut expected: Pod = serde_json::from_value(pod()).unwrap_or_else(|e| panic!("{e}"));
        crate::cache::slim(&mut expected);
        assert_eq!(packed.unpack().ok(), Some(expected));
        let json = packed.text().unwrap_or_default();
        assert!(!String::from_utf8_lossy(&json).contains("managedFields"));
    }

    #[test]
    fn keeps_what_finds_an_object_parsed() {
        let packed: Packed<Pod> = serde_json::from_value(pod()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(packed.name_any(), "shop-0");
        assert_eq!(packed.namespace().as_deref(), Some("prod"));
        assert_eq!(packed.resource_version().as_deref(), Some("42"));
        assert_eq!(packed.labels().get("app").map(String::as_str), Some("shop"));
        assert_eq!(packed.owner_references().len(), 1);
        assert!(
            packed.annotations().is_empty(),
            "annotations stay in the text"
        );
    }

    #[test]
    fn objects_found_by_name_keep_their_labels_in_the_text_only() {
        let mut packed: Packed<Pod> =
            serde_json::from_value(pod()).unwrap_or_else(|e| panic!("{e}"));
        found_by_name(&mut packed);
        assert!(packed.labels().is_empty());
        assert_eq!(packed.owner_references().len(), 1);
        let pod = packed.unpack().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pod.labels().get("app").map(String::as_str), Some("shop"));
    }

    #[test]
    fn objects_found_by_labels_keep_those_parsed_and_everything_in_the_text() {
        let mut with_labels = pod();
        with_labels["metadata"]["labels"]["tier"] = json!("db");
        let mut packed: Packed<Pod> =
            serde_json::from_value(with_labels).unwrap_or_else(|e| panic!("{e}"));
        found_by_labels(&mut packed, &["app", "missing"]);
        assert_eq!(
            packed.labels().keys().collect::<Vec<_>>(),
            ["app"],
            "only the named labels stay parsed"
        );
        assert!(packed.owner_references().is_empty());
        let pod = packed.unpack().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pod.labels().len(), 2);
        assert_eq!(pod.owner_references().len(), 1);
    }

    #[test]
    fn a_field_can_be_left_out() {
        let mut packed: Packed<Pod> =
            serde_json::from_value(pod()).unwrap_or_else(|e| panic!("{e}"));
        packed.remove("spec");
        let pod = packed.unpack().unwrap_or_else(|e| panic!("{e}"));
        assert!(pod.spec.is_none());
        assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    }

    #[test]
    fn a_written_object_packs_like_a_watched_one() {
        let watched: Packed<Pod> = serde_json::from_value(pod()).unwrap_or_else(|e| panic!("{e}"));
        let typed: Pod = serde_json::from_value(pod()).unwrap_or_else(|e| panic!("{e}"));
        let written = Packed::pack(&typed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(written.unpack().ok(), watched.unpack().ok());
        assert_eq!(written.meta, watched.meta);
    }

    #[test]
    fn text_that_is_not_the_kind_is_an_invalid_object() {
        let mut broken = pod();
        broken["spec"] = json!({"containers": "postgres"});
        let packed: Packed<Pod> = serde_json::from_value(broken).unwrap_or_else(|e| panic!("{e}"));
        let error = packed
            .unpack()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("Pod shop-0"), "{error}");
    }

    #[test]
    fn a_large_object_takes_less_than_its_json() {
        let mut pod = pod();
        let container = json!({"name": "postgres", "image": "postgres:17",
            "env": [{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
            "readinessProbe": {"exec": {"command": ["pg_isready", "-h", "127.0.0.1"]}}});
        pod["spec"]["containers"] = Value::Array(vec![container; 8]);
        let json_len = pod.to_string().len();
        let packed: Packed<Pod> = serde_json::from_value(pod).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            packed.json.len() * 2 < json_len,
            "{} of {json_len}",
            packed.json.len()
        );
        assert_eq!(
            packed
                .unpack()
                .ok()
                .and_then(|p| p.spec)
                .map(|s| s.containers.len()),
            Some(8)
        );
    }

    #[test]
    fn a_kind_compresses_against_its_first_object() {
        // Services: no other test here packs one, so the first is this test's.
        let service = |name: &str| {
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "prod", "uid": format!("uid-{name}"),
                    "labels": {"app.kubernetes.io/managed-by": "database-operator"},
                    "annotations": {"database.example.com/applied-hash": format!("{name}-17c2")}},
                "spec": {"type": "ClusterIP", "clusterIP": "10.96.12.7",
                    "selector": {"database.example.com/database": name, "app.kubernetes.io/name": "postgresql"},
                    "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432, "protocol": "TCP"}],
                    "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                    "internalTrafficPolicy": "Cluster"},
                "status": {"loadBalancer": {}},
            })
        };
        let first: Packed<Service> =
            serde_json::from_value(service("shop")).unwrap_or_else(|e| panic!("{e}"));
        let other = service("billing");
        let plain = lz4_flex::compress_prepend_size(other.to_string().as_bytes()).len();
        let packed: Packed<Service> =
            serde_json::from_value(other.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            packed.json.len() * 3 < plain,
            "{} bytes against {plain} without the dictionary",
            packed.json.len()
        );
        let expected: Service = serde_json::from_value(other).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(packed.unpack().ok(), Some(expected));
        assert_eq!(
            first.unpack().ok().map(|s| s.name_any()).as_deref(),
            Some("shop")
        );
    }

    #[test]
    fn no_secret_payload_goes_into_a_dictionary() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shop-credentials", "namespace": "prod"},
            "data": {"password": "aHVudGVyMi1pbi10aGUtZGF0YQ=="},
            "stringData": {"password": "hunter2-in-the-string-data"},
        });
        let packed: Packed<Secret> =
            serde_json::from_value(secret).unwrap_or_else(|e| panic!("{e}"));
        let dictionary = String::from_utf8_lossy(&dictionary::<Secret>(None)).into_owned();
        assert!(dictionary.contains("\"metadata\""), "{dictionary}");
        for payload in ["aHVudGVy", "hunter2"] {
            assert!(!dictionary.contains(payload), "{dictionary}");
        }
        let unpacked = packed.unpack().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(unpacked.string_data.map(|d| d.len()), Some(1));
    }

    #[test]
    fn debug_output_never_shows_the_text() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shop-credentials", "namespace": "prod"},
            "stringData": {"password": "hunter2-in-the-secret"},
        });
        let packed: Packed<Secret> =
            serde_json::from_value(secret).unwrap_or_else(|e| panic!("{e}"));
        let text = format!("{packed:?}");
        assert!(text.contains("shop-credentials"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
