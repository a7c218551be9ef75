//! One reconcile of one Database: gather → validate → build → apply → status → events.
//!
//! Every step but gather, apply and the final writes is a pure function in its own module;
//! this one only strings them together and decides what is worth writing. A reconcile of an
//! unchanged, Ready Database only reads: every apply is skipped by its hash, the status
//! compares equal and no Event is due.

use api::k8s_openapi::jiff::Timestamp;
use api::{Database, DatabaseStatus, conditions, names};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::Patch;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client, Resource, ResourceExt};
use runtime::written::Written;
use serde_json::json;
use std::sync::Arc;

use crate::apply::{Applied, apply, apply_params};
use crate::builders;
use crate::caches::Caches;
use crate::credentials_secret;
use crate::endpoint_slices;
use crate::error::{ApplyError, Error, Stage, StatusError};
use crate::events;
use crate::gather::{self, Gathered};
use crate::instance_actions;
use crate::instance_rbac;
use crate::pods;
use crate::recovery::{self, Recovery};
use crate::rollout::{self, RolloutStep};
use crate::scale_down;
use crate::status::{self, InitialRestore, Observed, Provisioning, Volumes, Workload};
use crate::validate;
use crate::volumes;
use runtime::cached::Cached;

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    /// What the reconciles read instead of the API server.
    pub caches: Arc<Caches>,
    /// The Databases as their last status patch left them, until the Database cache shows it.
    pub statuses_written: Written<Database>,
    /// What the PostgreSQL Pods need from the operator's configuration.
    pub pod_settings: builders::PodSettings,
}

/// Reconciles one Database, as the controller hands it over.
pub async fn reconcile(guard: &DeserializeGuard<Database>, ctx: &Context) -> Result<Action, Error> {
    let db = runtime::error::decoded(guard, &ctx.recorder).await?;
    let name = db.name_any();
    let missing = |field| Error::MissingMetadata {
        name: name.clone(),
        field,
    };
    let namespace = db.namespace().ok_or_else(|| missing("namespace"))?;
    db.uid().ok_or_else(|| missing("uid"))?;
    if db.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes the owned objects; the claims stay by design.
        return Ok(Action::await_change());
    }

    if !ctx.caches.synced().await {
        // The watches ended: the operator is shutting down.
        return Ok(Action::await_change());
    }
    let gathered = gather::gather(&ctx.caches, db, &namespace)?;
    let gate = validate::backup_gate(db, gathered.backup.as_ref(), gathered.restore.as_ref());
    let (provisioned, apply_error) = if gate.allows_provisioning() {
        provision(ctx, db, &namespace, &gathered).await
    } else {
        (Provisioned::untouched(&gathered), None)
    };
    let observed = observe(db, gate, &gathered, &provisioned, apply_error.as_ref());

    let status = status::compute_status(db, &observed, Timestamp::now());
    // The status this operator last wrote, when the cache does not show it yet.
    let latest = runtime::cached::newest(&ctx.statuses_written, db);
    let old = latest.status.as_ref();
    if conditions::status_changed(old, &status) {
        let patched = patch_status(&ctx.client, &namespace, &name, &status).await?;
        ctx.statuses_written.remember(patched);
        if let Some(announcement) = events::announcement(old, &status) {
            events::publish(&ctx.recorder, db, announcement).await;
        }
        if let Some(announcement) = events::failover(old, &status) {
            events::publish(&ctx.recorder, db, announcement).await;
        }
    }
    for announcement in provisioned.reverted {
        events::publish(&ctx.recorder, db, announcement).await;
    }
    // The runtime adds the long resync to a success (`runtime::resync`).
    match apply_error {
        Some(error) => Err(error.into()),
        None => Ok(Action::await_change()),
    }
}

/// The owned objects after the apply step.
struct Provisioned {
    secret_exists: bool,
    services_exist: bool,
    statefulset: Option<StatefulSet>,
    /// The StatefulSet's spec changed in this reconcile: the Pods still show the old one.
    statefulset_changed: bool,
    volumes: Volumes,
    /// An Event for each object put back after a hand edit.
    reverted: Vec<events::Announcement>,
}

impl Provisioned {
    /// Remembers an Event for `applied` when it put back a hand edit.
    fn note_revert<K: Resource<DynamicType = ()>>(&mut self, applied: &Applied<K>) {
        if let Applied::Reverted { object, field } = applied {
            self.reverted
                .push(events::drift_reverted(object.object_ref(&()), field));
        }
    }

    /// Nothing applied: what was there before.
    fn untouched(g: &Gathered) -> Provisioned {
        Provisioned {
            secret_exists: g.secret.is_some(),
            services_exist: g.headless_service.is_some()
                && g.client_service.is_some()
                && g.read_only_service.is_some()
                && g.any_instance_service.is_some(),
            statefulset: g.statefulset.clone(),
            statefulset_changed: false,
            volumes: Volumes::Settled,
            reverted: Vec::new(),
        }
    }
}

