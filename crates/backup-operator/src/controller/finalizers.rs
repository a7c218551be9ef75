//! Setting a Backup's finalizers: the whole list, conditioned on the resourceVersion it was
//! read at, so the patch fails (and the reconcile retries) if the list changed meanwhile.

use api::Backup;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;

use super::error::{self, Error};

/// Sets `backup`'s finalizers to `finalizers`; `doing` names the change in an error
/// ("remove the finalizer of").
pub async fn set(
    api: &Api<Backup>,
    backup: &Backup,
    finalizers: &[String],
    doing: &'static str,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": backup.resource_version()}
    });
    api.patch(
        &backup.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(error::apply(doing, "Backup", &backup.name_any()))?;
    Ok(())
}
