//! A physical Backup on the real node: the archiver StatefulSet streams the Database's WAL
//! into the claim, a base backup follows once it streams, the Backup reports both, and the
//! status follows the archive as WAL is written.

use std::time::Duration;

use api::backup::RUN_NOW_ANNOTATION;
use api::conditions::{ARCHIVE_HEALTHY, BACKUP_READY};
use api::{Backup, names};
use backup_test_support::s3::{BUCKET, S3Server};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Patch, PatchParams};
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

    let backup = archiving_shop(&scenario, None, None).await;
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

/// pgbench's clients and rate (transactions per second) while the operator is killed: a
/// steady load, light enough to leave the test machine the CPU its Pods and operators need.
const PGBENCH_LOAD: [&str; 6] = ["-c", "2", "-j", "2", "-R", "150"];

/// The operator is killed three times while pgbench writes to the Database through its
/// Service. Archiving is the archiver Pod's, not the operator's: while no operator runs, the
/// claim keeps receiving the WAL pgbench writes (in the partial segment, then complete once
/// the segment is ended); the Pod is never replaced, the operator never writes its
/// StatefulSet again after creating it, and the claim holds every segment from the first
/// archived one to the one pgbench's last write is in (no gap).
#[tokio::test]
async fn physical_archiving_survives_operator_kills_without_a_gap() {
    let mut scenario = Scenario::on_node("e2e-physical-kill").await;
    let cluster = scenario.cluster();
    scenario.start_both().await;
    let (client, n) = (scenario.client(), scenario.ns().to_owned());
    let backups = scenario.api::<Backup>();
    let pods = scenario.api::<k8s_openapi::api::core::v1::Pod>();
    let backup = archiving_shop(&scenario, None, None).await;
    let archiver_pod = format!("{}-0", names::wal_archiver("pitr"));
    let pod_uid = pods.get(&archiver_pod).await.unwrap().metadata.uid;
    let stored = || StoredArchive::on_claim(&client, &n, &backup);
    let first = wait_stored(stored, |s| !s.segments.is_empty(), SEGMENT_SEEN)
        .await
        .unwrap_or_else(|e| scenario.fail(e))
        .segments
        .first()
        .copied()
        .unwrap();
    let since = chrono::Utc::now();
    let lsn = |sql: &'static str| {
        let client = client.clone();
        let n = n.clone();
        async move {
            let out = psql(&client, &n, "shop", sql).await?;
            parse_lsn(&out).ok_or_else(|| anyhow::anyhow!("not an LSN: {out}"))
        }
    };
    let start = lsn("SELECT pg_current_wal_lsn()")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let pgbench = Pgbench::connect(&client, &n, "shop", None)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    pgbench.init(1).await.unwrap_or_else(|e| scenario.fail(e));
    // Runs until stopped below; the bound only ends a forgotten one.
    let mut load = pgbench
        .start(&[&PGBENCH_LOAD[..], &["-T", "900"]].concat())
        .unwrap_or_else(|e| scenario.fail(e));

    for round in 1..=3 {
        scenario.operator(testenv::Operator::Backup).kill().unwrap();
        // Written while no operator runs: only the archiver can store it. pgbench's WAL
        // reaches the claim in the partial segment, stored every 2 s...
        let written = lsn("SELECT pg_current_wal_lsn()")
            .await
            .unwrap_or_else(|e| scenario.fail(e));
        let reached = move |s: &StoredArchive| s.written_to() > Some(written);
        wait_stored(stored, reached, SEGMENT_SEEN)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:#}\n{}", scenario.dump()));
        // ...and, its segment ended, as a complete segment.
        let switched = lsn("SELECT pg_switch_wal()")
            .await
            .unwrap_or_else(|e| scenario.fail(e));
        // pg_switch_wal() returns where the ended segment's WAL stops, plus one.
        let segment = Segment::containing(first.timeline, switched - 1);
        wait_stored(stored, |s| s.segments.contains(&segment), SEGMENT_SEEN)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:#}\n{}", scenario.dump()));
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
    // pgbench wrote throughout: still running, with its transactions committed.
    assert!(
        load.try_wait().unwrap().is_none(),
        "pgbench stopped early: {:?}",
        load.wait_with_output().await
    );
    load.kill().await.unwrap();
    let transactions = psql(&client, &n, "shop", "SELECT count(*) FROM pgbench_history")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert!(
        transactions.parse::<u64>().is_ok_and(|t| t > 0),
        "pgbench committed: {transactions}"
    );
    // Ends the segment pgbench's last write is in, so it is archived complete.
    let end = lsn("SELECT pg_switch_wal()")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let last = Segment::containing(first.timeline, end - 1);
    println!(
        "pgbench: {transactions} transactions; {} MiB of WAL from {first} to {last}",
        (end - start) >> 20
    );
    assert!(
        last.number >= Segment::containing(first.timeline, start).number + 3,
        "three rounds, three segments at least: {start:X} to {end:X}"
    );

    // The status follows to that segment, healthy, without a gap.
    let archived = move |b: Option<&Backup>| {
        let now = archive_segment(b).as_deref().and_then(Segment::parse);
        now.is_some_and(|now| now >= last)
    };
    let after = testenv::wait_for(&backups, "pitr", archived, WINDOW_MOVES)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    let status = after.status.unwrap();
    let healthy = api::conditions::find(&status.conditions, ARCHIVE_HEALTHY).unwrap();
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_str()),
        ("True", "Streaming")
    );
    assert!(!healthy.message.contains("gap"), "{}", healthy.message);
    // And the claim holds every segment from the first to that one.
    let on_claim = stored().await.unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(on_claim.segments.first(), Some(&first), "{on_claim:?}");
    assert!(on_claim.segments.contains(&last), "{last} in {on_claim:?}");
    assert_eq!(
        on_claim.missing(first.timeline),
        [],
        "no gap in {on_claim:?}"
    );

    assert_eq!(
        pods.get(&archiver_pod).await.unwrap().metadata.uid,
        pod_uid,
        "the archiver Pod was never replaced"
    );
    let sts_writes: Vec<_> = cluster
        .audit_writes(&testenv::Operator::Backup.username(), since)
        .unwrap()
        .into_iter()
        // The same identity runs the other tests' operators.
        .filter(|e| e.namespace() == Some(n.as_str()))
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
    let s3 = S3Server::start_on(host_address(&scenario).await).await;
    scenario.start_both().await;
    let backups = scenario.api::<Backup>();
    let backup = archiving_shop(&scenario, Some(&s3), None).await;
    let base = &backup.status.as_ref().unwrap().history[0];
    let prefix = format!("s3://{}/team/shop/pitr/base/", BUCKET);
    assert!(base.location.starts_with(&prefix), "{base:?}");
    let base_key = base
        .location
        .strip_prefix(&format!("s3://{}/", BUCKET))
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

