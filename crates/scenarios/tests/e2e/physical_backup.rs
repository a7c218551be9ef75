//! A physical Backup on the real node: the archiver StatefulSet streams the Database's WAL
//! into the claim, a base backup follows once it streams, the Backup reports both, and the
//! status follows the archive as WAL is written.

use std::time::Duration;

use api::conditions::{ARCHIVE_HEALTHY, BACKUP_READY};
use api::{Backup, names};
use k8s_openapi::api::apps::v1::StatefulSet;
use scenarios::physical::*;
use scenarios::*;

/// A base backup of the small test Database and the first archived segments.
const FIRST_BASE_BACKUP: Duration = Duration::from_secs(240);
/// The operator polls the archiver every 10 s; the archiver ships a completed segment
/// within a second.
const SEGMENT_SEEN: Duration = Duration::from_secs(25);
/// The archiver recomputes the window every 30 s, the operator copies it within 10 s.
const WINDOW_MOVES: Duration = Duration::from_secs(90);

/// Writes rows and ends the current WAL segment, so a complete segment is archived.
async fn write_and_switch(scenario: &Scenario, round: u32) {
    psql(
        &scenario.client(),
        scenario.ns(),
        "shop",
        &format!(
            "CREATE TABLE IF NOT EXISTS items (round int, label text); \
             INSERT INTO items SELECT {round}, md5(g::text) FROM generate_series(1, 1000) g; \
             SELECT pg_switch_wal()"
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", scenario.dump()));
}

#[tokio::test]
async fn physical_backup_archives_wal_and_reports_its_window() {
    let mut scenario = Scenario::on_node("e2e-physical").await;
    scenario.start_both().await;
    let backups = scenario.api::<Backup>();
    let statefulsets = scenario.api::<StatefulSet>();

    let backup = archiving_shop(&scenario).await;
    let status = backup.status.clone().unwrap();
    let base = &status.history[0];
    assert!(
        base.location
            .starts_with("pvc://pitr-artifacts/shop/pitr/base/"),
        "{base:?}"
    );
    assert!(base.size_bytes > 0 && base.sha256.len() == 64, "{base:?}");

    // One archiver, owned by the Backup, streaming from a slot of its own.
    let sts = statefulsets
        .get(&names::wal_archiver("pitr"))
        .await
        .unwrap();
    assert_eq!(sts.spec.as_ref().unwrap().replicas, Some(1));
    let owner = &sts.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Backup", "pitr")
    );
    assert_eq!(
        slot_state(&scenario, "pitr").await,
        "t",
        "the archiver's slot is in use"
    );

    // A switched segment reaches status.archive within a poll or two.
    let before = archive_segment(Some(&backup));
    write_and_switch(&scenario, 1).await;
    let after = testenv::wait_for(
        &backups,
        "pitr",
        move |b: Option<&Backup>| archive_segment(b).is_some_and(|s| Some(&s) > before.as_ref()),
        SEGMENT_SEEN,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    let archive = after.status.as_ref().unwrap().archive.clone().unwrap();
    assert_eq!(archive.timeline, Some(1), "{archive:?}");

    // The window appears, then its end moves forward as more WAL is archived.
    let with_window = testenv::wait_for(
        &backups,
        "pitr",
        |b: Option<&Backup>| window_end(b).is_some(),
        WINDOW_MOVES,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    let first_end = window_end(Some(&with_window)).unwrap();
    let window = with_window.status.as_ref().unwrap().recoverability.clone();
    let window = window.unwrap();
    assert!(
        window.first_recoverable_time.0 <= window.last_recoverable_time.0,
        "{window:?}"
    );
    write_and_switch(&scenario, 2).await;
    testenv::wait_for(
        &backups,
        "pitr",
        move |b: Option<&Backup>| window_end(b).is_some_and(|end| end > first_end),
        WINDOW_MOVES,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    scenario.assert_operators_running();

    // Deleted, the Backup takes its slot with it: the primary keeps no WAL for it.
    backups.delete("pitr", &Default::default()).await.unwrap();
    testenv::wait_deleted(&backups, "pitr", POD_START)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    assert_eq!(
        slot_state(&scenario, "pitr").await,
        "",
        "the slot was dropped"
    );
    scenario.finish().await;
}

/// The position of a 16 MiB WAL segment in the WAL (its log and segment parts).
fn segment_number(name: &str) -> Option<u64> {
    let log = u64::from_str_radix(name.get(8..16)?, 16).ok()?;
    let segment = u64::from_str_radix(name.get(16..24)?, 16).ok()?;
    Some(log * 0x100 + segment)
}

/// `t` or `f` (active) for the Backup's slot on the primary; empty without one.
async fn slot_state(scenario: &Scenario, backup: &str) -> String {
    psql(
        &scenario.client(),
        scenario.ns(),
        "shop",
        &format!(
            "SELECT active FROM pg_replication_slots WHERE slot_name = '{}'",
            names::wal_slot(backup)
        ),
    )
    .await
    .unwrap()
}

/// The operator is killed three times while the Database is written to. Archiving is the
/// archiver Pod's, not the operator's: the Pod is never replaced, the operator never writes
/// its StatefulSet again after creating it, and the archive keeps every segment (no gap).
#[tokio::test]
async fn physical_archiving_survives_operator_kills_without_a_gap() {
    let mut scenario = Scenario::on_node("e2e-physical-kill").await;
    let cluster = scenario.cluster();
    scenario.start_both().await;
    let backups = scenario.api::<Backup>();
    let pods = scenario.api::<k8s_openapi::api::core::v1::Pod>();
    let backup = archiving_shop(&scenario).await;
    let archiver_pod = format!("{}-0", names::wal_archiver("pitr"));
    let pod_uid = pods.get(&archiver_pod).await.unwrap().metadata.uid;
    let first = archive_segment(Some(&backup)).unwrap_or_default();
    let since = chrono::Utc::now();

    for round in 1..=3 {
        scenario.operator(testenv::Operator::Backup).kill().unwrap();
        // Written while no operator runs: only the archiver can keep it.
        write_and_switch(&scenario, round).await;
        let seen = log_count(scenario.operator(testenv::Operator::Backup), RECONCILED);
        scenario
            .operator(testenv::Operator::Backup)
            .restart()
            .unwrap();
        wait_for_more_logs(
            scenario.operator(testenv::Operator::Backup),
            RECONCILED,
            seen,
        )
        .await;
    }
    // Three switches: at least three more complete segments, reported healthy, no gap.
    let advanced = move |b: Option<&Backup>| {
        let number = |name: &str| segment_number(name);
        let now = archive_segment(b).as_deref().and_then(number);
        now.zip(number(&first))
            .is_some_and(|(now, first)| now >= first + 3)
    };
    let after = testenv::wait_for(&backups, "pitr", advanced, WINDOW_MOVES)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    let status = after.status.unwrap();
    let healthy = api::conditions::find(&status.conditions, ARCHIVE_HEALTHY).unwrap();
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_str()),
        ("True", "Streaming")
    );
    assert!(!healthy.message.contains("gap"), "{}", healthy.message);
    assert_eq!(
        pods.get(&archiver_pod).await.unwrap().metadata.uid,
        pod_uid,
        "the archiver Pod was never replaced"
    );
    let sts_writes: Vec<_> = cluster
        .audit_writes(&testenv::Operator::Backup.username(), since)
        .unwrap()
        .into_iter()
        .filter(|e| e.resource() == "statefulsets")
        .map(|e| e.to_string())
        .collect();
    assert!(
        sts_writes.is_empty(),
        "no StatefulSet writes after the first: {sts_writes:#?}"
    );
    scenario.assert_operators_running();
    scenario.finish().await;
}

/// The same for an S3 destination: the archiver and the base backup Job write to a bucket,
/// the operator reads the base backup's manifest back from it, and the slot goes with the
/// Backup.
#[tokio::test]
async fn physical_backup_to_s3_archives_wal_into_the_bucket() {
    let mut scenario = Scenario::on_node("e2e-physical-s3").await;
    let s3 = backup_test_support::s3::S3Server::start_on(host_address(&scenario).await).await;
    scenario.start_both().await;
    let databases = scenario.api::<api::Database>();
    let backups = scenario.api::<Backup>();
    scenario.apply(&node_database("shop").manifest()).await;
    testenv::wait_for(&databases, "shop", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let (key_id, secret_key) = s3.credentials();
    scenario
        .apply(&format!(
            "{}---\n{}",
            s3_secret_manifest("s3-credentials", key_id, secret_key),
            physical_backup_manifest(
                "pitr",
                "shop",
                Some(&s3_destination(
                    s3.endpoint(),
                    backup_test_support::s3::BUCKET,
                    "team",
                    "s3-credentials"
                ))
            )
        ))
        .await;
    let ready = has_condition(backup_condition, BACKUP_READY, "True", "ArtifactAvailable");
    let streaming = has_condition(backup_condition, ARCHIVE_HEALTHY, "True", "Streaming");
    let backup = testenv::wait_for(
        &backups,
        "pitr",
        move |b: Option<&Backup>| ready(b) && streaming(b),
        FIRST_BASE_BACKUP,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    let base = &backup.status.as_ref().unwrap().history[0];
    let prefix = format!(
        "s3://{}/team/shop/pitr/base/",
        backup_test_support::s3::BUCKET
    );
    assert!(base.location.starts_with(&prefix), "{base:?}");
    let base_key = base
        .location
        .strip_prefix(&format!("s3://{}/", backup_test_support::s3::BUCKET))
        .unwrap()
        .to_string();
    assert!(
        s3.keys().contains(&base_key),
        "{base_key} in {:?}",
        s3.keys()
    );

    let before = archive_segment(Some(&backup));
    write_and_switch(&scenario, 1).await;
    let after = testenv::wait_for(
        &backups,
        "pitr",
        move |b: Option<&Backup>| archive_segment(b).is_some_and(|s| Some(&s) > before.as_ref()),
        SEGMENT_SEEN,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    let segment = archive_segment(Some(&after)).unwrap();
    let wal_prefix = format!("team/shop/pitr/wal/{segment}.");
    assert!(
        s3.keys().iter().any(|k| k.starts_with(&wal_prefix)),
        "{wal_prefix}* in {:?}",
        s3.keys()
    );
    testenv::wait_for(
        &backups,
        "pitr",
        |b: Option<&Backup>| window_end(b).is_some(),
        WINDOW_MOVES,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));

    backups.delete("pitr", &Default::default()).await.unwrap();
    testenv::wait_deleted(&backups, "pitr", POD_START)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    assert_eq!(
        slot_state(&scenario, "pitr").await,
        "",
        "the slot was dropped"
    );
    scenario.assert_operators_running();
    scenario.finish().await;
}

/// The Database `shop` Ready, and its physical Backup `pitr` with a base backup and a
/// streaming archiver: where the archiving tests start.
async fn archiving_shop(scenario: &Scenario) -> Backup {
    let databases = scenario.api::<api::Database>();
    let backups = scenario.api::<Backup>();
    scenario.apply(&node_database("shop").manifest()).await;
    testenv::wait_for(&databases, "shop", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    scenario
        .apply(&physical_backup_manifest("pitr", "shop", None))
        .await;
    let ready = has_condition(backup_condition, BACKUP_READY, "True", "ArtifactAvailable");
    let streaming = has_condition(backup_condition, ARCHIVE_HEALTHY, "True", "Streaming");
    testenv::wait_for(
        &backups,
        "pitr",
        move |b: Option<&Backup>| ready(b) && streaming(b),
        FIRST_BASE_BACKUP,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()))
}
