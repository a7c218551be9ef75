//! Fault: PostgreSQL killed while a backup's pg_dump streams from it. The broken run is
//! reported as failed, with pg_dump's reason, and leaves no artifact behind; nothing partial is
//! ever reported as a backup; and once the StatefulSet has brought PostgreSQL back, the next
//! scheduled run completes with an artifact that verifies.
//!
//! By design a run is one Job attempt (`backoffLimit: 0`): a failed dump is not repeated
//! within its run, the next scheduled run is the retry. So this Backup runs every minute.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Result, bail};
use api::{Backup, BackupPhase, BackupStatus, conditions, names};
use futures::StreamExt;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api, ResourceExt,
    api::DeleteParams,
    runtime::{WatchStreamExt, watcher},
};

use scenarios::*;

/// Rows enough for a dump that streams for several seconds (about 80 MB of archive), so the
/// kill lands while it does; the test checks that it did rather than trusting this number.
const ROWS: u32 = 2_000_000;
/// How much of the artifact must be on the volume before PostgreSQL is killed.
const PARTIAL_BYTES: u64 = 1024 * 1024;

#[tokio::test]
async fn postgres_killed_mid_dump_fails_the_run_and_the_next_run_completes() {
    let mut scenario = Scenario::on_node("e2e-postgres-killed").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;
    let databases: Api<api::Database> = Api::namespaced(client.clone(), n);
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let jobs: Api<Job> = Api::namespaced(client.clone(), n);

    // Room for the table: the test's usual 256Mi would be overrun (hostPath does not enforce
    // it, but the claim should not lie).
    let database = node_database("shop").storage("1Gi").manifest();
    apply_yaml(&client, n, &database).await.unwrap();
    testenv::wait_for(&databases, "shop", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let fill = format!(
        "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b \
         FROM generate_series(1, {ROWS}) g"
    );
    psql(&client, n, "shop", &fill)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    // Every status the Backup ever reports, to check that none counted the broken run.
    let seen: Arc<Mutex<Vec<BackupStatus>>> = Arc::default();
    let recorder = tokio::spawn({
        let seen = seen.clone();
        let config = watcher::Config::default().fields("metadata.name=every-minute");
        let statuses = watcher(backups.clone(), config).applied_objects();
        async move {
            let mut statuses = std::pin::pin!(statuses);
            while let Some(Ok(backup)) = statuses.next().await {
                if let Some(status) = backup.status {
                    seen.lock().unwrap().push(status);
                }
            }
        }
    });

    let every_minute = testkit::backup("every-minute", "shop").schedule("* * * * *");
    scenario.apply(&every_minute.manifest()).await;
    let backup = testenv::wait_for(&backups, "every-minute", run_in_flight, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let broken_job = backup.status.as_ref().unwrap().active_job.clone().unwrap();
    let broken_run = jobs.get(&broken_job).await.unwrap().labels()[names::LABEL_RUN_ID].clone();
    let run_dir = claim_dir(&client, n, &backup)
        .await
        .unwrap_or_else(|e| scenario.fail(e))
        .join("shop/every-minute")
        .join(&broken_run);
    wait_for_partial_artifact(&run_dir)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    pods.delete("shop-0", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let killed = std::time::Instant::now();

    // The run is reported failed, with pg_dump's own words, and left nothing on the volume.
    let failed = |b: Option<&Backup>| {
        b.and_then(|b| b.status.as_ref())
            .and_then(|s| conditions::find(&s.conditions, conditions::DEGRADED))
            .is_some_and(|c| {
                c.status == "True"
                    && c.reason == "BackupFailed"
                    && c.message.contains(&format!("run {broken_run} failed"))
            })
    };
    let backup = testenv::wait_for(&backups, "every-minute", failed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let status = backup.status.unwrap();
    let degraded = conditions::find(&status.conditions, conditions::DEGRADED).unwrap();
    assert!(
        degraded
            .message
            .contains("pg_dump failed, so no backup was stored"),
        "{}",
        degraded.message
    );
    let job = jobs.get(&broken_job).await.unwrap();
    let job_failed = job
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Failed" && c.status == "True");
    assert!(job_failed, "the broken run's Job failed, once");
    for leftover in ["dump.pgdump", "dump.pgdump.partial", "manifest.json"] {
        assert!(
            !run_dir.join(leftover).exists(),
            "the broken run left {leftover} in {}",
            run_dir.display()
        );
    }

    // PostgreSQL comes back; the next scheduled run completes and its artifact verifies.
    let completed_later = |b: Option<&Backup>| {
        b.and_then(|b| b.status.as_ref()).is_some_and(|s| {
            s.phase == Some(BackupPhase::Completed)
                && s.history.first().is_some_and(|r| r.run_id != broken_run)
        })
    };
    // Up to a minute to the next scheduled time, then a dump of the whole table.
    let backup = testenv::wait_for(
        &backups,
        "every-minute",
        completed_later,
        POD_START + Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    println!(
        "PostgreSQL killed mid-dump -> a later run Completed in {:?}",
        killed.elapsed()
    );
    let status = backup.status.clone().unwrap();
    let bytes = artifact_bytes(&client, n, &backup)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert!(
        bytes.starts_with(b"PGDMP"),
        "a pg_dump custom-format archive"
    );
    assert_eq!(Some(bytes.len() as i64), status.size_bytes);
    assert_eq!(Some(sha256_hex(&bytes)), status.sha256);
    assert!(
        bytes.len() as u64 > PARTIAL_BYTES,
        "the whole table, not a stub"
    );

    // In no status, ever, did the broken run count as a backup.
    recorder.abort();
    let seen = seen.lock().unwrap().clone();
    for status in &seen {
        let in_history = status.history.iter().any(|r| r.run_id == broken_run);
        let as_location = status
            .backup_location
            .as_deref()
            .is_some_and(|l| l.contains(&broken_run));
        assert!(
            !in_history && !as_location,
            "a status counted the broken run {broken_run}: {status:#?}"
        );
    }
    let first_failure = seen.iter().position(|s| {
        conditions::find(&s.conditions, conditions::DEGRADED)
            .is_some_and(|c| c.reason == "BackupFailed")
    });
    let first_completion = seen
        .iter()
        .position(|s| s.phase == Some(BackupPhase::Completed));
    assert!(
        matches!((first_failure, first_completion), (Some(f), Some(c)) if f < c),
        "reported failed before completed: failure at {first_failure:?}, completion at {first_completion:?} of {} statuses",
        seen.len()
    );

    scenario.finish().await;
}

/// Waits until the run's artifact is being written (its `.partial` file holds at least
/// [`PARTIAL_BYTES`]); fails if the dump finished first, which would make the test moot.
async fn wait_for_partial_artifact(run_dir: &Path) -> Result<()> {
    let partial = run_dir.join("dump.pgdump.partial");
    let deadline = tokio::time::Instant::now() + POD_START;
    loop {
        let size = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if size >= PARTIAL_BYTES {
            return Ok(());
        }
        if run_dir.join("dump.pgdump").exists() {
            bail!("the dump finished before PostgreSQL could be killed: raise ROWS");
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no partial artifact of {PARTIAL_BYTES} bytes at {} within {POD_START:?}",
                partial.display()
            );
        }
        // A local file's size: cheap to read often, and the window is seconds wide.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
