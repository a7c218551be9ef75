//! Step 4: server-side apply of the desired objects, skipped when nothing changed.
//!
//! Each desired object carries a hash of its own content in [`HASH_ANNOTATION`]. When the
//! object in the cluster carries the same hash, it was applied from identical content, and
//! when every field the desired object sets still holds its value there ([`crate::drift`]),
//! the apply is skipped: a reconcile of an unchanged Database writes nothing. A field someone
//! edited by hand is put back by the next apply, and reported as [`Applied::Reverted`].

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::MANAGER;
use crate::error::{ApplyError, Stage};

/// Annotation holding the hash of the content this operator last applied.
pub const HASH_ANNOTATION: &str = "database.example.com/desired-hash";

/// `object` with [`HASH_ANNOTATION`] set to the hash of its content.
pub fn stamp<K: Resource + Serialize>(mut object: K, stage: Stage) -> Result<K, ApplyError> {
    let meta = object.meta_mut();
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(HASH_ANNOTATION);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    let content = serde_json::to_vec(&object).map_err(|source| ApplyError::Serialize {
        stage,
        name: object.name_any(),
        source,
    })?;
    let hash = hex::encode(&Sha256::digest(&content)[..8]);
    object
        .annotations_mut()
        .insert(HASH_ANNOTATION.to_string(), hash);
    Ok(object)
}

/// True when `observed` was applied from the same content as the stamped `desired`.
pub fn is_current<K: Resource>(desired: &K, observed: Option<&K>) -> bool {
    let hash = |o: &K| o.annotations().get(HASH_ANNOTATION).cloned();
    observed.is_some_and(|o| hash(o).is_some() && hash(o) == hash(desired))
}

/// What [`apply`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied<K> {
    /// The object in the cluster was already current; nothing was sent.
    Unchanged(K),
    /// The object was applied; this is what the API server returned.
    Patched(K),
    /// The object had the desired hash but `field` had been changed by someone else; it was
    /// applied again, and this is what the API server returned.
    Reverted { object: K, field: String },
}

impl<K> Applied<K> {
    /// The object as it now is in the cluster.
    pub fn into_inner(self) -> K {
        match self {
            Applied::Unchanged(k) | Applied::Patched(k) => k,
            Applied::Reverted { object, .. } => object,
        }
    }
}

/// Server-side applies `desired` (as field manager `database-operator`, forcing ownership of
/// conflicting fields) unless `observed` is already current.
pub async fn apply<K>(
    client: &Client,
    namespace: &str,
    desired: K,
    observed: Option<&K>,
    stage: Stage,
) -> Result<Applied<K>, ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let desired = stamp(desired, stage)?;
    let drifted = match observed.filter(|o| is_current(&desired, Some(o))) {
        Some(current) => match crate::drift::first_difference(&desired, current) {
            None => return Ok(Applied::Unchanged(current.clone())),
            Some(field) => Some(field),
        },
        None => None,
    };
    let name = desired.name_any();
    match &drifted {
        Some(field) => tracing::info!(%name, %field, "putting back a field changed by hand"),
        None => tracing::debug!(%name, ?stage, "applying"),
    }
    let object = Api::<K>::namespaced(client.clone(), namespace)
        .patch(&name, &apply_params(), &Patch::Apply(&desired))
        .await
        .map_err(|source| ApplyError::Apply {
            stage,
            name,
            source,
        })?;
    Ok(match drifted {
        Some(field) => Applied::Reverted { object, field },
        None => Applied::Patched(object),
    })
}

/// Server-side apply as `database-operator`, taking over fields other managers set.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;
    use crate::builders::{client_service, headless_service};

    #[test]
    fn hash_is_stable_and_follows_content() {
        let db = database("shop");
        let a = stamp(client_service(&db), Stage::Services).ok();
        let b = stamp(client_service(&db), Stage::Services).ok();
        assert!(a.is_some());
        assert_eq!(a, b, "same content, same hash");
        let hash = |s: &Option<k8s_openapi::api::core::v1::Service>| {
            s.as_ref()
                .and_then(|s| s.annotations().get(HASH_ANNOTATION).cloned())
        };
        assert_eq!(hash(&a).map(|h| h.len()), Some(16));
        // Re-stamping an already stamped object gives the same hash.
        let again = a.clone().and_then(|s| stamp(s, Stage::Services).ok());
        assert_eq!(hash(&again), hash(&a));
        let other = stamp(headless_service(&db), Stage::Services).ok();
        assert_ne!(hash(&a), hash(&other));
    }

    #[test]
    fn current_only_with_the_same_hash() {
        let db = database("shop");
        let desired = stamp(client_service(&db), Stage::Services).ok();
        let Some(desired) = desired else {
            panic!("stamp failed")
        };
        let rows = [
            ("missing", None, false),
            ("same", Some(desired.clone()), true),
            ("unstamped", Some(client_service(&db)), false),
            (
                "other content",
                stamp(headless_service(&db), Stage::Services).ok(),
                false,
            ),
        ];
        for (what, observed, want) in rows {
            assert_eq!(is_current(&desired, observed.as_ref()), want, "{what}");
        }
    }
}
