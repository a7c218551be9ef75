//! The Databases stream the controller reconciles from, made safe across relists.
//!
//! kube's `applied_objects()` hands over every object of a (re)list as it arrives
//! (`InitApply`), but the store only takes the listed objects when the list is complete
//! (`InitDone`). At start that is harmless: the controller waits for the store. On a relist
//! (after the watch lost its place, such as when the API server restarts), the controller is
//! running and looks each object up at once in the store, which still holds the state from
//! before: a Database created meanwhile is "not found in local store" and dropped, and a
//! changed one is reconciled from its old version. Either way nothing reconciles it again
//! until its next event.
//!
//! So this stream hands over `Apply` events as they come, skips `InitApply`, and on `InitDone`
//! hands over every object of the store, which by then holds the whole new list.
//!
//! [`touched_in_store`] does the same for the kinds a controller reads from its caches besides
//! its own (owned objects, objects it follows), and also hands over deletions, including
//! those a relist reveals: an object that was in the store before the relist and is not in
//! the new list was deleted while the watch was away.

use std::sync::Arc;

use futures::{Stream, StreamExt, stream};
use kube::runtime::reflector::{Lookup, Store};
use kube::runtime::watcher::{Error, Event};

/// The objects to reconcile from a reflected watch stream: each applied object once the
/// store holds it.
pub fn objects_in_store<K>(
    events: impl Stream<Item = Result<Event<K>, Error>> + Send + 'static,
    store: Store<K>,
) -> impl Stream<Item = Result<K, Error>> + Send + 'static
where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    events.flat_map(move |event| {
        let objects: Vec<Result<K, Error>> = match event {
            Ok(Event::Apply(object)) => vec![Ok(object)],
            Ok(Event::InitDone) => store
                .state()
                .iter()
                .map(|o| Ok(K::clone(Arc::as_ref(o))))
                .collect(),
            Ok(Event::Init | Event::InitApply(_) | Event::Delete(_)) => Vec::new(),
            Err(error) => vec![Err(error)],
        };
        stream::iter(objects)
    })
}

/// The objects applied or deleted in a reflected watch stream, each once the store holds its
/// new state (for a deletion: once the store no longer holds it).
pub fn touched_in_store<K>(
    events: impl Stream<Item = Result<Event<K>, Error>> + Send + 'static,
    store: Store<K>,
) -> impl Stream<Item = Result<K, Error>> + Send + 'static
where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync + Default,
{
    // What the store held when a relist started, to find what the relist no longer lists.
    let mut before_relist: Vec<Arc<K>> = Vec::new();
    events.flat_map(move |event| {
        let objects: Vec<Result<K, Error>> = match event {
            Ok(Event::Apply(object) | Event::Delete(object)) => vec![Ok(object)],
            Ok(Event::Init) => {
                before_relist = store.state();
                Vec::new()
            }
            Ok(Event::InitDone) => {
                let now = store.state();
                let gone = std::mem::take(&mut before_relist)
                    .into_iter()
                    .filter(|old| store.get(&old.to_object_ref(Default::default())).is_none());
                now.iter()
                    .cloned()
                    .chain(gone)
                    .map(|o| Ok(K::clone(Arc::as_ref(&o))))
                    .collect()
            }
            Ok(Event::InitApply(_)) => Vec::new(),
            Err(error) => vec![Err(error)],
        };
        stream::iter(objects)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::reflector::{self, ObjectRef};

    fn object(name: &str, version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("prod".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    /// Every object handed over is in the store, in the version handed over, at that moment:
    /// the condition under which kube's controller reconciles it rather than dropping it.
    #[tokio::test]
    async fn a_relist_hands_over_objects_only_once_the_store_holds_them() {
        let (store, writer) = reflector::store::<ConfigMap>();
        let events = vec![
            // The first list.
            Event::Init,
            Event::InitApply(object("a", "1")),
            Event::InitDone,
            // A watch event.
            Event::Apply(object("a", "2")),
            // A relist after the watch lost its place: "a" changed, "b" was created meanwhile.
            Event::Init,
            Event::InitApply(object("a", "3")),
            Event::InitApply(object("b", "1")),
            Event::InitDone,
        ];
        let reflected = stream::iter(events.into_iter().map(Ok)).reflect(writer);
        let mut handed = Vec::new();
        let mut objects = std::pin::pin!(objects_in_store(reflected, store.clone()));
        while let Some(Ok(o)) = objects.next().await {
            let name = o.metadata.name.clone().unwrap_or_default();
            let version = o.metadata.resource_version.clone().unwrap_or_default();
            let stored = store
                .get(&ObjectRef::new(&name).within("prod"))
                .and_then(|s| s.metadata.resource_version.clone());
            assert_eq!(
                stored.as_deref(),
                Some(version.as_str()),
                "{name}@{version} handed over before the store held it"
            );
            handed.push(format!("{name}@{version}"));
        }
        handed.sort();
        assert_eq!(handed, ["a@1", "a@2", "a@3", "b@1"]);
    }

    /// Deletions are handed over too, and a relist hands over what it no longer lists.
    #[tokio::test]
    async fn deletions_and_objects_a_relist_no_longer_lists_are_handed_over() {
        let (store, writer) = reflector::store::<ConfigMap>();
        let events = vec![
            Event::Init,
            Event::InitApply(object("a", "1")),
            Event::InitApply(object("b", "1")),
            Event::InitApply(object("c", "1")),
            Event::InitDone,
            Event::Delete(object("a", "2")),
            // "b" was deleted while the watch was away; "c" changed.
            Event::Init,
            Event::InitApply(object("c", "2")),
            Event::InitDone,
        ];
        let reflected = stream::iter(events.into_iter().map(Ok)).reflect(writer);
        let mut handed = Vec::new();
        let mut objects = std::pin::pin!(touched_in_store(reflected, store.clone()));
        while let Some(Ok(o)) = objects.next().await {
            let name = o.metadata.name.clone().unwrap_or_default();
            let version = o.metadata.resource_version.clone().unwrap_or_default();
            let stored = store
                .get(&ObjectRef::new(&name).within("prod"))
                .and_then(|s| s.metadata.resource_version.clone());
            let key = format!("{name}@{version}");
            // The deletion of "a", and "b" the second time: the relist no longer lists it.
            let deleted = key == "a@2" || (key == "b@1" && handed.contains(&key));
            let expected = (!deleted).then_some(version.as_str());
            assert_eq!(stored.as_deref(), expected, "{key}");
            handed.push(key);
        }
        // The first list comes in the store's order.
        handed[..3].sort();
        assert_eq!(handed, ["a@1", "b@1", "c@1", "a@2", "c@2", "b@1"]);
    }

    /// What kube's own `applied_objects()` does on the same relist: it hands over "b" while
    /// the store does not hold it yet (this is the race the stream above closes).
    #[tokio::test]
    async fn kubes_applied_objects_hands_over_a_relisted_object_before_the_store_has_it() {
        let (store, writer) = reflector::store::<ConfigMap>();
        let events = vec![
            Event::Init,
            Event::InitDone,
            Event::Init,
            Event::InitApply(object("b", "1")),
            Event::InitDone,
        ];
        let mut objects = std::pin::pin!(
            stream::iter(events.into_iter().map(Ok))
                .reflect(writer)
                .applied_objects()
        );
        let Some(Ok(b)) = objects.next().await else {
            panic!("no object handed over")
        };
        assert_eq!(b.metadata.name.as_deref(), Some("b"));
        assert!(store.get(&ObjectRef::new("b").within("prod")).is_none());
    }
}
