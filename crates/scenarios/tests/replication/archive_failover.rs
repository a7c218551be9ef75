//! Continuous WAL archiving across a failover: the archiver follows the read-write Service
//! to the promoted standby, creates its slot there, archives the new timeline's history file
//! and its segments, and reports healthy again on timeline 2; the former primary, back as a
//! standby, drops the slots it kept.

use std::time::Duration;

use api::Backup;
use api::conditions::{ARCHIVE_HEALTHY, BACKUP_READY};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use scenarios::physical::*;
use scenarios::{POD_START, Scenario, backup_condition, has_condition};
use testenv::Operator;

use super::cluster::{self, NAME};

#[tokio::test]
async fn a_failover_moves_archiving_to_the_new_timeline() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-archive").await;
    let s3 = backup_test_support::s3::S3Server::start_on(host_address(&scenario).await).await;
    let db = cluster::ready_database(&mut scenario, 3).await;
    scenario.start(Operator::Backup).await;
    let old_primary = db.status.unwrap_or_default().current_primary.unwrap();
    let (key_id, secret_key) = s3.credentials();
    let destination = s3_destination(
        s3.endpoint(),
        backup_test_support::s3::BUCKET,
        "team",
        "s3-credentials",
    );
    scenario
        .apply(&format!(
            "{}---\n{}",
            s3_secret_manifest("s3-credentials", key_id, secret_key),
            physical_backup_manifest("pitr", NAME, Some(&destination))
        ))
        .await;
    let backups: Api<Backup> = scenario.api();
    let ready = has_condition(backup_condition, BACKUP_READY, "True", "ArtifactAvailable");
    let streaming = has_condition(backup_condition, ARCHIVE_HEALTHY, "True", "Streaming");
    let on_timeline_1 =
        move |b: Option<&Backup>| ready(b) && streaming(b) && archive_timeline(b) == Some(1);
    testenv::wait_for(&backups, "pitr", on_timeline_1, POD_START)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));

    let pods: Api<Pod> = scenario.api();
    pods.delete(&old_primary, &DeleteParams::default())
        .await
        .unwrap();
    let rw = cluster::service_ip(&scenario, NAME).await;
    // Writes on the new primary, each ending its segment, until one is archived on
    // timeline 2 and the archiver reports healthy there.
    let streaming = has_condition(backup_condition, ARCHIVE_HEALTHY, "True", "Streaming");
    let backup = cluster::eventually(
        Duration::from_secs(240),
        "archiving healthy on timeline 2",
        || async {
            let _ = cluster::psql_on(
                &scenario,
                &rw,
                "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()",
            )
            .await;
            let backup = backups.get("pitr").await?;
            let done = streaming(Some(&backup))
                && archive_timeline(Some(&backup)) == Some(2)
                && archive_segment(Some(&backup)).is_some_and(|s| s.starts_with("00000002"));
            // Each round ends a 16 MiB segment, stored in the test's bucket: a few only.
            if !done {
                tokio::time::sleep(Duration::from_secs(8)).await;
            }
            Ok(done.then_some(backup))
        },
    )
    .await;
    let keys = s3.keys();
    let history = keys
        .iter()
        .any(|k| k.starts_with("team/shop/pitr/wal/00000002.history."));
    assert!(
        history,
        "the new timeline's history file is archived: {keys:?}"
    );
    let message =
        api::conditions::find(&backup.status.as_ref().unwrap().conditions, ARCHIVE_HEALTHY)
            .unwrap()
            .message
            .clone();
    assert!(message.contains("timeline 2"), "{message}");

    // The former primary, a standby again, keeps none of the slots it had while it led (its
    // peers' and the archiver's): on a standby they would only hold WAL back.
    let former = old_primary.as_str();
    cluster::eventually(
        Duration::from_secs(180),
        "the former primary a standby without replication slots",
        || async {
            let pods = cluster::pods(&scenario).await;
            let Some(pod) = pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(former))
            else {
                return Ok(None);
            };
            let state = cluster::psql_on(
                &scenario,
                &cluster::ip_of(pod),
                "SELECT pg_is_in_recovery()::text || ':' || coalesce(string_agg(slot_name, ','), '') \
                 FROM pg_replication_slots",
            )
            .await?;
            Ok((state == "true:").then_some(()))
        },
    )
    .await;
    scenario.assert_operators_running();
    scenario.finish().await;
}
