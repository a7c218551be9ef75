//! Initialising a Database created with a `backupRef`. The database-operator provisions it
//! once the Backup is ready and then waits, without reporting Ready, for the Restore named
//! `names::initial_restore(db)` to complete; this controller creates that Restore as soon
//! as a Pod serves (a logical Backup, restored through SQL) or at once (a physical Backup:
//! the Restore prepares the data volume before the database-operator creates the
//! StatefulSet). The two operators never call each other: they meet in these objects.

use std::sync::Arc;

use api::names;
use api::{Database, DatabasePhase, Restore, RestoreSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Api, Resource as _, ResourceExt as _};

use super::context::Context;
use super::error::{self, Error};
use super::job_runs::create_if_absent;
use super::pod_template;

pub async fn reconcile(
    guard: Arc<DeserializeGuard<Database>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    // A Database that does not decode is the database-operator's to report.
    let Ok(database) = &guard.0 else {
        return Ok(Action::await_change());
    };
    let Some(backup_ref) = &database.spec.backup_ref else {
        return Ok(Action::await_change());
    };
    if !ctx.caches.synced().await {
        return Ok(Action::await_change());
    }
    let namespace = database.namespace().unwrap_or_default();
    let backup = ctx.caches.backup(&namespace, &backup_ref.name)?;
    let Some(backup) = backup.filter(|b| b.is_ready()) else {
        // The database-operator reports WaitingForBackup; the Backup's watch wakes us.
        return Ok(Action::await_change());
    };
    let physical = api::recovery::is_physical(&backup);
    // A target the archive cannot reach is the database-operator's to report; a Job would
    // only fail with the same words.
    if !wants_restore(database, physical)
        || api::recovery::refusal(database, &backup).is_some()
        || api::recovery::awaits_window(database, &backup)
    {
        return Ok(Action::await_change());
    }
    let Some(restore) = initial_restore(database) else {
        return Ok(Action::await_change());
    };
    let restores: Api<Restore> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = restore.name_any();
    let created = create_if_absent(&restores, &restore)
        .await
        .map_err(error::apply("create", "Restore", &name))?;
    if created.is_some() {
        let note = format!(
            "created Restore {name} to initialise it from Backup {}",
            backup_ref.name
        );
        ctx.event(database, false, "InitialRestoreCreated", note)
            .await;
    }
    Ok(Action::await_change())
}

/// True while the Database waits for its initial data: it has not been Ready, and a Pod
/// serves (logical) or no server has started yet (physical: the database-operator creates the
/// StatefulSet only after this Restore completed). Once it has been Ready the data is live,
/// and restoring over it again (if someone deleted the Restore) would destroy changes.
fn wants_restore(database: &Database, physical: bool) -> bool {
    let ready_replicas = database.status.as_ref().map_or(0, |s| s.ready_replicas);
    database.spec.backup_ref.is_some()
        && database.metadata.deletion_timestamp.is_none()
        && !database.is_ready()
        && database.phase() != DatabasePhase::Ready
        && (physical || ready_replicas >= 1)
}