/// Retention on storage itself: with `retention: 2`, the third base backup (each asked for
/// with `run-now`, with WAL written between them) deletes the first from the bucket, and the
/// WAL only it needed: the two newest stay, as `status.history` lists them, every segment
/// before the older one's start is gone and every one from it on is there; the window then
/// starts later.
#[tokio::test]
async fn physical_retention_prunes_base_backups_and_their_wal_on_storage() {
    let mut scenario = Scenario::on_node("e2e-physical-prune").await;
    let s3 = S3Server::start_on(host_address(&scenario).await).await;
    scenario.start_both().await;
    let backups = scenario.api::<Backup>();
    let first = archiving_shop(&scenario, Some(&s3), Some(2)).await;
    let first = first.status.unwrap().history[0].run_id.clone();
    let stored = || StoredArchive::in_bucket(&s3.keys(), "team/shop/pitr");

    write_and_switch(&scenario, 1).await;
    let second = take_base_backup(&scenario, "1").await;
    let window_start = |b: Option<&Backup>| {
        let window = b?.status.as_ref()?.recoverability.as_ref()?;
        Some(window.first_recoverable_time.0)
    };
    let with_window = testenv::wait_for(
        &backups,
        "pitr",
        move |b: Option<&Backup>| window_start(b).is_some(),
        WINDOW_MOVES,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    let first_start = window_start(Some(&with_window)).unwrap();
    let before = stored();
    assert_eq!(
        before.base_backups,
        [first.clone(), second.clone()].into(),
        "retention 2 keeps two"
    );

    write_and_switch(&scenario, 2).await;
    let third = take_base_backup(&scenario, "2").await;

    // The bucket: the two newest base backups, nothing left of the first.
    let after = stored();
    assert_eq!(after.base_backups, [second.clone(), third.clone()].into());
    let first_prefix = format!("team/shop/pitr/base/{first}/");
    let left: Vec<_> = s3
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&first_prefix))
        .collect();
    assert!(left.is_empty(), "the first base backup is gone: {left:?}");
    let backup = backups.get("pitr").await.unwrap();
    let mut history: Vec<String> = backup
        .status
        .as_ref()
        .map(|s| s.history.iter().map(|r| r.run_id.clone()).collect())
        .unwrap_or_default();
    history.sort();
    assert_eq!(history, [second.clone(), third]);

    // The WAL: from the segment the older kept base backup starts in, complete, and none
    // before it; which the first base backup needed, so some went.
    let manifest =
        std::fs::read(s3.object_path(&format!("team/shop/pitr/base/{second}/manifest.json")))
            .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let timeline = u32::try_from(manifest["timeline"].as_u64().unwrap()).unwrap();
    let start = parse_lsn(manifest["startLsn"].as_str().unwrap()).unwrap();
    let oldest_needed = Segment::containing(timeline, start);
    assert!(
        before.segments.first().is_some_and(|s| *s < oldest_needed),
        "WAL before {oldest_needed} was archived: {before:?}"
    );
    assert_eq!(after.segments.first(), Some(&oldest_needed), "{after:?}");
    assert_eq!(after.missing(timeline), [], "no gap in {after:?}");
    assert!(
        after.segments.last() >= before.segments.last(),
        "the newest WAL stays: {after:?}"
    );
    assert!(
        after.partials.iter().all(|(s, _)| *s >= oldest_needed),
        "{after:?}"
    );

    // The window now starts at the second base backup.
    testenv::wait_for(
        &backups,
        "pitr",
        move |b: Option<&Backup>| window_start(b).is_some_and(|start| start > first_start),
        WINDOW_MOVES,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    scenario.assert_operators_running();
    scenario.finish().await;
}

