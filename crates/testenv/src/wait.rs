//! Waiting on watches, never on sleeps, with errors that show what the object looked like.

use std::{fmt::Debug, time::Duration};

use anyhow::{Context, Result, bail};
use kube::{
    Api, Resource,
    runtime::wait::{Condition, await_condition},
};
use serde::{Serialize, de::DeserializeOwned};

/// Waits until the object `name` satisfies `condition`, and returns it.
///
/// Built on a watch ([`await_condition`]), so it returns as soon as the object changes. On
/// timeout the error holds the object's current YAML (without managed fields), which is what
/// one needs to see why a status never came.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    condition: impl Condition<K>,
    timeout: Duration,
) -> Result<K>
where
    K: Resource + Clone + Debug + Send + Serialize + DeserializeOwned + 'static,
    K::DynamicType: Default,
{
    let what = describe::<K>(api, name);
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(object))) => Ok(object),
        Ok(Ok(None)) => bail!(
            "{what} does not exist, and the condition accepted that; use wait_deleted to wait for deletion"
        ),
        Ok(Err(e)) => Err(e).with_context(|| format!("watching {what}")),
        Err(_) => bail!(
            "timed out after {timeout:?} waiting for {what}; it is now:\n{}",
            current_yaml(api, name).await
        ),
    }
}

/// Waits until the object `name` no longer exists (finalizers done).
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, timeout: Duration) -> Result<()>
where
    K: Resource + Clone + Debug + Send + Serialize + DeserializeOwned + 'static,
    K::DynamicType: Default,
{
    let what = describe::<K>(api, name);
    let gone = |object: Option<&K>| object.is_none();
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, gone)).await {
        Ok(result) => result
            .map(|_| ())
            .with_context(|| format!("watching {what}")),
        Err(_) => bail!(
            "timed out after {timeout:?} waiting for {what} to be deleted; it is now:\n{}",
            current_yaml(api, name).await
        ),
    }
}

fn describe<K>(api: &Api<K>, name: &str) -> String
where
    K: Resource,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    match api.namespace() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

async fn current_yaml<K>(api: &Api<K>, name: &str) -> String
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    match api.get_opt(name).await {
        Ok(Some(mut object)) => {
            object.meta_mut().managed_fields = None;
            serde_yaml::to_string(&object)
                .unwrap_or_else(|e| format!("(cannot render {object:?} as YAML: {e})"))
        }
        Ok(None) => "(absent)".to_string(),
        Err(e) => format!("(cannot read it: {e})"),
    }
}