/// The Restore that initialises `database` (pure). Owned by the Database, so it goes with it.
pub fn initial_restore(database: &Database) -> Option<Restore> {
    let backup = api::ObjectReference {
        name: database.spec.backup_ref.as_ref()?.name.clone(),
    };
    let name = database.name_any();
    Some(Restore {
        metadata: ObjectMeta {
            name: Some(names::initial_restore(&name)),
            namespace: database.namespace(),
            labels: Some(pod_template::labels(
                "initial-restore",
                &[(names::LABEL_DATABASE, &name)],
            )),
            owner_references: database.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: RestoreSpec {
            backup_ref: backup,
            database_ref: api::ObjectReference { name },
            run_id: None,
        },
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn database(phase: &str, ready_replicas: i32, backup_ref: bool) -> Database {
        let status =
            json!({"phase": phase, "readyReplicas": ready_replicas, "observedGeneration": 1});
        let database = testkit::database("copy")
            .served_in("prod")
            .set("/metadata/uid", json!("u-db"))
            .set("/status", status);
        if backup_ref {
            database.backup_ref("nightly").build()
        } else {
            database.build()
        }
    }

    #[test]
    fn the_initial_restore_is_wanted_only_before_the_database_was_ready() {
        // (phase, ready replicas, has backupRef, physical, wanted)
        let rows = [
            ("Verifying", 1, true, false, true),
            ("Verifying", 0, true, false, false),
            ("Ready", 1, true, false, false),
            ("Verifying", 1, false, false, false),
            // A physical recovery comes before any server: nothing needs to serve.
            ("Provisioning", 0, true, true, true),
            ("Ready", 1, true, true, false),
            ("Provisioning", 0, false, true, false),
        ];
        for (phase, ready, backup_ref, physical, want) in rows {
            assert_eq!(
                wants_restore(&database(phase, ready, backup_ref), physical),
                want,
                "{phase} {ready} {backup_ref} {physical}"
            );
        }
    }

    #[test]
    fn the_initial_restore_names_backup_and_database_and_is_owned_by_the_database() {
        let restore = initial_restore(&database("Verifying", 1, true)).unwrap();
        assert_eq!(restore.metadata.name.as_deref(), Some("copy-init"));
        assert_eq!(restore.spec.backup_ref.name, "nightly");
        assert_eq!(restore.spec.database_ref.name, "copy");
        let owner = &restore.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Database", "copy")
        );
        assert!(super::super::restore::is_initial(&restore));
        assert!(initial_restore(&database("Verifying", 1, false)).is_none());
    }

    #[tokio::test]
    async fn a_seeded_database_gets_its_restore_once_a_pod_serves() {
        use crate::controller::fixtures::{Script, scenario};
        use http::Method;
        use testkit::{Reply, expect};
        let ready = json!({"conditions": [{"type": "BackupReady", "status": "True", "reason": "ArtifactAvailable",
                                           "message": "", "lastTransitionTime": "2026-01-02T02:00:05Z"}]});
        let backup = testkit::backup("nightly", "shop")
            .set("/metadata/namespace", json!("prod"))
            .status(ready)
            .json();
        let script = Script::from(vec![
            expect(
                Method::POST,
                "/apis/database.example.com/v1/namespaces/prod/restores",
                Reply::Echo,
            ),
            expect(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/prod/events",
                Reply::Echo,
            ),
        ])
        .cached_backup(backup);
        let (ctx, server) = scenario(script);
        let guarded = |db| Arc::new(DeserializeGuard(Ok(db)));
        reconcile(guarded(database("Verifying", 1, true)), ctx)
            .await
            .unwrap();
        let seen = server.finish();
        assert_eq!(seen[0].body["metadata"]["name"], "copy-init");
        assert_eq!(seen[1].body["reason"], "InitialRestoreCreated");

        // Once Ready, nothing is read or created, even if the Restore was deleted.
        let (ctx, server) = scenario(vec![]);
        reconcile(guarded(database("Ready", 1, true)), ctx)
            .await
            .unwrap();
        assert!(server.finish().is_empty());
    }

    #[tokio::test]
    async fn a_database_from_a_physical_backup_gets_its_restore_before_any_pod_serves() {
        use crate::controller::fixtures::{Script, scenario};
        use http::Method;
        use testkit::{Reply, expect};
        let ready = json!({"conditions": [{"type": "BackupReady", "status": "True", "reason": "ArtifactAvailable",
                                           "message": "", "lastTransitionTime": "2026-01-02T02:00:05Z"}],
                           "recoverability": {"firstRecoverableTime": "2026-01-02T02:00:00Z",
                                              "lastRecoverableTime": "2026-01-02T03:00:00Z"}});
        let backup = testkit::backup("nightly", "shop")
            .set("/metadata/namespace", json!("prod"))
            .set("/spec/method", json!("physical"))
            .status(ready)
            .json();
        let script = Script::from(vec![
            expect(
                Method::POST,
                "/apis/database.example.com/v1/namespaces/prod/restores",
                Reply::Echo,
            ),
            expect(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/prod/events",
                Reply::Echo,
            ),
        ])
        .cached_backup(backup.clone());
        let (ctx, server) = scenario(script);
        let guarded = |db| Arc::new(DeserializeGuard(Ok(db)));
        // Provisioning: no Pod at all yet.
        reconcile(guarded(database("Provisioning", 0, true)), ctx)
            .await
            .unwrap();
        let seen = server.finish();
        assert_eq!(seen[0].body["metadata"]["name"], "copy-init");

        // A target outside the window: no Restore (the Database reports the refusal).
        let outside = database("Failed", 0, true);
        let mut outside = serde_json::to_value(outside).unwrap();
        outside["spec"]["backupRef"]["targetTime"] = json!("2026-01-02T04:00:00Z");
        let outside: Database = serde_json::from_value(outside).unwrap();
        let (ctx, server) = scenario(Script::from(vec![]).cached_backup(backup));
        reconcile(guarded(outside), ctx).await.unwrap();
        assert!(server.finish().is_empty());
    }
}
