//! What this process wrote, until its watch caches show it.
//!
//! Reconciles read the objects they depend on from watch caches. A write is seen there only
//! when its watch event arrives, some milliseconds later; a reconcile that runs meanwhile (a
//! burst of events for one object) would find the old state, or nothing, and write again.
//! So each write's answer is kept here and read in place of an older cached object, until
//! the cache holds that version or a later one.
//!
//! "Later" compares resource versions as numbers. Kubernetes asks clients not to rely on
//! their order, but every API server backed by etcd hands out its revisions, which only
//! grow; a version that is not a number makes the cache win, which is never wrong, only a
//! possible extra write. An entry also ends after [`KEEP`], so one whose watch event never
//! came (the object was deleted, the watch restarted) does not outlive its use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Resource;
use kube::runtime::reflector::ObjectRef;

/// How long a written object is preferred to the cache at most.
pub const KEEP: Duration = Duration::from_secs(30);

pub struct Written<K: Resource<DynamicType = ()>> {
    objects: Mutex<Entries<K>>,
}

/// Each written object by its key, with when it was written.
type Entries<K> = HashMap<ObjectRef<K>, (Instant, Arc<K>)>;

impl<K: Resource<DynamicType = ()>> Default for Written<K> {
    fn default() -> Self {
        Written {
            objects: Mutex::default(),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Written<K> {
    /// Keeps `object`, as the API server answered a write of it, without what no reconcile
    /// reads ([`crate::cache::slim`]): a write's answer carries all the managed fields, and
    /// a burst of creates keeps a thousand answers here at once.
    pub fn remember(&self, mut object: K) {
        crate::cache::slim(&mut object);
        let key = ObjectRef::from_obj(&object);
        let mut objects = self.lock();
        // Entries no reconcile read again (an object not woken since) go once too old to be
        // trusted, so the map holds at most the writes of the last KEEP.
        objects.retain(|_, (at, _)| at.elapsed() < KEEP);
        objects.insert(key, (Instant::now(), Arc::new(object)));
    }

    /// The newer of `cached` and what was written as `key`.
    pub fn newest(&self, key: &ObjectRef<K>, cached: Option<Arc<K>>) -> Option<Arc<K>> {
        let mut objects = self.lock();
        let Some((at, written)) = objects.get(key) else {
            return cached;
        };
        let written_is_newer = at.elapsed() < KEEP
            && match &cached {
                None => true,
                Some(cached) => match (version(cached.as_ref()), version(written.as_ref())) {
                    (Some(cached), Some(written)) => written > cached,
                    _ => false,
                },
            };
        if written_is_newer {
            return Some(written.clone());
        }
        // The cache caught up, or the entry is too old to trust: it has served its purpose.
        objects.remove(key);
        cached
    }

    /// The cached objects `keep` selects, each replaced by what was written when that is newer,
    /// and the written ones `keep` selects that the cache does not show at all yet.
    pub fn merged(&self, cached: Vec<Arc<K>>, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        let mut seen = std::collections::HashSet::new();
        let mut objects: Vec<Arc<K>> = cached
            .into_iter()
            .filter(|o| keep(o))
            .filter_map(|o| {
                let key = ObjectRef::from_obj(o.as_ref());
                let newest = self.newest(&key, Some(o));
                seen.insert(key);
                newest
            })
            .collect();
        let unseen: Vec<Arc<K>> = self
            .lock()
            .iter()
            .filter(|(key, (at, object))| {
                at.elapsed() < KEEP && !seen.contains(*key) && keep(object)
            })
            .map(|(_, (_, object))| object.clone())
            .collect();
        objects.extend(unseen);
        objects
    }

    /// Forgets what was written as `key`: this process deleted it.
    pub fn forget(&self, key: &ObjectRef<K>) {
        self.lock().remove(key);
    }

    /// How many writes are waiting for their watch event (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn version<K: Resource>(object: &K) -> Option<u64> {
    object.meta().resource_version.as_deref()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn object(version: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("settings".into()),
                namespace: Some("prod".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            data: Some([("value".to_owned(), value.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    fn value(object: Option<Arc<ConfigMap>>) -> Option<String> {
        object?.data.as_ref()?.get("value").cloned()
    }

    #[test]
    fn a_write_is_read_until_the_cache_holds_it_or_a_later_version() {
        let written = Written::default();
        let key = ObjectRef::from_obj(&object("1", ""));
        assert_eq!(value(written.newest(&key, None)), None);

        written.remember(object("12", "written"));
        // Not cached yet, or cached in an older version: the write wins.
        assert_eq!(
            value(written.newest(&key, None)).as_deref(),
            Some("written")
        );
        let older = Some(Arc::new(object("9", "old")));
        assert_eq!(
            value(written.newest(&key, older)).as_deref(),
            Some("written")
        );
        // The cache caught up: it wins, and the entry is gone.
        let caught_up = Some(Arc::new(object("12", "cached")));
        assert_eq!(
            value(written.newest(&key, caught_up)).as_deref(),
            Some("cached")
        );
        assert!(written.is_empty());

        // A later version (someone else's write) wins too.
        written.remember(object("20", "written"));
        let later = Some(Arc::new(object("31", "theirs")));
        assert_eq!(
            value(written.newest(&key, later)).as_deref(),
            Some("theirs")
        );
        assert!(written.is_empty());
    }

    #[test]
    fn a_list_shows_writes_the_cache_does_not_have_yet() {
        let written = Written::default();
        let named = |name: &str, version: &str| {
            let mut o = object(version, name);
            o.metadata.name = Some(name.into());
            o
        };
        written.remember(named("new", "5"));
        written.remember(named("changed", "9"));
        written.remember(named("other", "7"));
        let cached = vec![Arc::new(named("changed", "4")), Arc::new(named("old", "3"))];
        let mut got: Vec<String> = written
            .merged(cached, |o| o.metadata.name.as_deref() != Some("other"))
            .iter()
            .map(|o| {
                format!(
                    "{}@{}",
                    o.metadata.name.clone().unwrap_or_default(),
                    o.metadata.resource_version.clone().unwrap_or_default()
                )
            })
            .collect();
        got.sort();
        assert_eq!(got, ["changed@9", "new@5", "old@3"]);

        written.forget(&ObjectRef::from_obj(&named("new", "5")));
        assert_eq!(written.merged(Vec::new(), |_| true).len(), 2);
    }

    #[test]
    fn versions_that_are_not_numbers_let_the_cache_win() {
        let written = Written::default();
        written.remember(object("b7", "written"));
        let key = ObjectRef::from_obj(&object("1", ""));
        let cached = Some(Arc::new(object("a3", "cached")));
        assert_eq!(
            value(written.newest(&key, cached)).as_deref(),
            Some("cached")
        );
    }
}