/// Builds and applies the owned objects in order, stopping at the first failure. What is
/// written is remembered in the caches until their watches deliver it.
async fn provision(
    ctx: &Context,
    db: &Database,
    namespace: &str,
    g: &Gathered,
) -> (Provisioned, Option<ApplyError>) {
    let client = &ctx.client;
    let caches = &ctx.caches;
    let mut done = Provisioned::untouched(g);
    let mut primary_address = None;

    match credentials_secret::apply(client, db, namespace, g.secret.as_ref()).await {
        Ok(applied) => {
            done.note_revert(&applied);
            remember(&caches.secrets, applied);
        }
        Err(e) => return (done, Some(e)),
    }
    done.secret_exists = true;

    for (desired, observed) in [
        (builders::headless_service(db), g.headless_service.as_ref()),
        (builders::client_service(db), g.client_service.as_ref()),
        (
            builders::read_only_service(db),
            g.read_only_service.as_ref(),
        ),
        (
            builders::any_instance_service(db),
            g.any_instance_service.as_ref(),
        ),
    ] {
        let read_write = desired.metadata.name == Some(names::client_service(&db.name_any()));
        match apply(client, namespace, desired, observed, Stage::Services).await {
            Ok(applied) => {
                done.note_revert(&applied);
                if read_write {
                    primary_address = cluster_ip(&applied);
                }
                remember(&caches.services, applied);
            }
            Err(e) => return (done, Some(e)),
        }
    }
    done.services_exist = true;

    let rbac_hash = match instance_rbac::apply(client, db, namespace, g.statefulset.as_ref()).await
    {
        Ok(hash) => hash,
        Err(e) => return (done, Some(e)),
    };
    if recovery::pending(db, g) {
        // The recovery Job fills this claim; the StatefulSet comes once it has.
        let claim = builders::first_data_claim(db);
        return match apply(
            client,
            namespace,
            claim,
            g.first_claim.as_ref(),
            Stage::Volumes,
        )
        .await
        {
            Ok(applied) => {
                done.note_revert(&applied);
                (done, None)
            }
            Err(e) => (done, Some(e)),
        };
    }
    let claims = builders::claim_templates(db, g.statefulset.as_ref());
    let mut desired =
        builders::statefulset(db, claims, &ctx.pod_settings, primary_address.as_deref());
    instance_rbac::record(&mut desired, rbac_hash);
    let scale = scale_plan(db, g);
    if let Some(spec) = desired.spec.as_mut() {
        spec.replicas = Some(scale.replicas);
    }
    if let Some((from, to)) = &scale.switchover {
        let note = format!(
            "scaling down to {} removes the primary {from}: switching over to {to} first",
            db.spec.replicas
        );
        let why = events::switchover_for_scale_down(note);
        if let Err(e) = instance_actions::request_switchover(ctx, db, from, to, why).await {
            return (done, Some(e));
        }
    }
    let observed = g.statefulset.as_ref();
    match apply(client, namespace, desired, observed, Stage::StatefulSet).await {
        Ok(Applied::Unchanged(sts)) => done.statefulset = Some(sts),
        Ok(applied) => {
            done.note_revert(&applied);
            let sts = applied.into_inner();
            caches.statefulsets.wrote(&sts);
            done.statefulset = Some(sts);
            done.statefulset_changed = true;
        }
        Err(e) => return (done, Some(e)),
    }

    if scale.switchover.is_none()
        && let Some(sts) = &done.statefulset
        && let Err(e) = roll_out(ctx, db, sts, g).await
    {
        return (done, Some(e));
    }

    let (volumes, error) = grow_volumes(client, db, namespace, g).await;
    done.volumes = volumes;
    (done, error)
}

/// The StatefulSet's size now: the Database's, unless that would remove the primary.
fn scale_plan(db: &Database, g: &Gathered) -> scale_down::ScalePlan {
    let (instances, _) = pods::instances(&g.pods);
    let primary = pods::primary(&instances);
    let current = g
        .statefulset
        .as_ref()
        .and_then(|s| s.spec.as_ref()?.replicas);
    scale_down::plan(db, current, primary.as_deref(), &instances)
}

