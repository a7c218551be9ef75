//! A watch cache as the reconciles read it: the reflector's store of [`Packed`] objects, with
//! this process's writes laid over it until the watch delivers them ([`Written`]), unpacked
//! as a reconcile reads them; objects that do not decode are read as an [`InvalidObject`].

use std::sync::Arc;

use kube::Resource;
use kube::ResourceExt as _;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::InvalidObject;
use crate::packed::Packed;
use crate::written::Written;

/// A cache of one kind this process writes.
pub struct Cached<K: Resource<DynamicType = ()> + 'static> {
    store: Store<Packed<K>>,
    written: Written<Packed<K>>,
}

impl<K> Cached<K>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + 'static,
{
    pub fn new(store: Store<Packed<K>>) -> Self {
        Cached {
            store,
            written: Written::default(),
        }
    }

    /// Object `name` in `namespace` as this process last knows it.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Option<K>, InvalidObject> {
        let key = ObjectRef::new(name).within(namespace);
        self.written
            .newest(&key, self.store.get(&key))
            .map(|packed| packed.unpack())
            .transpose()
    }

    /// The objects in `namespace` that `keep` selects by their metadata, as this process
    /// last knows them.
    pub fn select(
        &self,
        namespace: &str,
        keep: impl Fn(&Packed<K>) -> bool,
    ) -> Result<Vec<K>, InvalidObject> {
        let in_namespace = |o: &Packed<K>| o.namespace().as_deref() == Some(namespace) && keep(o);
        self.written
            .merged(self.store.state(), in_namespace)
            .iter()
            .map(|o| o.unpack())
            .collect()
    }

    /// Remembers what the API server answered to a write of an object.
    pub fn wrote(&self, object: &K) {
        // Packing an object that came from JSON cannot fail; were it to, the watch event
        // still brings it, a moment later.
        if let Ok(packed) = Packed::pack(object) {
            self.written.remember(packed);
        }
    }

    /// Forgets an object this process deleted.
    pub fn deleted(&self, namespace: &str, name: &str) {
        self.written.forget(&ObjectRef::new(name).within(namespace));
    }
}

/// Object `name` in `namespace` of a cache this process does not write.
pub fn get<K>(
    store: &Store<Packed<K>>,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, InvalidObject>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    store
        .get(&ObjectRef::new(name).within(namespace))
        .map(|packed| packed.unpack())
        .transpose()
}

/// The objects of a cache this process does not write, in `namespace`, that `keep` selects
/// by their metadata.
pub fn select<K>(
    store: &Store<Packed<K>>,
    namespace: &str,
    keep: impl Fn(&Packed<K>) -> bool,
) -> Result<Vec<K>, InvalidObject>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    store
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace) && keep(o))
        .map(|o| o.unpack())
        .collect()
}

/// Object `name` in `namespace` of a kind cached as `DeserializeGuard`s: `None` when the
/// cache does not hold it, an [`InvalidObject`] when it does not decode.
pub fn decoded<K>(
    store: &Store<DeserializeGuard<K>>,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, InvalidObject>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned,
{
    let Some(guard) = store.get(&ObjectRef::new(name).within(namespace)) else {
        return Ok(None);
    };
    match &guard.0 {
        Ok(object) => Ok(Some(object.clone())),
        Err(invalid) => Err(InvalidObject::new(&K::kind(&()), name, &invalid.error)),
    }
}

/// `object` as this process last wrote it, when the cache does not show that yet.
pub fn newest<K>(written: &Written<K>, object: &K) -> K
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let key = ObjectRef::from_obj(object);
    written
        .newest(&key, Some(Arc::new(object.clone())))
        .map_or_else(|| object.clone(), |o| K::clone(&o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{reflector, watcher};

    fn object(name: &str, namespace: &str, version: &str) -> ConfigMap {
        let mut o = ConfigMap::default();
        o.metadata.name = Some(name.into());
        o.metadata.namespace = Some(namespace.into());
        o.metadata.resource_version = Some(version.into());
        o
    }

    fn packed(object: &ConfigMap) -> Packed<ConfigMap> {
        Packed::pack(object).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn reads_see_writes_until_the_watch_delivers_them_and_deletions_at_once() {
        let (store, mut writer) = reflector::store();
        let old = object("old", "prod", "3");
        writer.apply_watcher_event(&watcher::Event::Apply(packed(&old)));
        let cached = Cached::new(store);
        cached.wrote(&object("new", "prod", "7"));
        cached.wrote(&object("elsewhere", "test", "8"));
        assert_eq!(
            cached.get("prod", "new"),
            Ok(Some(object("new", "prod", "7")))
        );
        assert_eq!(cached.get("prod", "old"), Ok(Some(old)));
        let mut names: Vec<String> = cached
            .select("prod", |_| true)
            .unwrap_or_default()
            .iter()
            .map(|o| o.name_any())
            .collect();
        names.sort();
        assert_eq!(names, ["new", "old"]);
        cached.deleted("prod", "new");
        assert_eq!(cached.get("prod", "new"), Ok(None));
    }

    #[test]
    fn selects_by_metadata_and_unpacks_what_it_selected() {
        let (store, mut writer) = reflector::store();
        let mut labelled = object("labelled", "prod", "4");
        labelled.metadata.labels = Some([("app".into(), "shop".into())].into());
        for o in [
            &labelled,
            &object("plain", "prod", "5"),
            &object("labelled", "test", "6"),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(packed(o)));
        }
        let has_app = |o: &Packed<ConfigMap>| o.labels().contains_key("app");
        assert_eq!(select(&store, "prod", has_app), Ok(vec![labelled.clone()]));
        assert_eq!(get(&store, "prod", "labelled"), Ok(Some(labelled)));
        assert_eq!(get(&store, "prod", "gone"), Ok(None));
    }

    #[test]
    fn an_object_that_does_not_decode_is_an_invalid_object() {
        let (store, mut writer) = reflector::store::<DeserializeGuard<ConfigMap>>();
        let broken: DeserializeGuard<ConfigMap> = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "prod"}, "data": 5
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        writer.apply_watcher_event(&watcher::Event::Apply(broken));
        let error = decoded(&store, "prod", "settings").err();
        assert!(error.is_some_and(|e| e.to_string().contains("ConfigMap settings")));
        assert!(matches!(decoded(&store, "prod", "other"), Ok(None)));
    }
}