/// Asks for a base backup now (`run-now` with `request`) and waits until it is recorded;
/// its run id.
async fn take_base_backup(scenario: &Scenario, request: &str) -> String {
    let backups = scenario.api::<Backup>();
    let patch = serde_json::json!({"metadata": {"annotations": {RUN_NOW_ANNOTATION: request}}});
    backups
        .patch("pitr", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let request = request.to_string();
    let recorded = move |b: Option<&Backup>| {
        let Some(status) = b.and_then(|b| b.status.as_ref()) else {
            return false;
        };
        status.last_run_now.as_ref().is_some_and(|r| {
            r.request == request && status.history.iter().any(|h| h.run_id == r.run_id)
        })
    };
    let backup = testenv::wait_for(&backups, "pitr", recorded, FIRST_BASE_BACKUP)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", scenario.dump(), scenario.logs()));
    backup.status.unwrap().last_run_now.unwrap().run_id
}

/// The Database `shop` Ready, and its physical Backup `pitr` with a base backup and a
/// streaming archiver: where the archiving tests start. The Backup writes to the bucket of
/// `s3` (prefix `team`) when given, else to its own claim; `retention` base backups are
/// kept when given (the default, 7, otherwise).
async fn archiving_shop(
    scenario: &Scenario,
    s3: Option<&S3Server>,
    retention: Option<u32>,
) -> Backup {
    let databases = scenario.api::<api::Database>();
    let backups = scenario.api::<Backup>();
    scenario.apply(&node_database("shop").manifest()).await;
    testenv::wait_for(&databases, "shop", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let mut destination = None;
    if let Some(s3) = s3 {
        let (key_id, secret_key) = s3.credentials();
        scenario
            .apply(&s3_secret_manifest("s3-credentials", key_id, secret_key))
            .await;
        destination = Some(s3_destination(
            s3.endpoint(),
            BUCKET,
            "team",
            "s3-credentials",
        ));
    }
    let mut manifest = physical_backup_manifest("pitr", "shop", destination.as_deref());
    if let Some(retention) = retention {
        // A field of `spec`, like the manifest's last lines.
        manifest.push_str(&format!("  retention: {retention}\n"));
    }
    scenario.apply(&manifest).await;
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