/// Takes the next step of bringing the instances to the StatefulSet's newest spec, standbys
/// first ([`rollout`]), and forgets a switchover request that has been carried out.
async fn roll_out(
    ctx: &Context,
    db: &Database,
    sts: &StatefulSet,
    g: &Gathered,
) -> Result<(), ApplyError> {
    let (instances, _) = pods::instances(&g.pods);
    let primary = pods::primary(&instances);
    let ready_primary = primary
        .as_deref()
        .filter(|p| instances.iter().any(|i| i.name == *p && i.ready));
    instance_actions::forget_finished_switchover(ctx, db, ready_primary).await?;
    match rollout::plan(sts, &g.pods, &instances, primary.as_deref()) {
        None => Ok(()),
        Some(RolloutStep::Switchover { from, to }) => {
            let note = format!(
                "rolling out the new spec: the standbys run it; switching over from {from} to {to} before replacing {from}"
            );
            let why = events::rollout_step(note, None);
            instance_actions::request_switchover(ctx, db, &from, &to, why).await
        }
        Some(RolloutStep::Replace { pod, uid }) => {
            let role = match primary.as_deref() == Some(pod.as_str()) {
                true => "the only instance",
                false => "a standby",
            };
            let note = format!("rolling out the new spec: replacing Pod {pod} ({role})");
            let related = g
                .pods
                .iter()
                .find(|p| p.name_any() == pod)
                .map(|p| p.object_ref(&()));
            let why = events::rollout_step(note, related);
            instance_actions::replace_pod(ctx, db, &pod, &uid, why).await
        }
    }
}

/// Keeps what an apply wrote until the watch of its kind delivers it.
/// The cluster IP the API server gave a Service (`None` for a headless one).
fn cluster_ip(applied: &Applied<Service>) -> Option<String> {
    let service = match applied {
        Applied::Unchanged(s) | Applied::Patched(s) => s,
        Applied::Reverted { object, .. } => object,
    };
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None")
}

fn remember<K>(cache: &Cached<K>, applied: Applied<K>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static,
{
    if !matches!(applied, Applied::Unchanged(_)) {
        cache.wrote(&applied.into_inner());
    }
}

/// Asks the claims to grow to `storage.size` when it outgrew the claim template.
async fn grow_volumes(
    client: &Client,
    db: &Database,
    namespace: &str,
    g: &Gathered,
) -> (Volumes, Option<ApplyError>) {
    let size = &db.spec.storage.size;
    let to_expand = volumes::claims_to_expand(&g.claims, size);
    if !to_expand.is_empty() {
        if let Some(message) = refused_before(db) {
            return (Volumes::Rejected(message), None);
        }
        match volumes::expand(client, namespace, &to_expand, size).await {
            Ok(()) => {}
            Err(e) if e.is_rejected() => return (Volumes::Rejected(e.user_message()), None),
            Err(e) => return (Volumes::Settled, Some(e)),
        }
    }
    let growing = volumes::growing_claims(&g.claims, size);
    if growing.is_empty() {
        (Volumes::Settled, None)
    } else {
        (Volumes::Expanding(growing), None)
    }
}

/// The refusal already reported for this generation: asking again would only be refused
/// again, so it waits for the Database to change.
fn refused_before(db: &Database) -> Option<String> {
    let status = db.status.as_ref()?;
    if status.observed_generation != db.metadata.generation {
        return None;
    }
    conditions::find(&status.conditions, conditions::DEGRADED)
        .filter(|c| c.status == "True" && c.reason == "VolumeExpansionRejected")
        .map(|c| c.message.clone())
}

/// What the status is computed from.
fn observe(
    db: &Database,
    gate: validate::BackupGate,
    g: &Gathered,
    p: &Provisioned,
    error: Option<&ApplyError>,
) -> Observed {
    let provisioning = match error {
        _ if !gate.allows_provisioning() => Provisioning::Blocked,
        Some(e) => Provisioning::Failed {
            stage: e.stage(),
            message: e.user_message(),
            rejected: e.is_rejected(),
        },
        None => Provisioning::Applied,
    };
    let (instances, report) = pods::instances(&g.pods);
    let primary = pods::primary(&instances);
    let replication = crate::replication::health(db.spec.replicas, &instances, report.as_ref());
    Observed {
        gate,
        provisioning,
        secret_exists: p.secret_exists,
        services_exist: p.services_exist,
        workload: p.statefulset.as_ref().map(Workload::of),
        routed: primary
            .as_ref()
            .is_some_and(|p| endpoint_slices::routes_to(&g.client_slices, p)),
        primary,
        instances,
        failover: crate::replication::newest_failover(&g.pods),
        replication,
        // Right after a spec change the Pods still run the old template; their failures
        // (say, the bad image that was just replaced) no longer apply.
        pod_failure: (!p.statefulset_changed)
            .then(|| pods::failure(&g.pods))
            .flatten(),
        pod_note: pods::pending_note(&g.pods),
        restore: InitialRestore::of(g.restore.as_ref()),
        refusal: validate::refusal(db, g.backup.as_ref()),
        recovery: Recovery::of(db, g),
        volumes: p.volumes.clone(),
    }
}

/// Writes `status` with server-side apply, so fields this operator stops setting go away.
async fn patch_status(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &DatabaseStatus,
) -> Result<Database, StatusError> {
    let patch = json!({
        "apiVersion": Database::api_version(&()),
        "kind": Database::kind(&()),
        "status": status,
    });
    Api::<Database>::namespaced(client.clone(), namespace)
        .patch_status(name, &apply_params(), &Patch::Apply(&patch))
        .await
        .map_err(|source| StatusError::Patch {
            name: name.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests;
