//! The WAL archiver of a physical Backup: its StatefulSet (built pure in [`statefulset`],
//! applied here only when it differs), what its `/status` says ([`poll`]) and what that
//! means for the Backup's status ([`health`], pure), and its slot dropped when the Backup
//! is deleted ([`release`]).

pub mod health;
mod poll;
pub mod release;
mod slot_job;
pub mod statefulset;
pub mod status;

use api::Backup;
use api::names;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt as _};

use super::context::Context;
use super::error::{self, Error};
use super::pod_template::MANAGER;
use health::Seen;

/// Makes sure the archiver runs as desired, then reads it.
pub async fn step(ctx: &Context, backup: &Backup) -> Result<Seen, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let desired = statefulset::statefulset(backup, &ctx.jobs);
    let name = desired.name_any();
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(error::gather("StatefulSet", &name))?;
    if !existing.is_some_and(|e| statefulset::up_to_date(&e, &desired)) {
        // The archiver mounts the claim the operator makes for a Backup without a
        // destination; its Pod cannot be scheduled before the claim exists.
        super::backup::ensure_claim(ctx, backup).await?;
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(error::apply("apply", "StatefulSet", &name))?;
        tracing::info!(backup = %backup.name_any(), statefulset = %name, "WAL archiver applied");
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    Ok(poll::poll(
        &pods,
        &format!("{}-0", names::wal_archiver(&backup.name_any())),
    )
    .await)
}
