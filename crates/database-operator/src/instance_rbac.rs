//! Applying the ServiceAccount, Role and RoleBinding of a Database's Pods
//! (`builders::rbac`), without watching three more kinds for it.
//!
//! The three are applied together, and the hash of what was applied is recorded in an
//! annotation of the StatefulSet (which is cached): while the recorded hash matches the
//! desired one, nothing is sent, so a steady state writes nothing. A hand edit of the three
//! is not noticed until their content changes (a change of replicas changes the Role); the
//! StatefulSet's own drift check covers the annotation.

use api::Database;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::Patch;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::apply::apply_params;
use crate::builders::rbac;
use crate::error::{ApplyError, Stage};

/// Annotation of the StatefulSet: the hash of the instances' RBAC objects last applied.
pub const HASH_ANNOTATION: &str = "database.example.com/instance-rbac-hash";

/// Applies the three unless `statefulset` records their current hash; returns that hash.
pub async fn apply(
    client: &Client,
    db: &Database,
    namespace: &str,
    statefulset: Option<&StatefulSet>,
) -> Result<String, ApplyError> {
    let account = rbac::service_account(db);
    let role = rbac::role(db);
    let binding = rbac::role_binding(db);
    let hash = hash_of(&account, &role, &binding)?;
    let recorded = statefulset.and_then(|s| s.annotations().get(HASH_ANNOTATION));
    if recorded == Some(&hash) {
        return Ok(hash);
    }
    send(client, namespace, &account).await?;
    send(client, namespace, &role).await?;
    send(client, namespace, &binding).await?;
    Ok(hash)
}

/// Puts `hash` on the desired StatefulSet.
pub fn record(statefulset: &mut StatefulSet, hash: String) {
    statefulset
        .annotations_mut()
        .insert(HASH_ANNOTATION.to_string(), hash);
}

fn hash_of(
    account: &ServiceAccount,
    role: &Role,
    binding: &RoleBinding,
) -> Result<String, ApplyError> {
    let content =
        serde_json::to_vec(&(account, role, binding)).map_err(|source| ApplyError::Serialize {
            stage: Stage::InstanceAccount,
            name: role.name_any(),
            source,
        })?;
    Ok(hex::encode(&Sha256::digest(&content)[..8]))
}

async fn send<K>(client: &Client, namespace: &str, object: &K) -> Result<(), ApplyError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let name = object.name_any();
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(&name, &apply_params(), &Patch::Apply(object))
        .await
        .map_err(|source| ApplyError::Apply {
            stage: Stage::InstanceAccount,
            name,
            source,
        })?;
    Ok(())
}
