//! What the operator asks of a Database's instances, through the API server: a planned
//! switchover (the annotations the primary's instance manager watches, as `kubectl pg
//! promote` writes them), and replacing a Pod so that the StatefulSet recreates it with the
//! newest spec.

use api::Database;
use api::names::{ANNOTATION_SWITCHOVER_FROM, ANNOTATION_SWITCHOVER_TO};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::error::{ApplyError, Stage};
use crate::events::{self, Announcement};
use crate::reconcile::Context;

/// The switchover the Database's annotations ask for, if any.
fn requested(db: &Database) -> Option<(&str, &str)> {
    let annotations = db.annotations();
    Some((
        annotations.get(ANNOTATION_SWITCHOVER_FROM)?.as_str(),
        annotations.get(ANNOTATION_SWITCHOVER_TO)?.as_str(),
    ))
}

/// Asks the primary `from` to switch over to `to`, once: a request already in place is left
/// alone. `why` is announced when the request is written.
pub async fn request_switchover(
    ctx: &Context,
    db: &Database,
    from: &str,
    to: &str,
    why: Announcement,
) -> Result<(), ApplyError> {
    if requested(db) == Some((from, to)) {
        return Ok(());
    }
    patch_request(ctx, db, json!(from), json!(to)).await?;
    events::publish(&ctx.recorder, db, why).await;
    Ok(())
}

/// Removes a switchover request once its target is the ready primary: left in place, it
/// would move the primary away again whenever `from` became primary later (after a failover).
pub async fn forget_finished_switchover(
    ctx: &Context,
    db: &Database,
    ready_primary: Option<&str>,
) -> Result<(), ApplyError> {
    match (requested(db), ready_primary) {
        (Some((_, to)), Some(primary)) if to == primary => {
            patch_request(ctx, db, serde_json::Value::Null, serde_json::Value::Null).await
        }
        _ => Ok(()),
    }
}

async fn patch_request(
    ctx: &Context,
    db: &Database,
    from: serde_json::Value,
    to: serde_json::Value,
) -> Result<(), ApplyError> {
    let name = db.name_any();
    let patch = json!({"metadata": {"annotations": {
        ANNOTATION_SWITCHOVER_FROM: from,
        ANNOTATION_SWITCHOVER_TO: to,
    }}});
    Api::<Database>::namespaced(ctx.client.clone(), &db.namespace().unwrap_or_default())
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| ApplyError::Apply {
            stage: Stage::StatefulSet,
            name,
            source,
        })
}

/// Deletes the Pod `pod` if it is still the one with `uid`; the StatefulSet recreates it
/// from its newest spec on the same claim. Gone already, or replaced: nothing to do.
pub async fn replace_pod(
    ctx: &Context,
    db: &Database,
    pod: &str,
    uid: &str,
    why: Announcement,
) -> Result<(), ApplyError> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &db.namespace().unwrap_or_default());
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(pod, &params).await {
        Ok(_) => {
            events::publish(&ctx.recorder, db, why).await;
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(source) => Err(ApplyError::Apply {
            stage: Stage::Rollout,
            name: pod.to_string(),
            source,
        }),
    }
}
